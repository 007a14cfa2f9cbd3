"""The ranker: the one way a program profile becomes a ranked, explained list of opportunities.

Used by the site, the API, digests and the evaluation. Steps:

1. candidates from the keyword index (BM25F over stemmed, boosted fields) and from the passage
   embeddings (best passage cosine), fused into one topic score (tuned weighted sum, or RRF);
2. the topic score is adjusted by the opportunity's CVI score, the profile's applicant eligibility
   (not eligible → strongly down), deadline feasibility, award size against the profile budget and
   curated boosts (featured up; hidden and merged never shown);
3. filters (department, status, close-date window, days left, CVI only, excluded ids);
4. each result carries an explanation a grant writer can check in seconds.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
from flask import current_app, has_app_context
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Opportunity, OrgType, PassageEmbedding
from matching import cvi, embeddings
from matching.eligibility import CODE_ORG_TYPES, Verdict, assess_cached, for_profile, names_rural
from matching.keyword import IndexUnavailable, KeywordHit, ParsedQuery, get_index, safe_query
from matching.profile import MatchingError, ProfileInput
from matching.text import ProgramRef, load_programs_by_aln, program_for, sentences

Method = Literal["hybrid", "keyword", "semantic"]
METHODS: tuple[str, ...] = ("hybrid", "keyword", "semantic")

#: Candidates taken from each retriever before fusion.
CANDIDATES = 300
#: Fusion: topic = SEMANTIC_WEIGHT * cosine + KEYWORD_WEIGHT * (bm25 / best bm25).
SEMANTIC_WEIGHT = 1.0
KEYWORD_WEIGHT = 0.5
#: Cosine below this says nothing about topic (unrelated MiniLM texts sit around 0.1 to 0.2).
SEMANTIC_FLOOR = 0.0
#: Share of the focus areas' own embedding in the semantic query.
FOCUS_QUERY_WEIGHT = 0.0
#: "weighted" (above) or "rrf" (reciprocal rank fusion, scaled to the weighted score's range).
FUSION = "weighted"
RRF_K = 60
RRF_SCALE = 30.0
#: Multipliers after fusion.
ELIGIBILITY_FACTOR = {"eligible": 1.0, "partner": 0.85, "unknown": 0.9, "not eligible": 0.4}
CVI_BASE, CVI_GAIN = 0.7, 0.8
#: Added to the topic score: the CVI score counts even where the text says little about the profile.
CVI_WEIGHT = 0.0
FEATURED_FACTOR = 1.1
BUDGET_MISMATCH_FACTOR = 0.9
TIGHT_DEADLINE_FACTOR = 0.9
#: Listings whose applicant codes all admit the profile's org type or its peers (tribal set-asides,
#: LEA-only, local-government-only …).
TARGETED_FACTOR = 1.3
#: Applicant kinds that compete for the same reserved money: units of local government and tribes
#: (DOJ, HHS and DOL name them together), so a listing for "counties, cities and tribes" is as much a
#: set-aside for a city office as one naming cities alone.
#: Grants.gov codes "99 unrestricted" and "25 others (see text)": the listing is open beyond the named kinds.
OPEN_CODES = frozenset({"25", "99"})
PEER_GROUPS: tuple[frozenset[OrgType], ...] = (
    frozenset({OrgType.CITY_GOVERNMENT, OrgType.COUNTY_GOVERNMENT, OrgType.TRIBAL_GOVERNMENT}),
)
#: Each profile focus area the opportunity's catalogue program funds (or its text names), up to 3.
FOCUS_GAIN = 0.1
FOCUS_CAP = 3
#: Research or evaluation calls for a service program (and the reverse).
RESEARCH_MISMATCH_FACTOR = 0.6
SERVICE_FOR_RESEARCHER_FACTOR = 0.85
RESEARCH_CAPABLE_FACTOR = 0.6
_RESEARCH_TITLE = re.compile(
    r"\b(research|evaluation|evaluating|study|studies|centers? of excellence)\b", re.I
)
_RESEARCH_WORD = re.compile(
    r"\b(research\w*|evaluation|rigorous|R01|R21|R61|investigators?|study|studies)\b", re.I
)
RESEARCH_CAPABLE = (OrgType.HOSPITAL, OrgType.INSTITUTION_OF_HIGHER_EDUCATION)
#: A profile that does research (not one that names its research partner: "our research partner found …").
_PROFILE_RESEARCH = re.compile(r"\bresearch(?!\s+partner)", re.I)


@dataclass
class RankFilters:
    """What a result may be. The defaults suit the site: open or forecasted, at least a week left,
    CVI-eligible only. ``RankFilters.everything()`` is the evaluation's (no deadline filter)."""

    departments: Sequence[str] | None = None
    statuses: Sequence[str] | None = ("posted", "forecasted")
    close_after: dt.date | None = None
    close_before: dt.date | None = None
    min_days_left: int | None = 7
    cvi_only: bool = True
    exclude_ids: Collection[int] = ()

    @classmethod
    def everything(cls, *, cvi_only: bool = False) -> RankFilters:
        return cls(statuses=None, min_days_left=None, cvi_only=cvi_only)


