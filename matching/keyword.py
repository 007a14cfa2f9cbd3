"""The keyword index (Whoosh, BM25F): stemmed fields with boosts, kept in step with the store.

The index lives in ``app.config["INDEX_DIR"]``. ``init_app`` registers an ``after_commit`` listener
on the app's sessions: ids that ``upsert_many`` / ``mark_vanished`` (or an admin action through
``mark_changed``) put in ``session.info["opportunities_changed"]`` are re-indexed and re-scored for
CVI right after the commit that changed them (a bulk load leaves them to ``reindex``, see
``matching.pending``). Embedding them waits for ``flask reindex``.
"""

from __future__ import annotations

import functools
import logging
import math
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session
from whoosh import index as windex
from whoosh import query as wq
from whoosh.analysis import StemmingAnalyzer
from whoosh.fields import ID, TEXT, Schema
from whoosh.matching import WrappingMatcher
from whoosh.scoring import BM25F

from app.models import Opportunity
from matching.text import ProgramRef, document_fields, load_programs_by_aln

log = logging.getLogger(__name__)

ANALYZER = StemmingAnalyzer()
#: Field → boost. Titles and catalogue program names say most about what a listing funds.
FIELD_BOOSTS = {
    "title": 3.0,
    "programs": 2.0,
    "body": 1.0,
    "agency": 0.5,
    "eligibility": 0.3,
    "categories": 0.5,
}
SEARCH_FIELDS = ("title", "programs", "body")
#: Stems searched per query (the most informative of the profile's words).
MAX_QUERY_TERMS = 24
MAX_PHRASES = 6
#: Postings a query may read (sum over its stems and fields): keeps a profile query fast on 85,000
#: documents, while a small index gets every informative stem.
POSTINGS_BUDGET = 60_000
#: Stems in more than this share of documents say nothing about a match.
COMMON_SHARE = 0.5
#: Per-clause score arrays kept per thread and index generation.
CLAUSE_CACHE_SIZE = 4096
WHOOSH_WORDS = frozenset({"and", "or", "not", "andnot", "andmaybe", "to"})


def schema() -> Schema:
    return Schema(
        id=ID(stored=True, unique=True),
        title=TEXT(analyzer=ANALYZER, field_boost=FIELD_BOOSTS["title"]),
        programs=TEXT(analyzer=ANALYZER, field_boost=FIELD_BOOSTS["programs"]),
        body=TEXT(analyzer=ANALYZER, field_boost=FIELD_BOOSTS["body"]),
        agency=TEXT(analyzer=ANALYZER, field_boost=FIELD_BOOSTS["agency"]),
        eligibility=TEXT(analyzer=ANALYZER, field_boost=FIELD_BOOSTS["eligibility"]),
        categories=TEXT(analyzer=ANALYZER, field_boost=FIELD_BOOSTS["categories"]),
    )


@dataclass(frozen=True)
class KeywordHit:
    opportunity_id: int
    score: float
    matched_terms: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ParsedQuery:
    """A user's text as something that cannot fail to search: stems with counts, and phrases.

    The Whoosh query is built against the index (``build``) so that only the most informative
    stems are searched: a long profile stays fast on a large index.
    """

    counts: dict[str, int]
    words_by_stem: dict[str, str]
    phrases: tuple[tuple[str, ...], ...] = ()

    @property
    def empty(self) -> bool:
        return not self.counts and not self.phrases

    def build(self, searcher: Any = None, max_terms: int | None = None) -> wq.Query | None:
        """An OR query over the boosted fields: the ``max_terms`` stems with the best count times idf."""
        if self.empty:
            return None
        max_terms = max_terms or MAX_QUERY_TERMS
        weights: dict[str, float] = {}
        postings: dict[str, int] = {}
        total = int(searcher.doc_count()) if searcher is not None else 0
        for stem, count in self.counts.items():
            if searcher is not None and total:
                frequencies = [int(searcher.doc_frequency(f, stem)) for f in SEARCH_FIELDS]
                df = max(frequencies)
                postings[stem] = sum(frequencies)
                if df == 0 or (df > COMMON_SHARE * total and total > 50):
                    continue
                idf = math.log(1 + (total - df + 0.5) / (df + 0.5))
            else:
                idf = 1.0
            weights[stem] = min(count, 5) * idf
        ranked: list[str] = []
        budget = POSTINGS_BUDGET
        for stem in sorted(weights, key=lambda s: (-weights[s], s))[:max_terms]:
            cost = postings.get(stem, 0)
            if ranked and cost > budget:
                continue  # on a big index, skip common stems the budget cannot afford
            ranked.append(stem)
            budget -= cost
        clauses: list[wq.Query] = []
        for stem in ranked:
            boost = 1.0 + 0.25 * min(self.counts[stem] - 1, 4)
            for name in SEARCH_FIELDS:
                clauses.append(wq.Term(name, stem, boost=boost))
        for stems in self.phrases:
            for name in ("title", "body"):
                clauses.append(wq.Phrase(name, list(stems), boost=1.5))
        return wq.Or(clauses) if clauses else None

    def matched_terms(self, text: str) -> list[str]:
        """The query's words that occur (stemmed) in ``text``, most repeated in the query first."""
        present = stem_set(text)
        found = [s for s in self.counts if s in present]
        found.sort(key=lambda s: (-self.counts[s], s))
        return [self.words_by_stem[s] for s in found]


