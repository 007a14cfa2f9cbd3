"""The keyword index (Whoosh, BM25F): stemmed fields with boosts, kept in step with the store.

The index lives in ``app.config["INDEX_DIR"]``. ``init_app`` registers an ``after_commit`` listener
on the app's sessions: ids that ``upsert_many`` / ``mark_vanished`` (or an admin action through
``mark_changed``) put in ``session.info["opportunities_changed"]`` are re-indexed and re-scored for
CVI right after the commit that changed them. Embedding them waits for ``flask reindex``.
"""

from __future__ import annotations

import bisect
import logging
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
SEARCH_FIELDS = ("title", "programs", "body", "agency", "categories")
MAX_QUERY_TERMS = 40
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
    """A user's text as a query that cannot fail: stems with weights, phrases, and the words behind them."""

    query: wq.Query | None
    words_by_stem: dict[str, str]

    @property
    def empty(self) -> bool:
        return self.query is None


def _stems(text: str) -> list[tuple[str, str]]:
    """(stem, original word) for each indexable word of ``text``."""
    out = []
    for raw in re.findall(r"[A-Za-z0-9][A-Za-z0-9'\u2019.-]*[A-Za-z0-9]|[A-Za-z0-9]", text):
        word = raw.replace("\u2019", "'")
        if word.lower() in WHOOSH_WORDS and word.isupper():
            continue  # a boolean operator typed by a user, not a search word
        for token in ANALYZER(word):
            out.append((token.text, word.lower()))
    return out


def safe_query(text: str, phrases: Sequence[str] = (), *, max_terms: int = MAX_QUERY_TERMS) -> ParsedQuery:
    """Parse free text into an OR query over the boosted fields; never raises.

    Quotes, colons, parentheses and operators are treated as text, not syntax: a user's words are
    stemmed and OR-ed (BM25F ranks documents matching more of them higher); the most frequent
    ``max_terms`` stems are kept so a long profile stays fast. Quoted strings and ``phrases``
    (e.g. focus areas) also count as phrases.
    """
    try:
        text = str(text or "")[:20_000]
        counts: dict[str, int] = {}
        words: dict[str, str] = {}
        for stem, word in _stems(text):
            counts[stem] = counts.get(stem, 0) + 1
            words.setdefault(stem, word)
        ranked = sorted(counts, key=lambda s: (-counts[s], s))[:max_terms]
        clauses: list[wq.Query] = []
        for stem in ranked:
            boost = 1.0 + 0.25 * min(counts[stem] - 1, 4)
            for name in SEARCH_FIELDS:
                clauses.append(wq.Term(name, stem, boost=boost))
        quoted = re.findall(r'"([^"]+)"', text)
        for phrase in [*quoted, *phrases][:20]:
            stems = [s for s, _ in _stems(phrase)]
            if 2 <= len(stems) <= 5:
                for name in ("title", "body"):
                    clauses.append(wq.Phrase(name, stems, boost=1.5))
        if not clauses:
            return ParsedQuery(None, {})
        return ParsedQuery(wq.Or(clauses), words)
    except Exception:  # pragma: no cover - defensive: user text must never raise
        log.exception("query parsing failed", extra={"text": text[:200]})
        return ParsedQuery(None, {})