@dataclass
class Explanation:
    reason: str
    matched_terms: list[str] = field(default_factory=list)
    passage: str | None = None
    eligibility: Verdict = field(default_factory=lambda: Verdict("unknown"))
    cvi_programs: list[dict[str, str]] = field(default_factory=list)
    days_left: int | None = None
    cvi_reasons: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "reason": self.reason,
            "matched_terms": list(self.matched_terms),
            "passage": self.passage,
            "eligibility": {"verdict": self.eligibility.verdict, "sentence": self.eligibility.sentence},
            "cvi_programs": list(self.cvi_programs),
            "days_left": self.days_left,
            "cvi_reasons": list(self.cvi_reasons),
        }


@dataclass
class Match:
    opportunity: Opportunity
    score: float
    explanation: Explanation


@dataclass
class _Candidate:
    opportunity_id: int
    semantic: float = 0.0
    keyword: float = 0.0
    semantic_rank: int | None = None
    keyword_rank: int | None = None
    matched_terms: list[str] = field(default_factory=list)
    sem_position: int | None = None
    topic: float = 0.0


def rank(
    session: Session,
    profile: ProfileInput | Mapping[str, Any],
    *,
    filters: RankFilters | None = None,
    limit: int = 20,
    offset: int = 0,
    method: str = "hybrid",
    today: dt.date | None = None,
    index_dir: str | None = None,
    explain_only: Collection[int] | None = None,
    cache: RankCache | None = None,
) -> list[Match]:
    """The best opportunities for a program profile, best first, each with its explanation.

    ``explain_only`` limits the written explanation (reason, passage, programs) to those opportunity
    ids — a digest shows only the new ones among a profile's matches; the rest keep their score and
    eligibility verdict with an empty reason. ``cache`` shares candidate rows and filter results
    between the rankings of one run over an unchanged catalogue (a digest run); results are the same.
    Raises ``MatchingError`` (a readable message) for a bad profile, method, limit or filter.
    """
    profile = profile if isinstance(profile, ProfileInput) else ProfileInput.parse(dict(profile))
    if method not in METHODS:
        raise MatchingError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
    if not 1 <= limit <= 200 or offset < 0 or offset > 10_000:
        raise MatchingError("limit must be 1 to 200 and offset 0 to 10,000")
    filters = filters or RankFilters()
    if filters.close_after and filters.close_before and filters.close_after > filters.close_before:
        raise MatchingError("close_after must not be later than close_before")
    today = today or dt.date.today()
    text = profile.query_text()
    parsed = safe_query(text, phrases=profile.focus_areas)
    if parsed.empty and method == "keyword":
        raise MatchingError("the profile has no searchable words (only punctuation or operators)")

    wanted = offset + limit
    semantic = _semantic(session, profile, text, method)
    candidates = _retrieve(session, parsed, method, CANDIDATES, None, index_dir, semantic)
    cache = cache or RankCache(shared=False)
    matches = _score(session, profile, candidates, filters, today, method, cache)
    if len(matches) < wanted and candidates:
        # Narrow filters: retrieve again, among the opportunities the filters allow.
        allowed = cache.allowed_ids(session, filters, today)
        if len(allowed) > len(matches):
            candidates = _retrieve(session, parsed, method, len(allowed), allowed, index_dir, semantic)
            matches = _score(session, profile, candidates, filters, today, method, cache)
    query_vector, matrix = (semantic[0], semantic[1]) if semantic is not None else (None, None)
    page = _load_page(session, matches[offset : offset + limit])
    explained = page if explain_only is None else [mc for mc in page if mc[0].opportunity.id in explain_only]
    _explain(session, explained, query_vector, matrix, profile.org_type, parsed)
    return [m for m, _c in page]


