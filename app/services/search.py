"""Search the catalogue: keyword query, filters, facet counts, sorts and pages.

One use case shared by the site (``/search``) and the JSON API (``/api/v1/opportunities``), so both
answer the same question the same way. Filters are SQL over indexed columns and the
``opportunity_codes`` table; the keyword query goes to the Whoosh index (``matching.keyword``)
through the small ``KeywordSearcher`` protocol, and relevance order comes from its scores.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import ColumnElement, Select, and_, case, func, or_, select
from sqlalchemy.orm import Session

from app.models import Opportunity, OpportunityCode, OpportunityStatus

ALN_PATTERN = re.compile(r"^\d{2}\.\d{3}[A-Z]?$", re.IGNORECASE)
#: How many keyword hits relevance search considers before filtering (the rest are not relevant).
KEYWORD_CANDIDATES = 2000
SortKey = Literal["relevance", "close_date", "post_date", "award_ceiling"]
CLOSING_WINDOWS = (7, 30, 60, 90)


class KeywordHitLike(Protocol):
    opportunity_id: int
    score: float
    matched_terms: list[str]


class KeywordSearcher(Protocol):
    """What search needs of the keyword index (``matching.keyword.KeywordIndex`` provides it)."""

    def search(self, query: str, limit: int = ..., filter_ids: Any = ...) -> Sequence[KeywordHitLike]: ...


class SearchParams(BaseModel):
    """A search as it lives in the URL: query and filters, validated with field-level messages."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    q: str = Field(default="", max_length=500, description="Keywords, an opportunity number or an ALN.")
    department: list[str] = Field(default_factory=list, description="Department codes (DOJ, DOL, ED, HHS …).")
    sub_agency: list[str] = Field(default_factory=list)
    status: list[OpportunityStatus] = Field(default_factory=list)
    closing_within: int | None = Field(default=None, description="Close date within N days (7, 30, 60, 90).")
    close_from: dt.date | None = None
    close_to: dt.date | None = None
    posted_within: int | None = Field(default=None, ge=1, le=3650)
    eligibility: list[str] = Field(default_factory=list, description="Grants.gov applicant type codes.")
    instrument: list[str] = Field(default_factory=list)
    category: list[str] = Field(default_factory=list)
    aln: str | None = Field(default=None, max_length=20)
    award_min: int | None = Field(default=None, ge=0)
    award_max: int | None = Field(default=None, ge=0)
    cvi_only: bool = True
    sort: SortKey = "relevance"
    page: int = Field(default=1, ge=1, le=10_000)
    per_page: int = Field(default=25, ge=1, le=100)

    @field_validator("closing_within")
    @classmethod
    def _known_window(cls, value: int | None) -> int | None:
        if value is not None and value not in CLOSING_WINDOWS:
            raise ValueError(f"must be one of {', '.join(map(str, CLOSING_WINDOWS))}")
        return value

    @field_validator("department", "sub_agency", "eligibility", "instrument", "category", mode="after")
    @classmethod
    def _clean_codes(cls, values: list[str]) -> list[str]:
        cleaned = [v.strip() for v in values if v and v.strip()]
        for value in cleaned:
            if len(value) > 60:
                raise ValueError("a code is at most 60 characters")
        return list(dict.fromkeys(cleaned))

    @model_validator(mode="after")
    def _ranges(self) -> SearchParams:
        if self.close_from and self.close_to and self.close_from > self.close_to:
            raise ValueError("close_from must be on or before close_to")
        if self.award_min is not None and self.award_max is not None and self.award_min > self.award_max:
            raise ValueError("award_min must not exceed award_max")
        return self


@dataclass
class FacetValue:
    value: str
    count: int
    selected: bool


@dataclass
class SearchResult:
    params: SearchParams
    items: list[Opportunity]
    total: int
    facets: dict[str, list[FacetValue]] = field(default_factory=dict)
    matched_terms: dict[int, list[str]] = field(default_factory=dict)
    exact: Opportunity | None = None

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.params.per_page))