class KeywordIndex:
    """A Whoosh index of visible opportunities (hidden, merged and vanished ones are removed)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._ix: Any = None
        self._generation = -1
        #: Bumped whenever the searcher must be reopened; each thread keeps its own searcher (Whoosh
        #: searchers share file handles and are not safe to use from two threads at once).
        self._epoch = 0
        self._local = threading.local()
        self._docnums: tuple[int | None, dict[int, int]] | None = None
        self._tables: tuple[int | None, _ScoreTable] | None = None

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

    def rebuild(self, session: Session, progress: Callable[[int, int], None] | None = None) -> int:
        """Index every visible opportunity from scratch; returns how many were indexed."""
        programs = load_programs_by_aln(session)
        ids = list(session.scalars(visible_ids_query()))
        ix = self._open(create=True)
        writer = self._writer(ix)
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
        with self._lock:
            self._epoch += 1
            self._ix = None
            self._generation = -1
            self._docnums = None
            self._tables = None

    def searcher(self) -> Any:
        """This thread's searcher, reused across queries; reopened when the index on disk has a newer
        generation (written by this process or another one)."""
        with self._lock:
            if self._ix is not None and self._ix.latest_generation() != self._generation:
                self._epoch += 1
                self._ix = None
                self._docnums = None
                self._tables = None
            if self._ix is None:
                if not self.exists():
                    return None
                self._ix = windex.open_dir(str(self.path))
                self._generation = self._ix.latest_generation()
            ix, epoch = self._ix, self._epoch
        local = self._local
        if getattr(local, "epoch", None) != epoch or local.searcher is None:
            if getattr(local, "searcher", None) is not None:
                local.searcher.close()
            local.searcher = ix.searcher(weighting=BM25F())
            local.epoch = epoch
        return local.searcher

    def _docnum_map(self, searcher: Any) -> dict[int, int]:
        """Opportunity id → Whoosh document number for this thread's searcher (built once per index
        generation and shared by the threads that use it)."""
        epoch = getattr(self._local, "epoch", None)
        with self._lock:
            cached = self._docnums
        if cached is not None and cached[0] == epoch:
            return cached[1]
        mapping = {int(fields["id"]): docnum for docnum, fields in searcher.iter_docs()}
        with self._lock:
            self._docnums = (epoch, mapping)
        return mapping

    def _table(self, searcher: Any) -> _ScoreTable:
        """Per-generation scoring state for this thread's searcher (shared by the threads using it)."""
        epoch = getattr(self._local, "epoch", None)
        with self._lock:
            cached = self._tables
        if cached is not None and cached[0] == epoch:
            return cached[1]
        table = _ScoreTable(searcher, self._docnum_map(searcher))
        with self._lock:
            self._tables = (epoch, table)
        return table

    def search(
        self,
        query: str | ParsedQuery,
        limit: int | None = 100,
        filter_ids: Iterable[int] | None = None,
        phrases: Sequence[str] = (),
        *,
        terms: bool = True,
    ) -> list[KeywordHit]:
        """The best matching opportunities for free text (or a parsed query); never raises on text.

        Scores are Whoosh's BM25F, computed with numpy over each query term's postings (cached
        per index generation) rather than document by document: a long profile query or a query
        matching most of the catalogue costs milliseconds. ``filter_ids`` restricts the hits to
        those opportunities; ``terms=False`` skips the matched words (ask ``matched_terms`` for the
        hits actually shown).
        """
        parsed = query if isinstance(query, ParsedQuery) else safe_query(query, phrases)
        if parsed.empty:
            return []
        searcher = self.searcher()
        if searcher is None:
            return []
        table = self._table(searcher)
        allowed = None
        if filter_ids is not None:
            allowed = table.docnums_of(filter_ids)
            if not len(allowed):
                return []
        docnums, scores = table.score(searcher, parsed.query, allowed)
        order = np.lexsort((docnums, -scores))
        if limit is not None:
            order = order[:limit]
        top = docnums[order]
        words = table.words(searcher, parsed, top) if terms else {}
        ids = table.ids[top].tolist()
        return [
            KeywordHit(opp_id, float(scores[pos]), words.get(int(docnum), []))
            for opp_id, pos, docnum in zip(ids, order.tolist(), top.tolist(), strict=True)
        ]

    def matched_terms(self, query: str | ParsedQuery, ids: Iterable[int]) -> dict[int, list[str]]:
        """The user's words each of ``ids`` matches (for the hits on the page shown)."""
        parsed = query if isinstance(query, ParsedQuery) else safe_query(query)
        searcher = None if parsed.empty else self.searcher()
        if searcher is None:
            return {}
        table = self._table(searcher)
        docnums = table.docnums_of(ids)
        found = table.words(searcher, parsed, docnums)
        return {int(table.ids[d]): words for d, words in found.items() if words}

    def doc_count(self) -> int:
        searcher = self.searcher()
        return 0 if searcher is None else int(searcher.doc_count())


#: Whoosh's BM25F defaults (the searcher is opened with ``BM25F()``).
BM25_B, BM25_K1 = 0.75, 1.2
#: (field, stem) postings kept per index generation; a long profile query uses up to 200.
POSTINGS_CACHE = 4096