# -- retrieval -----------------------------------------------------------------------------------


def _index_dir(explicit: str | None) -> str:
    if explicit:
        return explicit
    if has_app_context():
        return str(current_app.config["INDEX_DIR"])
    raise MatchingError("no keyword index configured (run inside the app or pass index_dir)")


_Semantic = tuple[np.ndarray, embeddings.VectorMatrix, np.ndarray]


def _semantic(session: Session, profile: ProfileInput, text: str, method: str) -> _Semantic | None:
    """(query vector, vector matrix, best passage cosine per opportunity), or None when the method
    reads no vectors or none are stored. Computed once per ranking: both retrieval passes use it."""
    if method not in ("hybrid", "semantic"):
        return None
    matrix = embeddings.VECTORS.get(session)
    if not len(matrix):
        return None
    query_vector = embeddings.embed_query(text)
    if FOCUS_QUERY_WEIGHT and profile.focus_areas:
        # The focus areas on their own, so the catalogue's "can fund …" lines are found too.
        focus_vector = embeddings.embed_query("; ".join(profile.focus_areas))
        mixed = (1 - FOCUS_QUERY_WEIGHT) * query_vector + FOCUS_QUERY_WEIGHT * focus_vector
        query_vector = (mixed / float(np.linalg.norm(mixed))).astype(np.float32)
    return query_vector, matrix, matrix.scores(query_vector)


def _retrieve(
    session: Session,
    parsed: ParsedQuery,
    method: str,
    depth: int,
    allowed: set[int] | None,
    index_dir: str | None,
    vectors: _Semantic | None,
) -> dict[int, _Candidate]:
    candidates: dict[int, _Candidate] = {}
    query_vector = None
    matrix = None
    if vectors is not None:
        query_vector, matrix, best = vectors
        ids = matrix.opportunity_ids
        if allowed is not None:
            mask = np.isin(ids, np.fromiter(allowed, dtype=np.int64, count=len(allowed)))
            positions = np.nonzero(mask)[0]
        else:
            positions = np.arange(len(ids))
        if len(positions) > depth:
            part = np.argpartition(-best[positions], depth - 1)[:depth]
            positions = positions[part]
        positions = positions[np.argsort(-best[positions], kind="stable")]
        for rank_no, pos in enumerate(positions.tolist(), start=1):
            opp_id = int(ids[pos])
            candidates[opp_id] = _Candidate(
                opp_id, semantic=float(best[pos]), semantic_rank=rank_no, sem_position=pos
            )
    if method in ("hybrid", "keyword") and not parsed.empty:
        try:
            hits: list[KeywordHit] = get_index(_index_dir(index_dir)).search(
                parsed, limit=depth, filter_ids=allowed
            )
        except IndexUnavailable:  # damaged: logged, rebuilt elsewhere; rank on meaning meanwhile
            hits = []
        top = hits[0].score if hits else 1.0
        for rank_no, hit in enumerate(hits, start=1):
            cand = candidates.get(hit.opportunity_id)
            if cand is None:
                cand = candidates[hit.opportunity_id] = _Candidate(hit.opportunity_id)
                if method == "hybrid" and matrix is not None and query_vector is not None:
                    pos = int(np.searchsorted(matrix.opportunity_ids, hit.opportunity_id))
                    if (
                        pos < len(matrix.opportunity_ids)
                        and matrix.opportunity_ids[pos] == hit.opportunity_id
                    ):
                        cand.sem_position = pos
                        cand.semantic = float(matrix.scores_at(pos, query_vector))
            cand.keyword = hit.score / top if top > 0 else 0.0
            cand.keyword_rank = rank_no
            cand.matched_terms = hit.matched_terms
    if method == "hybrid" and FUSION == "rrf":
        by_sem = sorted(candidates.values(), key=lambda c: -c.semantic)
        for position, cand in enumerate(by_sem, start=1):
            cand.semantic_rank = position
        for cand in candidates.values():
            cand.topic = RRF_SCALE * rrf([cand.semantic_rank, cand.keyword_rank], RRF_K)
        return candidates
    floor = SEMANTIC_FLOOR
    for cand in candidates.values():
        semantic = max(0.0, cand.semantic - floor) / (1 - floor)
        if method == "semantic":
            cand.topic = semantic
        elif method == "keyword":
            cand.topic = cand.keyword
        else:
            cand.topic = SEMANTIC_WEIGHT * semantic + KEYWORD_WEIGHT * cand.keyword
    return candidates


