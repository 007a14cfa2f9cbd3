"""The keyword index (Whoosh, BM25F): stemmed fields with boosts, kept in step with the store.

The index lives in ``app.config["INDEX_DIR"]``. ``init_app`` registers an ``after_commit`` listener
on the app's sessions: ids that ``upsert_many`` / ``mark_vanished`` (or an admin action through
``mark_changed``) put in ``session.info["opportunities_changed"]`` are re-indexed and re-scored for
CVI right after the commit that changed them. Embedding them waits for ``flask reindex``.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
        self._searcher: Any = None
        self._ix: Any = None
        self._generation = -1

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
            if self._searcher is not None:
                self._searcher.close()
            self._searcher = None

    def searcher(self) -> Any:
        """A searcher reused across queries; reopened when the index on disk has a newer generation
        (written by this process or another one)."""
        with self._lock:
            if self._searcher is not None:
                if self._ix.latest_generation() == self._generation:
                    return self._searcher
                self._searcher.close()
                self._searcher = None
            if not self.exists():
                return None
            self._ix = windex.open_dir(str(self.path))
            self._generation = self._ix.latest_generation()
            self._searcher = self._ix.searcher(weighting=BM25F())
            return self._searcher

    def search(
        self,
        query: str | ParsedQuery,
        limit: int | None = 100,
        filter_ids: Iterable[int] | None = None,
        phrases: Sequence[str] = (),
    ) -> list[KeywordHit]:
        """The best matching opportunities for free text (or a parsed query); never raises on text."""
        parsed = query if isinstance(query, ParsedQuery) else safe_query(query, phrases)
        if parsed.empty:
            return []
        searcher = self.searcher()
        if searcher is None:
            return []
        allowed = None if filter_ids is None else {str(i) for i in filter_ids}
        if allowed is not None and not allowed:
            return []
        if allowed is not None and len(allowed) <= 1024:
            results = searcher.search(
                parsed.query, limit=limit, terms=True, filter=wq.Or([wq.Term("id", i) for i in allowed])
            )
        else:
            results = searcher.search(parsed.query, limit=None if allowed else limit, terms=True)
        hits = []
        for hit in results:
            opp_id = hit["id"]
            if allowed is not None and opp_id not in allowed:
                continue
            terms = []
            if hit.matched_terms():
                seen: set[str] = set()
                for _field, raw in hit.matched_terms():
                    stem = raw.decode("utf-8") if isinstance(raw, bytes) else str(raw)
                    word = parsed.words_by_stem.get(stem, stem)
                    if word not in seen:
                        seen.add(word)
                        terms.append(word)
            hits.append(KeywordHit(int(opp_id), float(hit.score), terms))
            if limit is not None and len(hits) >= limit:
                break
        return hits

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
