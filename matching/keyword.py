"""The keyword index (Whoosh, BM25F): stemmed fields with boosts, kept in step with the store.

The index lives in ``app.config["INDEX_DIR"]``. ``init_app`` registers an ``after_commit`` listener
on the app's sessions: ids that ``upsert_many`` / ``mark_vanished`` (or an admin action through
``mark_changed``) put in ``session.info["opportunities_changed"]`` are re-indexed and re-scored for
CVI right after the commit that changed them (a bulk load leaves them to ``reindex``, see
``matching.pending``). Embedding them waits for ``flask reindex``.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import os
import re
import threading
from collections import OrderedDict
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
#: Stems searched per query (the most informative of the profile's words). A profile has 45 to 65
#: stems; keeping only 24 dropped words that name the work in other terms than the listing's title
#: (recall@20 0.872 → 0.889 on the team set at 40). ``POSTINGS_BUDGET`` still bounds the cost.
MAX_QUERY_TERMS = 40
MAX_PHRASES = 6
#: Postings a query may read (sum over its stems and fields): keeps a profile query fast on 85,000
#: documents, while a small index gets every informative stem.
POSTINGS_BUDGET = 60_000
#: Stems in more than this share of documents say nothing about a match.
COMMON_SHARE = 0.5
WHOOSH_WORDS = frozenset({"and", "or", "not", "andnot", "andmaybe", "to"})
#: Seconds a writer waits for the index's write lock (held by another process's writer).
WRITER_LOCK_TIMEOUT = 60.0


class IndexUnavailable(Exception):
    """The index on disk cannot be read (deleted under us, truncated, garbage): callers search the
    database instead, and ``matching.index_repair`` rebuilds it from the store."""

    def __init__(self, path: Path, detail: str) -> None:
        super().__init__(f"keyword index at {path} is unreadable: {detail}")
        self.path = path
        self.detail = detail


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
        self._ix_inode = -1
        self._build_lock = threading.Lock()
        #: (index generation, its scoring table), shared by the threads searching that generation.
        self._table_state: tuple[Any, _ScoreTable] | None = None
        #: Why the index was last found unreadable, and the on-disk state it was found in: until the
        #: directory changes (a rebuild swapped in), ``available`` says no without touching it again.
        self.broken: str | None = None
        self._broken_at: tuple[int, int] | None = None

    # -- storage ------------------------------------------------------------------------------

    def exists(self) -> bool:
        """Whether an index is stored here (possibly a damaged one: see ``available``)."""
        if not self.path.is_dir():
            return False
        try:
            return bool(windex.exists_in(str(self.path)))
        except Exception:  # an unreadable table of contents: there is an index, and it is damaged
            return any(self.path.glob("_MAIN_*.toc"))

    def _state(self) -> tuple[int, int] | None:
        """(directory inode, latest generation): changes when the index is written or swapped."""
        try:
            return self._probe()
        except Exception:
            return None

    def _probe(self) -> tuple[int, int] | None:
        if not self.path.is_dir():
            return None
        inode = os.stat(self.path).st_ino
        return inode, int(windex.open_dir(str(self.path)).latest_generation())

    def available(self) -> bool:
        """Whether searching is worth trying: a built index is there (generation 0 is one being
        created, still empty) and it is not the one last found damaged. An unreadable table of
        contents is noted as damage (``broken``) here."""
        try:
            state = self._probe()
        except Exception as exc:
            if self.exists():
                self._unavailable(exc)
            return False
        if state is None or state[1] < 1:
            return False
        if self._broken_at is not None:
            if state == self._broken_at:
                return False
            self.broken = self._broken_at = None
        return True

    def _unavailable(self, exc: BaseException) -> IndexUnavailable:
        """Forget everything opened from a damaged index and say so once (a structured log line)."""
        detail = f"{type(exc).__name__}: {exc}"[:500]
        first = self.broken is None
        self.broken = detail
        self._broken_at = self._state()
        with contextlib.suppress(Exception):
            self._close_thread_searcher()
        with self._lock:
            self._ix = None
            self._table_state = None
        if first:
            log.warning(
                "keyword index unreadable; searches use the database until it is rebuilt",
                extra={"index_dir": str(self.path), "error": detail},
            )
        return IndexUnavailable(self.path, detail)

    def _open(self, create: bool = False) -> Any:
        self.path.mkdir(parents=True, exist_ok=True)
        if create or not windex.exists_in(str(self.path)):
            return windex.create_in(str(self.path), schema())
        return windex.open_dir(str(self.path))

    def _writer(self, ix: Any) -> Any:
        return ix.writer(timeout=WRITER_LOCK_TIMEOUT, delay=0.1)

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
        self.broken = self._broken_at = None
        return done

    def update(self, session: Session, ids: Iterable[int]) -> tuple[int, int]:
        """Add or replace the given opportunities; remove those hidden, merged or vanished.

        Returns (indexed, removed).
        """
        wanted = sorted(set(ids))
        if not wanted:
            return 0, 0
        if not self.exists():
            # No index (never built, or its directory was removed): build it whole from the store,
            # never one holding only the few documents this commit changed.
            return self.rebuild(session), 0
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

    def release(self) -> None:
        """Close this thread's searcher (for a thread that will not search again)."""
        self._close_thread_searcher()

    def _close_thread_searcher(self) -> None:
        searcher = getattr(self._local, "searcher", None)
        if searcher is not None:
            searcher.close()
        self._local.searcher = None
        self._local.generation = -1

    def _reset_searcher(self) -> None:
        """Forget this thread's searcher and the scoring tables: the next query starts cold."""
        self._close_thread_searcher()
        with self._lock:
            self._ix = None
            self._table_state = None

    def searcher(self) -> Any:
        """This thread's searcher, reused across queries; reopened when the index on disk has a
        newer generation (written by this process or another one) or was swapped for a rebuilt one
        (another directory inode). Raises ``IndexUnavailable`` when the index cannot be read."""
        try:
            return self._searcher()
        except IndexUnavailable:
            raise
        except Exception as exc:
            raise self._unavailable(exc) from exc

    def _searcher(self) -> Any:
        searcher = getattr(self._local, "searcher", None)
        if not self.path.is_dir():
            if searcher is not None:
                raise FileNotFoundError(f"index directory {self.path} was removed")
            return None
        inode = os.stat(self.path).st_ino
        with self._lock:
            if self._ix is None or self._ix_inode != inode:
                if not self.exists():
                    return None
                self._ix = windex.open_dir(str(self.path))
                self._ix_inode = inode
            latest = (inode, self._ix.latest_generation())
        if searcher is not None and getattr(self._local, "generation", -1) == latest:
            return searcher
        if searcher is not None:
            searcher.close()
        if not self.exists():
            return None
        with self._lock:
            self._ix = windex.open_dir(str(self.path))
            self._ix_inode = inode
            generation = (inode, self._ix.latest_generation())
            searcher = self._ix.searcher(weighting=BM25F())
        self._local.searcher = searcher
        self._local.generation = generation
        return searcher

    def _table(self, searcher: Any) -> _ScoreTable:
        """The scoring table of this thread's searcher's index generation, shared by all threads
        (document numbers are the same in every searcher of one generation)."""
        generation = getattr(self._local, "generation", -1)
        state = self._table_state
        if state is not None and state[0] == generation:
            return state[1]
        with self._build_lock:  # one thread builds it; the others wait and share it
            state = self._table_state
            if state is not None and state[0] == generation:
                return state[1]
            table = _ScoreTable(searcher)
            with self._lock:
                self._table_state = (generation, table)
            return table

    def warm(self) -> bool:
        """Open the index and build its scoring table (document ids and field lengths) now, so the
        first query a worker answers does not pay for it; False when there is no index yet."""
        searcher = self.searcher()
        if searcher is None:
            return False
        self._table(searcher).warm(searcher)
        return True

    def search(
        self,
        query: str | ParsedQuery,
        limit: int | None = 100,
        filter_ids: Iterable[int] | None = None,
        phrases: Sequence[str] = (),
        terms: bool | None = None,
    ) -> list[KeywordHit]:
        """The best matching opportunities for free text (or a parsed query); never raises on text.

        Scores and order are Whoosh's BM25F for the built query (score descending, ties to the lower
        document number), computed with numpy over per-term postings cached per index generation
        (``_ScoreTable``) instead of Whoosh's posting-by-posting union: a long profile query or one
        matching most of the catalogue costs milliseconds. ``filter_ids`` restricts the hits;
        matched words are collected when ``terms`` (default: pages of at most 50).
        """
        parsed = query if isinstance(query, ParsedQuery) else safe_query(query, phrases)
        if parsed.empty:
            return []
        searcher = self.searcher()
        if searcher is None:
            return []
        try:
            return self._search(searcher, parsed, limit, filter_ids, terms)
        except Exception as exc:  # a segment truncated or overwritten under the open searcher
            raise self._unavailable(exc) from exc

    def _search(
        self,
        searcher: Any,
        parsed: ParsedQuery,
        limit: int | None,
        filter_ids: Iterable[int] | None,
        terms: bool | None,
    ) -> list[KeywordHit]:
        table = self._table(searcher)
        built = parsed.build(_Statistics(searcher, table))
        if built is None:
            return []
        if terms is None:
            terms = limit is not None and limit <= 50
        allowed = None
        if filter_ids is not None:
            allowed = table.docnums_of(filter_ids)
            if not len(allowed):
                return []
        clauses = _clauses(built)
        docnums, scores = table.score(searcher, clauses, allowed)
        if limit is not None and len(docnums) > limit:
            cut = np.partition(-scores, limit - 1)[limit - 1]
            keep = -scores <= cut
            docnums, scores = docnums[keep], scores[keep]
        order = np.lexsort((docnums, -scores))
        if limit is not None:
            order = order[:limit]
        top, top_scores = docnums[order], scores[order]
        words = table.words(searcher, clauses, parsed, top) if terms else {}
        ids = table.ids[top].tolist()
        return [
            KeywordHit(opp_id, score, words.get(docnum, []))
            for opp_id, score, docnum in zip(ids, top_scores.tolist(), top.tolist(), strict=True)
        ]

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