# -- scoring and filters -------------------------------------------------------------------------


def _filtered_ids(filters: RankFilters, today: dt.date) -> Any:
    query = select(Opportunity.id).where(
        Opportunity.hidden.is_(False),
        Opportunity.merged_into_id.is_(None),
        Opportunity.vanished_at.is_(None),
    )
    if filters.departments:
        query = query.where(Opportunity.department.in_([d.strip() for d in filters.departments]))
    if filters.statuses:
        query = query.where(Opportunity.status.in_([str(s).lower() for s in filters.statuses]))
    if filters.close_after:
        query = query.where(Opportunity.close_date >= filters.close_after)
    if filters.close_before:
        query = query.where(Opportunity.close_date <= filters.close_before)
    if filters.min_days_left is not None:
        earliest = today + dt.timedelta(days=filters.min_days_left)
        query = query.where((Opportunity.close_date.is_(None)) | (Opportunity.close_date >= earliest))
    if filters.cvi_only:
        query = query.where(Opportunity.cvi_eligible.is_(True))
    if filters.exclude_ids:
        query = query.where(Opportunity.id.not_in(list(filters.exclude_ids)))
    return query


@dataclass(slots=True)
class _Row:
    """The columns scoring reads, as plain values: building hundreds of ORM objects per ranking
    (each with deferred loaders for its other columns) cost more than scoring them."""

    id: int
    title: str
    description: str
    eligible_applicants: str | None
    eligibility_codes: list[str]
    aln: list[str]
    cvi_score: float | None
    cvi_evidence: float | None
    award_ceiling: int | None
    award_floor: int | None
    close_date: dt.date | None
    featured: bool


#: What scoring and the explanations read (``_Row``'s fields, in order); the rest (description_html,
#: extra …) stays in the store until the page's opportunities are loaded whole.
_SCORING_COLUMNS = (
    Opportunity.id,
    Opportunity.title,
    Opportunity.description,
    Opportunity.eligible_applicants,
    Opportunity.eligibility_codes,
    Opportunity.aln,
    Opportunity.cvi_score,
    Opportunity.cvi_evidence,
    Opportunity.award_ceiling,
    Opportunity.award_floor,
    Opportunity.close_date,
    Opportunity.featured,
)


class RankCache:
    """What the rankings of one run share: each candidate's scoring row and the ids each set of filters
    allows. A digest run ranks hundreds of profiles over the same catalogue; reading and decoding the
    same rows for every profile was a third of its time. Valid while the catalogue does not change:
    make one per run (``shared=False``, a single ranking, reads only what it needs, filters in SQL)."""

    def __init__(self, *, shared: bool = True) -> None:
        self.shared = shared
        self._rows: dict[int, _Row] = {}
        self._allowed: dict[tuple[Any, ...], frozenset[int]] = {}

    def allowed_ids(self, session: Session, filters: RankFilters, today: dt.date) -> set[int]:
        """Ids of the opportunities the filters allow (the excluded ids left out)."""
        if not self.shared:
            return set(session.scalars(_filtered_ids(filters, today)))
        key = (
            tuple(filters.departments or ()),
            tuple(filters.statuses or ()),
            filters.close_after,
            filters.close_before,
            filters.min_days_left,
            filters.cvi_only,
            today,
        )
        allowed = self._allowed.get(key)
        if allowed is None:
            unexcluded = replace(filters, exclude_ids=())
            allowed = self._allowed[key] = frozenset(session.scalars(_filtered_ids(unexcluded, today)))
        return set(allowed.difference(filters.exclude_ids)) if filters.exclude_ids else set(allowed)

    def rows_for(self, session: Session, ids: list[int], filters: RankFilters, today: dt.date) -> list[_Row]:
        """The scoring rows of the candidates the filters allow."""
        if not self.shared:
            base = _filtered_ids(filters, today).with_only_columns(*_SCORING_COLUMNS)
            return [
                _Row(*values)
                for start in range(0, len(ids), 900)
                for values in session.execute(base.where(Opportunity.id.in_(ids[start : start + 900])))
            ]
        allowed = self.allowed_ids(session, filters, today)
        wanted = [i for i in ids if i in allowed]
        missing = [i for i in wanted if i not in self._rows]
        columns = select(*_SCORING_COLUMNS)
        for start in range(0, len(missing), 900):
            for values in session.execute(columns.where(Opportunity.id.in_(missing[start : start + 900]))):
                self._rows[values[0]] = _Row(*tuple(values))
        return [self._rows[i] for i in wanted if i in self._rows]