def _visible() -> ColumnElement[bool]:
    return and_(Opportunity.hidden.is_(False), Opportunity.merged_into_id.is_(None))


def _code_filter(kind: str, codes: list[str]) -> ColumnElement[bool]:
    return Opportunity.id.in_(
        select(OpportunityCode.opportunity_id).where(
            OpportunityCode.kind == kind, OpportunityCode.code.in_(codes)
        )
    )


def _conditions(params: SearchParams, today: dt.date) -> dict[str, ColumnElement[bool]]:
    """Each active filter as a named SQL condition (named so facets can leave their own out)."""
    conditions: dict[str, ColumnElement[bool]] = {}
    if params.department:
        conditions["department"] = Opportunity.department.in_([d.upper() for d in params.department])
    if params.sub_agency:
        conditions["sub_agency"] = Opportunity.sub_agency.in_(params.sub_agency)
    if params.status:
        conditions["status"] = Opportunity.status.in_([str(s) for s in params.status])
    if params.closing_within is not None:
        conditions["closing_within"] = and_(
            Opportunity.close_date >= today,
            Opportunity.close_date <= today + dt.timedelta(days=params.closing_within),
        )
    if params.close_from is not None:
        conditions["close_from"] = Opportunity.close_date >= params.close_from
    if params.close_to is not None:
        conditions["close_to"] = Opportunity.close_date <= params.close_to
    if params.posted_within is not None:
        conditions["posted_within"] = Opportunity.post_date >= today - dt.timedelta(days=params.posted_within)
    if params.eligibility:
        conditions["eligibility"] = _code_filter("eligibility", params.eligibility)
    if params.instrument:
        conditions["instrument"] = _code_filter("instrument", params.instrument)
    if params.category:
        conditions["category"] = _code_filter("category", params.category)
    if params.aln:
        conditions["aln"] = _code_filter("aln", [params.aln.upper()])
    if params.award_min is not None:
        conditions["award_min"] = Opportunity.award_ceiling >= params.award_min
    if params.award_max is not None:
        conditions["award_max"] = or_(
            Opportunity.award_floor.is_(None), Opportunity.award_floor <= params.award_max
        )
    if params.cvi_only:
        conditions["cvi_only"] = Opportunity.cvi_eligible.is_(True)
    return conditions


def find_exact(session: Session, q: str) -> Opportunity | None:
    """An opportunity whose number is exactly the query (case-insensitive), if any."""
    text = q.strip().strip('"')
    if not text or len(text) > 200:
        return None
    return session.scalar(
        select(Opportunity)
        .where(_visible(), func.upper(Opportunity.number) == text.upper())
        .order_by(Opportunity.merged_into_id.is_(None).desc(), Opportunity.id)
        .limit(1)
    )


def search(
    session: Session,
    params: SearchParams,
    *,
    keyword: KeywordSearcher | None = None,
    today: dt.date | None = None,
    with_facets: bool = True,
    only_ids: Collection[int] | None = None,
) -> SearchResult:
    """Run a search; raises nothing on user input (params are already validated).

    ``only_ids`` limits the search to those opportunities (digests ask "which of the new ones match?").
    """
    today = today or dt.date.today()
    conditions = _conditions(params, today)
    base: list[ColumnElement[bool]] = [_visible()]
    if only_ids is not None:
        base.append(Opportunity.id.in_(list(only_ids)))
    matched: dict[int, list[str]] = {}
    scores: dict[int, float] | None = None
    exact = None
    query = params.q
    if query:
        exact = find_exact(session, query)
        if exact is not None:
            base.append(Opportunity.id == exact.id)
            conditions.pop("cvi_only", None)
        elif ALN_PATTERN.match(query.strip()):
            base.append(_code_filter("aln", [query.strip().upper()]))
        elif keyword is not None:
            hits = keyword.search(query, limit=KEYWORD_CANDIDATES)
            scores = {hit.opportunity_id: hit.score for hit in hits}
            matched = {hit.opportunity_id: list(hit.matched_terms) for hit in hits}
            base.append(Opportunity.id.in_(list(scores)) if scores else Opportunity.id.is_(None))
        else:
            like = f"%{query.lower()}%"
            base.append(
                or_(func.lower(Opportunity.title).like(like), func.lower(Opportunity.description).like(like))
            )

    where = and_(*base, *conditions.values())
    total = session.scalar(select(func.count()).select_from(Opportunity).where(where)) or 0
    statement = select(Opportunity).where(where)
    statement = _order(statement, params.sort, scores)
    statement = statement.limit(params.per_page).offset((params.page - 1) * params.per_page)
    items = list(session.scalars(statement))
    facets = _facets(session, params, base, conditions, today) if with_facets else {}
    return SearchResult(params, items, total, facets, matched, exact)