def _clauses(built: wq.Query) -> list[wq.Query]:
    return list(built.subqueries) if isinstance(built, wq.Or) else [built]


#: Whoosh's BM25F defaults (searchers are opened with ``BM25F()``).
BM25_B, BM25_K1 = 0.75, 1.2
#: (field, stem) postings and phrase clauses kept per index generation (a profile query uses ~80).
POSTINGS_CACHE = 4096
#: (document numbers, scores) of one term or phrase.
_Scored = tuple[np.ndarray, np.ndarray]


class _ScoreTable:
    """BM25F scoring of one index generation with numpy, equal to Whoosh's own scores.

    Whoosh scores a term clause as ``boost * bm25(idf, weight, length, avgfl, B, K1)`` with the
    collection's idf and average field length (``whoosh.scoring.BM25FScorer``; the field boost is
    already in the stored weight), and an ``Or`` adds its clauses' scores. Here each term's postings
    are read once, a block at a time, into arrays and scored with the same expression; phrase
    clauses (few documents) are scored by Whoosh's own matcher, also once. Also kept: the
    opportunity id of every live document number, and each field's document lengths.
    """

    def __init__(self, searcher: Any) -> None:
        self.size = int(searcher.doc_count_all())
        self.ids = np.zeros(self.size, dtype=np.int64)  # 0 for deleted documents
        for leaf, offset in _leaves(searcher):
            for docnum, stored in leaf.reader().iter_docs():
                self.ids[offset + docnum] = int(stored["id"])
        live = np.nonzero(self.ids)[0]
        self.docnum_by_id: dict[int, int] = dict(zip(self.ids[live].tolist(), live.tolist(), strict=True))
        self._lengths: dict[str, np.ndarray] = {}
        self.doc_count = int(searcher.doc_count())
        #: (field, stem) → document frequency, as ``ParsedQuery.build`` asks for every stem of a query.
        self.frequencies: dict[tuple[str, str], int] = {}
        self._postings: OrderedDict[tuple[str, str], _Scored] = OrderedDict()
        self._phrases: OrderedDict[str, _Scored] = OrderedDict()
        self._lock = threading.Lock()

    def warm(self, searcher: Any) -> None:
        for name in SEARCH_FIELDS:
            self._field_lengths(searcher, name)

    def docnums_of(self, ids: Iterable[int]) -> np.ndarray:
        found = self.docnum_by_id
        return np.array(sorted({found[i] for i in map(int, ids) if i in found}), dtype=np.int64)

    def _field_lengths(self, searcher: Any, field_name: str) -> np.ndarray:
        """Each document's length of ``field_name`` as Whoosh's scorer reads it (1 where unknown)."""
        cached = self._lengths.get(field_name)
        if cached is not None:
            return cached
        lengths = np.ones(self.size, dtype=np.float64)
        for leaf, offset in _leaves(searcher):
            length_of = leaf.reader().doc_field_length
            for docnum in range(leaf.doc_count_all()):
                lengths[offset + docnum] = length_of(docnum, field_name, 1) or 1
        with self._lock:
            self._lengths[field_name] = lengths
        return lengths

    def postings(self, searcher: Any, field_name: str, stem: str) -> tuple[np.ndarray, np.ndarray]:
        """Ascending live document numbers holding ``stem`` in ``field_name`` and their BM25F scores
        (before the clause's boost). ``searcher`` is the calling thread's own."""
        key = (field_name, stem)
        with self._lock:
            cached = self._postings.get(key)
            if cached is not None:
                self._postings.move_to_end(key)
                return cached
        docs: list[np.ndarray] = []
        weights: list[np.ndarray] = []
        for leaf, offset in _leaves(searcher):
            reader = leaf.reader()
            if key not in reader:
                continue
            matcher = reader.postings(field_name, stem)
            raw = getattr(matcher, "child", matcher)  # a segment with deletions wraps its postings
            if hasattr(raw, "_read_ids") and hasattr(raw, "_read_weights") and hasattr(raw, "_next_block"):
                while raw.is_active():  # Whoosh 3 codec: whole blocks at a time
                    raw._read_ids()
                    raw._read_weights()
                    docs.append(np.asarray(raw._ids, dtype=np.int64) + offset)
                    weights.append(np.asarray(raw._weights, dtype=np.float64))
                    raw._next_block()
            else:  # inlined or other postings: one at a time
                ids: list[int] = []
                tfs: list[float] = []
                while raw.is_active():
                    ids.append(raw.id() + offset)
                    tfs.append(raw.weight())
                    raw.next()
                docs.append(np.asarray(ids, dtype=np.int64))
                weights.append(np.asarray(tfs, dtype=np.float64))
        docnums = np.concatenate(docs) if docs else np.zeros(0, dtype=np.int64)
        tf = np.concatenate(weights) if weights else np.zeros(0, dtype=np.float64)
        live = self.ids[docnums] > 0
        docnums, tf = docnums[live], tf[live]
        scores = np.zeros(0, dtype=np.float64)
        if len(docnums):
            idf = float(searcher.idf(field_name, stem))
            avgfl = float(searcher.avg_field_length(field_name) or 1)
            fl = self._field_lengths(searcher, field_name)[docnums]
            # whoosh.scoring.bm25, operation for operation (so the floats are the same)
            scores = idf * ((tf * (BM25_K1 + 1)) / (tf + BM25_K1 * ((1 - BM25_B) + BM25_B * fl / avgfl)))
        entry = (docnums, scores)
        self._keep(self._postings, key, entry)
        return entry

    def _keep(self, cache: OrderedDict[Any, _Scored], key: Any, entry: _Scored) -> None:
        """Remember ``entry`` in one of the bounded (least recently used) caches."""
        with self._lock:
            cache[key] = entry
            while len(cache) > POSTINGS_CACHE:
                cache.popitem(last=False)

    def _matcher_scores(self, searcher: Any, clause: wq.Query) -> tuple[np.ndarray, np.ndarray]:
        """A clause scored by Whoosh's own matcher over the whole index (phrases), cached."""
        key = repr(clause)
        with self._lock:
            cached = self._phrases.get(key)
            if cached is not None:
                self._phrases.move_to_end(key)
                return cached
        docnums: list[int] = []
        scores: list[float] = []
        matcher = clause.matcher(searcher)
        boost = 1.0
        if type(matcher) is WrappingMatcher:
            # The clause's boost: score the child directly, times the boost (as the wrapper does).
            boost, matcher = matcher.boost, matcher.child
        while matcher.is_active():
            docnums.append(matcher.id())
            scores.append(matcher.score())
            matcher.next()
        weights = np.asarray(scores, dtype=np.float64)
        if boost != 1.0:
            weights = weights * boost
        entry = (np.asarray(docnums, dtype=np.int64), weights)
        self._keep(self._phrases, key, entry)
        return entry

    def _positions(
        self, searcher: Any, field_name: str, stem: str, wanted: np.ndarray
    ) -> dict[int, set[int]]:
        """The positions of ``stem`` in ``field_name`` of each of the ``wanted`` document numbers."""
        fmt = searcher.schema[field_name].format
        out: dict[int, set[int]] = {}
        for leaf, offset in _leaves(searcher):
            reader = leaf.reader()
            if (field_name, stem) not in reader:
                continue
            matcher = reader.postings(field_name, stem)
            raw = getattr(matcher, "child", matcher)
            if hasattr(raw, "_read_ids") and hasattr(raw, "_read_values") and hasattr(raw, "_next_block"):
                while raw.is_active():
                    raw._read_ids()
                    docs = np.asarray(raw._ids, dtype=np.int64) + offset
                    hits = np.nonzero(np.isin(docs, wanted))[0]
                    if len(hits):
                        raw._read_values()
                        for i in hits.tolist():
                            out[int(docs[i])] = set(fmt.decode_positions(raw._values[i]))
                    raw._next_block()
            else:
                chosen = set(wanted.tolist())
                while raw.is_active():
                    docnum = raw.id() + offset
                    if docnum in chosen:
                        out[docnum] = set(raw.value_as("positions"))
                    raw.next()
        return out

    def _phrase(self, searcher: Any, clause: wq.Phrase) -> tuple[np.ndarray, np.ndarray]:
        """A phrase clause as Whoosh scores it (``Phrase`` → ``SpanNear2``, words adjacent and in
        order; the score is the sum of its words' term scores, times the boost), from the cached
        postings and the positions of only the documents holding every word."""
        key = repr(clause)
        with self._lock:
            cached = self._phrases.get(key)
            if cached is not None:
                self._phrases.move_to_end(key)
                return cached
        name = clause.fieldname
        words = [str(w) for w in clause.words]
        lists = [self.postings(searcher, name, w) for w in words]
        candidates = lists[0][0]
        for docs, _scores in lists[1:]:
            candidates = np.intersect1d(candidates, docs, assume_unique=True)
        matched: list[int] = []
        if len(candidates):
            positions = [self._positions(searcher, name, w, candidates) for w in words]
            for docnum in candidates.tolist():
                rest = [positions[i].get(docnum, set()) for i in range(1, len(words))]
                if any(
                    all(start + i in later for i, later in enumerate(rest, start=1))
                    for start in positions[0].get(docnum, ())
                ):
                    matched.append(docnum)
        docnums = np.asarray(matched, dtype=np.int64)
        parts = [scores[np.searchsorted(docs, docnums)] for docs, scores in lists]
        total = _tree_sum(parts) if len(docnums) else np.zeros(0, dtype=np.float64)
        boost = float(clause.boost)
        entry = (docnums, total * boost if boost != 1.0 else total)
        self._keep(self._phrases, key, entry)
        return entry

    def clause(self, searcher: Any, clause: wq.Query) -> tuple[np.ndarray, np.ndarray]:
        """(document numbers, scores) of one clause of a built query."""
        if type(clause) is wq.Term:
            docnums, scores = self.postings(searcher, clause.fieldname, str(clause.text))
            boost = float(clause.boost)
            return docnums, (scores * boost if boost != 1.0 else scores)
        if (
            type(clause) is wq.Phrase
            and clause.slop == 1
            and len(clause.words) >= 2
            and len(set(clause.words)) == len(clause.words)
        ):
            return self._phrase(searcher, clause)
        return self._matcher_scores(searcher, clause)

    def score(
        self, searcher: Any, clauses: Sequence[wq.Query], allowed: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Ascending document numbers matching any clause (within ``allowed``) and their summed scores."""
        totals = np.zeros(self.size, dtype=np.float64)
        hit = np.zeros(self.size, dtype=bool)
        for clause in clauses:
            docnums, scores = self.clause(searcher, clause)
            totals[docnums] += scores  # a clause holds each document once
            hit[docnums] = True
        if allowed is not None:
            within = np.zeros(self.size, dtype=bool)
            within[allowed] = True
            hit &= within
        matched = np.nonzero(hit)[0]
        return matched, totals[matched]

    def words(
        self, searcher: Any, clauses: Sequence[wq.Query], parsed: ParsedQuery, docnums: np.ndarray
    ) -> dict[int, list[str]]:
        """For each of ``docnums``, the user's words of the clauses it matches (clause order, once each)."""
        out: dict[int, list[str]] = {int(d): [] for d in docnums.tolist()}
        if not out:
            return out
        wanted = np.array(sorted(out), dtype=np.int64)
        for clause in clauses:
            stems = [str(clause.text)] if type(clause) is wq.Term else [str(w) for w in clause.words]
            present = wanted[np.isin(wanted, self.clause(searcher, clause)[0])]
            for docnum in present.tolist():
                found = out[docnum]
                for stem in stems:
                    word = parsed.words_by_stem.get(stem, stem)
                    if word not in found:
                        found.append(word)
        return out


def _tree_sum(parts: Sequence[np.ndarray]) -> np.ndarray:
    """Elementwise sum, added in the order Whoosh's intersection of matchers adds (halves)."""
    if len(parts) == 1:
        return parts[0]
    half = len(parts) // 2
    total: np.ndarray = _tree_sum(parts[:half]) + _tree_sum(parts[half:])
    return total


class _Statistics:
    """The two index statistics ``ParsedQuery.build`` reads, answered from the table's memo."""

    def __init__(self, searcher: Any, table: _ScoreTable) -> None:
        self._searcher = searcher
        self._table = table

    def doc_count(self) -> int:
        return self._table.doc_count

    def doc_frequency(self, field_name: str, stem: str) -> int:
        key = (field_name, stem)
        found = self._table.frequencies.get(key)
        if found is None:
            found = self._table.frequencies[key] = int(self._searcher.doc_frequency(field_name, stem))
            if len(self._table.frequencies) > 200_000:
                self._table.frequencies.clear()
        return found


def _leaves(searcher: Any) -> list[tuple[Any, int]]:
    """(leaf searcher, document number offset) of each segment."""
    if searcher.is_atomic():
        return [(searcher, 0)]
    return list(searcher.leaf_searchers())


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