#: A scored candidate: its row, score (rounded), explanation so far, and retrieval figures.
_Scored = tuple[_Row, float, Explanation, _Candidate]


def _load_page(session: Session, page: Sequence[_Scored]) -> list[tuple[Match, _Candidate]]:
    """The page's opportunities loaded whole in one query (callers never lazy-load row by row)."""
    ids = [row.id for row, _s, _e, _c in page]
    found = (
        {o.id: o for o in session.scalars(select(Opportunity).where(Opportunity.id.in_(ids)))} if ids else {}
    )
    out = []
    for row, score, explanation, cand in page:
        opportunity = found.get(row.id)
        if opportunity is not None:
            explanation.cvi_reasons = list(opportunity.cvi_reasons or [])
            out.append((Match(opportunity, score, explanation), cand))
    return out


def _score(
    session: Session,
    profile: ProfileInput,
    candidates: Mapping[int, _Candidate],
    filters: RankFilters,
    today: dt.date,
    method: str,
    cache: RankCache,
) -> list[_Scored]:
    if not candidates:
        return []
    rows = cache.rows_for(session, list(candidates), filters, today)
    budget = parse_budget(profile.budget_range)
    programs = load_programs_by_aln(session)
    focus = [f.lower() for f in profile.focus_areas]
    researcher: bool | None = researches(f"{profile.program_description} {' '.join(focus)}")
    if not researcher and profile.org_type in RESEARCH_CAPABLE:
        researcher = None  # hospitals and universities also do research: a milder penalty
    rural = names_rural(" ".join([profile.program_description, *profile.populations]))
    out: list[_Scored] = []
    refs_by_alns: dict[tuple[str, ...], list[ProgramRef]] = {}
    for opportunity in rows:
        cand = candidates[opportunity.id]
        alns = tuple(opportunity.aln or ())
        refs = refs_by_alns.get(alns)
        if refs is None:
            refs = refs_by_alns[alns] = _programs(opportunity, programs)
        verdict = for_profile(assess_cached(opportunity, profile.org_type, refs), opportunity, rural)
        cvi_score = cvi_strength(opportunity)
        score = cand.topic + CVI_WEIGHT * cvi_score
        score *= CVI_BASE + CVI_GAIN * cvi_score
        score *= ELIGIBILITY_FACTOR[verdict.verdict]
        if verdict.verdict == "eligible" and reserved_for(opportunity, profile.org_type):
            score *= TARGETED_FACTOR
        if focus:
            score *= 1 + FOCUS_GAIN * min(FOCUS_CAP, focus_overlap(opportunity, programs, focus))
        research = is_research(opportunity)
        if research and researcher is False:
            score *= RESEARCH_MISMATCH_FACTOR
        elif research and researcher is None:
            score *= RESEARCH_CAPABLE_FACTOR
        elif researcher and not research:
            score *= SERVICE_FOR_RESEARCHER_FACTOR
        if budget and not budget_fits(opportunity, budget):
            score *= BUDGET_MISMATCH_FACTOR
        days = days_left(opportunity, today)
        if filters.min_days_left is not None and days is not None and days < filters.min_days_left + 14:
            score *= TIGHT_DEADLINE_FACTOR
        if opportunity.featured:
            score *= FEATURED_FACTOR
        explanation = Explanation(
            reason="",
            eligibility=verdict,
            days_left=days,
            matched_terms=list(cand.matched_terms[:8]),
        )
        out.append((opportunity, round(float(score), 6), explanation, cand))
    out.sort(key=lambda scored: (-scored[1], scored[0].id))
    return out