_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9'\u2019.-]*[A-Za-z0-9]|[A-Za-z0-9]")


def _stems(text: str) -> list[tuple[str, str]]:
    """(stem, original word) for each indexable word of ``text``."""
    out = []
    for raw in _WORD.findall(text):
        word = raw.replace("\u2019", "'")
        if word.lower() in WHOOSH_WORDS and word.isupper():
            continue  # a boolean operator typed by a user, not a search word
        for stem in _word_stems(word):
            out.append((stem, word.lower()))
    return out


@functools.lru_cache(maxsize=65_536)
def _word_stems(word: str) -> tuple[str, ...]:
    """The analyzer's stems of one word; cached, as running the analyzer is most of the cost."""
    return tuple(token.text for token in ANALYZER(word))


def stem_set(text: str) -> set[str]:
    """Every stem of ``text`` (as ``_stems`` gives), each distinct word analysed once."""
    present: set[str] = set()
    for raw in set(_WORD.findall(text)):
        word = raw.replace("\u2019", "'")
        if word.lower() in WHOOSH_WORDS and word.isupper():
            continue
        present.update(_word_stems(word))
    return present


def safe_query(text: str, phrases: Sequence[str] = ()) -> ParsedQuery:
    """Parse free text into a query that never raises on user input.

    Quotes, colons, parentheses and operators are treated as text, not syntax: words are stemmed
    and OR-ed (BM25F ranks documents matching more of them higher). Quoted strings and ``phrases``
    (e.g. focus areas) of 2-5 words also count as phrases.
    """
    try:
        text = str(text or "")[:20_000]
        counts: dict[str, int] = {}
        words: dict[str, str] = {}
        for stem, word in _stems(text):
            counts[stem] = counts.get(stem, 0) + 1
            words.setdefault(stem, word)
        found: list[tuple[str, ...]] = []
        for phrase in [*re.findall(r'"([^"]+)"', text), *phrases][:MAX_PHRASES]:
            stems = tuple(s for s, _ in _stems(phrase))
            if 2 <= len(stems) <= 5 and stems not in found:
                found.append(stems)
        return ParsedQuery(counts, words, tuple(found))
    except Exception:  # pragma: no cover - defensive: user text must never raise
        log.exception("query parsing failed", extra={"text": str(text)[:200]})
        return ParsedQuery({}, {})