def _order(statement: Select[Any], sort: SortKey, scores: dict[int, float] | None) -> Select[Any]:
    if sort == "relevance" and scores:
        ranked = sorted(scores, key=lambda i: (-scores[i], i))
        position = case({opp_id: index for index, opp_id in enumerate(ranked)}, value=Opportunity.id)
        return statement.order_by(position, Opportunity.id)
    if sort == "close_date":
        return statement.order_by(Opportunity.close_date.asc().nulls_last(), Opportunity.id)
    if sort == "award_ceiling":
        return statement.order_by(Opportunity.award_ceiling.desc().nulls_last(), Opportunity.id)
    # Post date (also relevance without a keyword): newest first, featured listings on top.
    return statement.order_by(
        Opportunity.featured.desc(),
        func.coalesce(Opportunity.post_date, Opportunity.forecast_post_date).desc().nulls_last(),
        Opportunity.id.desc(),
    )


FACET_FIELDS = ("department", "status", "eligibility", "instrument", "category", "cvi_only")


def _facets(
    session: Session,
    params: SearchParams,
    base: list[ColumnElement[bool]],
    conditions: dict[str, ColumnElement[bool]],
    today: dt.date,
) -> dict[str, list[FacetValue]]:
    """Counts per filter value over the results of every *other* active filter."""

    def others(name: str) -> ColumnElement[bool]:
        return and_(*base, *(cond for key, cond in conditions.items() if key != name))

    selected: dict[str, set[str]] = {
        "department": {d.upper() for d in params.department},
        "status": {str(s) for s in params.status},
        "eligibility": set(params.eligibility),
        "instrument": set(params.instrument),
        "category": set(params.category),
    }
    facets: dict[str, list[FacetValue]] = {}
    for name, column in (("department", Opportunity.department), ("status", Opportunity.status)):
        rows = session.execute(
            select(column, func.count()).where(others(name)).group_by(column).order_by(func.count().desc())
        ).all()
        facets[name] = [FacetValue(str(v), c, str(v) in selected[name]) for v, c in rows if v]
    for name in ("eligibility", "instrument", "category"):
        rows = session.execute(
            select(OpportunityCode.code, func.count())
            .join(Opportunity, Opportunity.id == OpportunityCode.opportunity_id)
            .where(OpportunityCode.kind == name, others(name))
            .group_by(OpportunityCode.code)
            .order_by(func.count().desc())
        ).all()
        facets[name] = [FacetValue(code, count, code in selected[name]) for code, count in rows]
    cvi_count = session.scalar(
        select(func.count())
        .select_from(Opportunity)
        .where(others("cvi_only"), Opportunity.cvi_eligible.is_(True))
    )
    facets["cvi_only"] = [FacetValue("true", cvi_count or 0, params.cvi_only)]
    closing: list[FacetValue] = []
    for days in CLOSING_WINDOWS:
        count = session.scalar(
            select(func.count())
            .select_from(Opportunity)
            .where(
                others("closing_within"),
                Opportunity.close_date >= today,
                Opportunity.close_date <= today + dt.timedelta(days=days),
            )
        )
        closing.append(FacetValue(str(days), count or 0, params.closing_within == days))
    facets["closing_within"] = closing
    return facets