def focus_overlap(
    opportunity: Opportunity | _Row, programs: Mapping[str, ProgramRef], focus: Sequence[str]
) -> int:
    """How many of the profile's focus areas the opportunity's catalogue program funds or its text names."""
    activities = {a.lower() for ref in _programs(opportunity, programs) for a in ref.activities}
    text = f"{opportunity.title} {opportunity.description or ''}".lower()
    return sum(1 for area in focus if area in activities or area in text)


def cvi_strength(opportunity: Opportunity | _Row) -> float:
    """How strongly the listing is CVI money, 0 to 1: the classifier's evidence over all it can find
    (a listing naming violence interruption, GVI and HVIP outweighs a block grant CVI can also use,
    though both score 1.0); the capped score where the evidence was not stored yet."""
    if opportunity.cvi_evidence is not None:
        return min(1.0, float(opportunity.cvi_evidence) / cvi.MAX_EVIDENCE)
    return float(opportunity.cvi_score or 0.0)


def reserved_for(opportunity: Opportunity | _Row, org_type: OrgType) -> bool:
    """Every applicant code the listing names admits this org type or only its peers (``PEER_GROUPS``):
    money set aside for its kind of applicant, not open to every nonprofit, school and university."""
    codes = [c.strip().zfill(2) for c in opportunity.eligibility_codes or []]
    if OPEN_CODES & set(codes):
        return False  # "unrestricted" or "others (see text)": not reserved for anyone
    known = [CODE_ORG_TYPES[c] for c in codes if c in CODE_ORG_TYPES]
    if not known:
        return False
    peers = next((group for group in PEER_GROUPS if org_type in group), frozenset({org_type}))
    return all(org_type in kinds or (kinds and kinds <= peers) for kinds in known)


def researches(profile_text: str) -> bool:
    """The profile's organization does research itself (naming its research partner is not enough)."""
    return bool(_PROFILE_RESEARCH.search(profile_text))


def is_research(opportunity: Opportunity | _Row) -> bool:
    """A research or evaluation call rather than money for services (remembered per text)."""
    title, description = opportunity.title or "", opportunity.description or ""
    key = (int(opportunity.id or 0), hash((title, description)))
    found = _research_cache.get(key)
    if found is None:
        found = bool(_RESEARCH_TITLE.search(title)) or len(_RESEARCH_WORD.findall(description)) >= 3
        if len(_research_cache) >= 200_000:
            _research_cache.clear()
        _research_cache[key] = found
    return found


_research_cache: dict[tuple[int, int], bool] = {}


def days_left(opportunity: Opportunity | _Row, today: dt.date) -> int | None:
    return (opportunity.close_date - today).days if opportunity.close_date else None


_MONEY = re.compile(r"\$?\s*(\d+(?:[.,]\d+)*)\s*(k|m|mm|million|thousand|b|billion)?", re.I)


def parse_budget(text: str | None) -> tuple[float, float] | None:
    """``"$250,000-$500,000"``, ``"up to 1M"``, ``"300k"`` → (low, high) dollars; None if unreadable."""
    if not text:
        return None
    amounts = []
    for number, unit in _MONEY.findall(text):
        try:
            value = float(number.replace(",", ""))
        except ValueError:
            continue
        unit = unit.lower()
        value *= {
            "k": 1e3,
            "thousand": 1e3,
            "m": 1e6,
            "mm": 1e6,
            "million": 1e6,
            "b": 1e9,
            "billion": 1e9,
        }.get(unit, 1.0)
        if value >= 1000:
            amounts.append(value)
    if not amounts:
        return None
    if re.search(r"\b(up to|under|less than|max)\b", text, re.I) or len(amounts) == 1:
        return (min(amounts) / 4 if len(amounts) == 1 else min(amounts), max(amounts))
    return min(amounts), max(amounts)