class KeywordIndex:
    """A Whoosh index of visible opportunities (hidden, merged and vanished ones are removed)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        # Whoosh searchers hold open readers and are not safe to share between threads:
        # each thread keeps its own, reopened when the index has a newer generation.
        self._local = threading.local()
        self._ix: Any = None

    # -- storage ------------------------------------------------------------------------------

    def exists(self) -> bool:
        return self.path.exists() and windex.exists_in(str(self.path))

    def _open(self, create: bool = False) -> Any:
        self.path.mkdir(parents=True, exist_ok=True)
        if create or not windex.exists_in(str(self.path)):
            return windex.create_in(str(self.path), schema())
        return windex.open_dir(str(self.path))

    def _writer(self, ix: Any) -> Any:
        return ix.writer(timeout=60.0, delay=0.1)

    def rebuild(
        self, session: Session, progress: Callable[[int, int], None] | None = None, *, procs: int = 1
    ) -> int:
        """Index every visible opportunity from scratch; returns how many were indexed.

        ``procs=2`` builds with two processes (about 2.5x faster on two cores); don't run it beside
        an embedding job.
        """
        programs = load_programs_by_aln(session)
        ids = list(session.scalars(visible_ids_query()))
        ix = self._open(create=True)
        writer = ix.writer(procs=procs, multisegment=True, limitmb=128) if procs > 1 else self._writer(ix)
        done = 0
        try:
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                for opportunity in session.scalars(select(Opportunity).where(Opportunity.id.in_(chunk))):
                    writer.add_document(**self._doc(opportunity, programs))
                done += len(chunk)
                if progress:
                    progress(done, len(ids))
            writer.commit()
        except BaseException:
            writer.cancel()
            raise
        self._reset_searcher()
        return done

    def update(self, session: Session, ids: Iterable[int]) -> tuple[int, int]:
        """Add or replace the given opportunities; remove those hidden, merged or vanished.

        Returns (indexed, removed).
        """
        wanted = sorted(set(ids))
        if not wanted:
            return 0, 0
        programs = load_programs_by_aln(session)
        ix = self._open()
        writer = self._writer(ix)
        indexed = removed = 0
        try:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                found = {
                    o.id: o for o in session.scalars(select(Opportunity).where(Opportunity.id.in_(chunk)))
                }
                for opp_id in chunk:
                    opportunity = found.get(opp_id)
                    if opportunity is None or not is_visible(opportunity):
                        writer.delete_by_term("id", str(opp_id))
                        removed += 1
                    else:
                        writer.update_document(**self._doc(opportunity, programs))
                        indexed += 1
            writer.commit()
        except BaseException:
            writer.cancel()
            raise
        self._reset_searcher()
        return indexed, removed

    @staticmethod
    def _doc(opportunity: Opportunity, programs: dict[str, ProgramRef]) -> dict[str, str]:
        fields = document_fields(opportunity, programs)
        return {
            "id": str(opportunity.id),
            "title": fields.title,
            "programs": fields.programs,
            "body": fields.body,
            "agency": fields.agency,
            "eligibility": fields.eligibility,
            "categories": fields.categories,
        }

    # -- search -------------------------------------------------------------------------------

    def _reset_searcher(self) -> None:
        searcher = getattr(self._local, "searcher", None)
        if searcher is not None:
            searcher.close()
        self._local.searcher = None
        self._local.generation = -1

    def searcher(self) -> Any:
        """This thread's searcher, reused across queries; reopened when the index on disk has a
        newer generation (written by this process or another one)."""
        searcher = getattr(self._local, "searcher", None)
        with self._lock:
            if self._ix is None:
                if not self.exists():
                    return None
                self._ix = windex.open_dir(str(self.path))
            latest = self._ix.latest_generation()
        if searcher is not None and getattr(self._local, "generation", -1) == latest:
            return searcher
        if searcher is not None:
            searcher.close()
        if not self.exists():
            return None
        with self._lock:
            self._ix = windex.open_dir(str(self.path))
            generation = self._ix.latest_generation()
            searcher = self._ix.searcher(weighting=BM25F())
        self._local.searcher = searcher
        self._local.generation = generation
        return searcher

    def search(
        self,
        query: str | ParsedQuery,
        limit: int | None = 100,
        filter_ids: Iterable[int] | None = None,
        phrases: Sequence[str] = (),
        terms: bool | None = None,
    ) -> list[KeywordHit]:
        """The best matching opportunities for free text (or a parsed query); never raises on text."""
        parsed = query if isinstance(query, ParsedQuery) else safe_query(query, phrases)
        if parsed.empty:
            return []
        searcher = self.searcher()
        if searcher is None:
            return []
        built = parsed.build(searcher)
        if built is None:
            return []
        if terms is None:
            terms = limit is not None and limit <= 50
        allowed = None if filter_ids is None else {str(i) for i in filter_ids}
        if allowed is not None and not allowed:
            return []
        if not terms and allowed is None and limit is not None:
            return [KeywordHit(opp_id, score) for opp_id, score in self._clause_sum(searcher, built, limit)]
        if allowed is not None and len(allowed) <= 1024:
            # Require (scores from ``built`` only) leapfrogs through the postings to the allowed
            # documents, where a filter reads every posting: same hits, a third of the time.
            # Whoosh's block-quality skipping trips an assertion inside Require, hence optimize=False.
            within = wq.Or([wq.Term("id", i) for i in sorted(allowed)])
            results = searcher.search(wq.Require(built, within), limit=limit, terms=terms, optimize=False)
        else:
            results = searcher.search(built, limit=None if allowed else limit, terms=terms)
        hits = []
        for hit in results:
            opp_id = hit["id"]
            if allowed is not None and opp_id not in allowed:
                continue
            words: list[str] = []
            if terms and hit.matched_terms():
                seen: set[str] = set()
                for field_name, raw in hit.matched_terms():
                    if field_name == "id":  # the Require clause restricting ids, not a user's word
                        continue
                    stem = raw.decode("utf-8") if isinstance(raw, bytes) else str(raw)
                    word = parsed.words_by_stem.get(stem, stem)
                    if word not in seen:
                        seen.add(word)
                        words.append(word)
            hits.append(KeywordHit(int(opp_id), float(hit.score), words))
            if limit is not None and len(hits) >= limit:
                break
        return hits

    def _clause_sum(self, searcher: Any, built: wq.Query, limit: int) -> list[tuple[int, float]]:
        """The ``limit`` best documents for an OR query, scored as Whoosh scores it (the sum of the
        matching clauses' scores, ties to the lower document number), from per-clause score arrays.

        A clause's scores do not depend on the rest of the query, so they are read once per index
        generation (this thread's cache, cleared with its searcher) and the profile queries that
        share stems, which most do, skip Whoosh's posting-by-posting union.
        """
        clauses = built.subqueries if isinstance(built, wq.Or) else [built]
        cache: dict[Any, tuple[np.ndarray, np.ndarray]] | None = getattr(self._local, "clauses", None)
        if cache is None or getattr(self._local, "clauses_of", None) is not searcher:
            cache = self._local.clauses = {}
            self._local.clauses_of = searcher
        size = int(searcher.reader().doc_count_all())
        totals = np.zeros(size, dtype=np.float64)
        hit = np.zeros(size, dtype=bool)
        for clause in clauses:
            key = (type(clause).__name__, repr(clause))
            arrays = cache.get(key)
            if arrays is None:
                docnums: list[int] = []
                scores: list[float] = []
                matcher = clause.matcher(searcher)
                boost = 1.0
                if type(matcher) is WrappingMatcher:
                    # A boosted term: score the postings directly, times the boost (as the wrapper does).
                    boost, matcher = matcher.boost, matcher.child
                while matcher.is_active():
                    docnums.append(matcher.id())
                    scores.append(matcher.score())
                    matcher.next()
                weights = np.asarray(scores, dtype=np.float64)
                if boost != 1.0:
                    weights = weights * boost
                arrays = (np.asarray(docnums, dtype=np.int64), weights)
                if len(cache) >= CLAUSE_CACHE_SIZE:
                    cache.pop(next(iter(cache)))
                cache[key] = arrays
            np.add.at(totals, arrays[0], arrays[1])
            hit[arrays[0]] = True
        matched = np.nonzero(hit)[0]
        if len(matched) > limit:
            cut = np.partition(-totals[matched], limit - 1)[limit - 1]
            matched = matched[-totals[matched] <= cut]
        order = np.lexsort((matched, -totals[matched]))[:limit]
        return [(int(searcher.stored_fields(int(d))["id"]), float(totals[d])) for d in matched[order]]

    def matched_terms(self, query: str | ParsedQuery, ids: Iterable[int]) -> dict[int, list[str]]:
        """The user's words each of ``ids`` matches, worked out only for the hits on the page shown."""
        wanted = list(dict.fromkeys(int(i) for i in ids))
        if not wanted:
            return {}
        hits = self.search(query, limit=len(wanted), filter_ids=wanted, terms=True)
        return {hit.opportunity_id: hit.matched_terms for hit in hits if hit.matched_terms}

    def doc_count(self) -> int:
        searcher = self.searcher()
        return 0 if searcher is None else int(searcher.doc_count())


def visible_ids_query() -> Any:
    return (
        select(Opportunity.id)
        .where(
            Opportunity.hidden.is_(False),
            Opportunity.merged_into_id.is_(None),
            Opportunity.vanished_at.is_(None),
        )
        .order_by(Opportunity.id)
    )


def is_visible(opportunity: Opportunity) -> bool:
    return not opportunity.hidden and opportunity.merged_into_id is None and opportunity.vanished_at is None


_INDEXES: dict[str, KeywordIndex] = {}
_INDEXES_LOCK = threading.Lock()


def get_index(path: str | Path) -> KeywordIndex:
    """One ``KeywordIndex`` (and its cached searcher) per index directory per process."""
    key = str(Path(path).resolve())
    with _INDEXES_LOCK:
        if key not in _INDEXES:
            _INDEXES[key] = KeywordIndex(key)
        return _INDEXES[key]