class _ScoreTable:
    """BM25F scoring of one index generation with numpy, equal to Whoosh's own scores.

    A term clause's score for a document is ``boost * bm25(idf, weight, length, avgfl)``
    (``whoosh.scoring.BM25FScorer``; the field boost is already in the stored weight) and an ``Or``
    adds its clauses' scores. Each term's postings are read once per generation, block by block,
    and kept as arrays; phrase clauses are scored by Whoosh's own matcher on the few documents
    holding all their words.
    """

    def __init__(self, searcher: Any, docnums: dict[int, int]) -> None:
        self.size = int(searcher.doc_count_all())
        self.docnum_by_id = docnums
        self.ids = np.zeros(self.size, dtype=np.int64)
        if docnums:
            self.ids[np.fromiter(docnums.values(), dtype=np.int64)] = np.fromiter(docnums, dtype=np.int64)
        self._lengths: dict[str, np.ndarray] = {}
        self._postings: OrderedDict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self._phrases: OrderedDict[Any, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self._lock = threading.Lock()

    def docnums_of(self, ids: Iterable[int]) -> np.ndarray:
        found = self.docnum_by_id
        return np.array(sorted({found[i] for i in ids if i in found}), dtype=np.int64)

    def _field_lengths(self, searcher: Any, field_name: str) -> np.ndarray:
        with self._lock:
            cached = self._lengths.get(field_name)
        if cached is not None:
            return cached
        lengths = np.zeros(self.size, dtype=np.float64)
        for leaf, offset in searcher.leaf_searchers():
            reader_length = leaf.doc_field_length
            for local in range(leaf.doc_count_all()):
                lengths[offset + local] = reader_length(local, field_name, 1) or 1
        with self._lock:
            self._lengths[field_name] = lengths
        return lengths

    def postings(self, searcher: Any, field_name: str, stem: str) -> tuple[np.ndarray, np.ndarray]:
        """Sorted live docnums holding ``stem`` in ``field_name`` and their unboosted BM25F scores.

        ``searcher`` is the calling thread's own (Whoosh searchers are not shared across threads).
        """
        key = (field_name, stem)
        with self._lock:
            cached = self._postings.get(key)
            if cached is not None:
                self._postings.move_to_end(key)
                return cached
        ids: list[int] = []
        weights: list[float] = []
        for leaf, offset in searcher.leaf_searchers():
            reader = leaf.reader()
            if (field_name, stem) not in reader:
                continue
            matcher = reader.postings(field_name, stem)
            raw = getattr(matcher, "child", matcher)  # deletions wrap the postings in a filter
            if hasattr(raw, "_read_ids") and hasattr(raw, "_next_block"):
                while raw.is_active():
                    raw._read_ids()
                    raw._read_weights()
                    ids.extend(offset + d for d in raw._ids)
                    weights.extend(raw._weights)
                    raw._next_block()
            else:
                while raw.is_active():
                    ids.append(offset + raw.id())
                    weights.append(raw.weight())
                    raw.next()
        docnums = np.array(ids, dtype=np.int64)
        tf = np.array(weights, dtype=np.float64)
        if len(docnums):
            live = self.ids[docnums] > 0  # only live documents have an id
            docnums, tf = docnums[live], tf[live]
        scores = np.zeros(0, dtype=np.float64)
        if len(docnums):
            idf = float(searcher.idf(field_name, stem))
            avgfl = float(searcher.avg_field_length(field_name) or 1)
            length = self._field_lengths(searcher, field_name)[docnums]
            scores = idf * ((tf * (BM25_K1 + 1)) / (tf + BM25_K1 * ((1 - BM25_B) + BM25_B * length / avgfl)))
        entry = (docnums, scores)
        with self._lock:
            self._postings[key] = entry
            while len(self._postings) > POSTINGS_CACHE:
                self._postings.popitem(last=False)
        return entry

    def _phrase(self, searcher: Any, clause: wq.Phrase) -> tuple[np.ndarray, np.ndarray]:
        key = (clause.fieldname, tuple(clause.words), clause.slop, clause.boost)
        with self._lock:
            cached = self._phrases.get(key)
        if cached is not None:
            return cached
        candidates: np.ndarray | None = None
        for word in clause.words:
            docs = self.postings(searcher, clause.fieldname, word)[0]
            candidates = docs if candidates is None else np.intersect1d(candidates, docs, assume_unique=True)
        pairs = _score_docnums(searcher, clause, [] if candidates is None else candidates.tolist())
        entry = (
            np.array([d for _s, d in pairs], dtype=np.int64),
            np.array([score for score, _d in pairs], dtype=np.float64),
        )
        with self._lock:
            self._phrases[key] = entry
            while len(self._phrases) > POSTINGS_CACHE:
                self._phrases.popitem(last=False)
        return entry

    def _clause(self, searcher: Any, clause: wq.Query) -> tuple[np.ndarray, np.ndarray]:
        if isinstance(clause, wq.Term):
            docnums, scores = self.postings(searcher, clause.fieldname, str(clause.text))
            return docnums, scores * float(clause.boost) if clause.boost != 1 else scores
        if isinstance(clause, wq.Phrase):
            return self._phrase(searcher, clause)
        raise TypeError(f"unsupported clause {clause!r}")

    def score(
        self, searcher: Any, query: wq.Query, allowed: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(docnums, scores) of the documents ``query`` matches, within ``allowed`` if given."""
        clauses = query.subqueries if isinstance(query, wq.Or) else [query]
        total = np.zeros(self.size, dtype=np.float64)
        hit = np.zeros(self.size, dtype=bool)
        for clause in clauses:
            docnums, scores = self._clause(searcher, clause)
            total[docnums] += scores
            hit[docnums] = True
        if allowed is not None:
            mask = np.zeros(self.size, dtype=bool)
            mask[allowed] = True
            hit &= mask
        docnums = np.nonzero(hit)[0]
        return docnums, total[docnums]

    def words(self, searcher: Any, parsed: ParsedQuery, docnums: np.ndarray) -> dict[int, list[str]]:
        """For each docnum, the user's words whose stems it matches (query order, once each)."""
        out: dict[int, list[str]] = {int(d): [] for d in docnums.tolist()}
        if not out or parsed.query is None:
            return out
        wanted = np.array(sorted(out), dtype=np.int64)
        clauses = parsed.query.subqueries if isinstance(parsed.query, wq.Or) else [parsed.query]
        for clause in clauses:
            stems = [str(clause.text)] if isinstance(clause, wq.Term) else list(getattr(clause, "words", []))
            docs = self._clause(searcher, clause)[0]
            present = wanted[np.isin(wanted, docs, assume_unique=True)]
            for docnum in present.tolist():
                words = out[docnum]
                for stem in stems:
                    word = parsed.words_by_stem.get(stem, stem)
                    if word not in words:
                        words.append(word)
        return out


def _words(parsed: ParsedQuery, matched: Iterable[tuple[str, Any]]) -> list[str]:
    """Matched (field, stem) pairs as the user's own words, once each, in match order."""
    terms: list[str] = []
    seen: set[str] = set()
    for _field, raw in matched:
        stem = raw.decode("utf-8") if isinstance(raw, bytes) else str(raw)
        word = parsed.words_by_stem.get(stem, stem)
        if word not in seen:
            seen.add(word)
            terms.append(word)
    return terms


def _score_docnums(searcher: Any, query: wq.Query, docnums: list[int]) -> list[tuple[float, int]]:
    """(BM25F score, docnum) of each of the sorted ``docnums`` that ``query`` matches.

    Steps the query's matcher to each wanted document (``skip_to`` uses the postings' skip data),
    segment by segment, instead of scoring every matching document and throwing most away.
    """
    context = searcher.context()
    out: list[tuple[float, int]] = []
    leaves = list(searcher.leaf_searchers())
    for position, (leaf, offset) in enumerate(leaves):
        end = leaves[position + 1][1] if position + 1 < len(leaves) else None
        lo = bisect.bisect_left(docnums, offset)
        hi = len(docnums) if end is None else bisect.bisect_left(docnums, end)
        if lo >= hi:
            continue
        matcher = query.matcher(leaf, context)
        for docnum in docnums[lo:hi]:
            if not matcher.is_active():
                break
            local = docnum - offset
            if matcher.id() < local:
                matcher.skip_to(local)
                if not matcher.is_active():
                    break
            if matcher.id() == local:
                out.append((float(matcher.score()), docnum))
    return out


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