def budget_fits(opportunity: Opportunity | _Row, budget: tuple[float, float]) -> bool:
    """Awards far below what the program needs, or floors far above it, do not fit."""
    low, high = budget
    ceiling = opportunity.award_ceiling
    floor = opportunity.award_floor
    if ceiling and ceiling < low / 4:
        return False
    return not (floor and floor > high * 4)


# -- explanations --------------------------------------------------------------------------------


def _explain(
    session: Session,
    page: Sequence[tuple[Match, _Candidate]],
    query_vector: np.ndarray | None,
    matrix: embeddings.VectorMatrix | None,
    org_type: OrgType,
    parsed: ParsedQuery,
) -> None:
    if not page:
        return
    programs = load_programs_by_aln(session)
    rows: dict[int, int] = {}
    if matrix is not None and query_vector is not None:
        for match, cand in page:
            if cand.sem_position is not None:
                rows[match.opportunity.id] = matrix.best_row(cand.sem_position, query_vector)
    texts = (
        dict(
            session.execute(
                select(PassageEmbedding.id, PassageEmbedding.passage).where(
                    PassageEmbedding.id.in_(list(rows.values()))
                )
            ).all()
        )
        if rows
        else {}
    )
    for match, _cand in page:
        opp = match.opportunity
        exp = match.explanation
        refs = _programs(opp, programs)
        if not exp.matched_terms:
            names = " ".join(r.name for r in refs)
            exp.matched_terms = parsed.matched_terms(f"{opp.title} {opp.description or ''} {names}")[:8]
        exp.cvi_programs = [{"slug": r.slug, "name": r.name, "aln": r.aln} for r in refs]
        passage = texts.get(rows.get(opp.id, -1))
        exp.passage = _best_sentences(passage, exp.matched_terms) if passage else _lead(opp)
        exp.reason = _reason(exp, refs, org_type)


def _programs(opportunity: Opportunity | _Row, programs: Mapping[str, ProgramRef]) -> list[ProgramRef]:
    refs: list[ProgramRef] = []
    for aln in opportunity.aln or []:
        ref = program_for(aln, programs)
        if ref is not None and ref not in refs:
            refs.append(ref)
    return refs


def _best_sentences(passage: str, terms: Sequence[str], max_chars: int = 360) -> str:
    """The passage cut to the sentences with the most matched terms."""
    parts = sentences(passage)
    if len(passage) <= max_chars or not parts:
        return passage[:max_chars]
    lowered = [t.lower() for t in terms]
    scored = sorted(range(len(parts)), key=lambda i: (-sum(t in parts[i].lower() for t in lowered), i))
    chosen: list[int] = []
    size = 0
    for i in scored:
        if size + len(parts[i]) > max_chars and chosen:
            break
        chosen.append(i)
        size += len(parts[i]) + 1
    return " ".join(parts[i] for i in sorted(chosen))[:max_chars]


def _lead(opportunity: Opportunity) -> str | None:
    found = sentences(opportunity.description or "")
    return found[0][:360] if found else None


def _reason(exp: Explanation, refs: Sequence[ProgramRef], org_type: OrgType) -> str:
    parts = []
    if exp.matched_terms:
        parts.append("Matches " + ", ".join(exp.matched_terms[:5]))
    else:
        parts.append("Close to your program description")
    if refs:
        parts.append(f"CVI program: {refs[0].name} ({refs[0].aln})")
    parts.append(
        {
            "eligible": f"a {org_type} can apply",
            "partner": f"a {org_type} can take part as partner or subrecipient",
            "not eligible": f"a {org_type} does not appear eligible",
            "unknown": "check eligibility",
        }[exp.eligibility.verdict]
    )
    if exp.days_left is not None:
        if exp.days_left >= 0:
            parts.append(f"{exp.days_left} days left")
        else:
            parts.append(f"closed {-exp.days_left} days ago")
    return "; ".join(parts)


def with_filters(filters: RankFilters, **changes: Any) -> RankFilters:
    return replace(filters, **changes)


def rrf(ranks: Sequence[int | None], k: int = 60) -> float:
    """Reciprocal rank fusion of 1-based ranks (None = not retrieved)."""
    return sum(1.0 / (k + r) for r in ranks if r is not None) if ranks else 0.0
