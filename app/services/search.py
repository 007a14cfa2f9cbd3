"""Search the catalogue: keyword query, filters, facet counts, sorts and pages.

One use case shared by the site (``/search``) and the JSON API (``/api/v1/opportunities``), so both
answer the same question the same way. Filters are SQL over indexed columns and the
``opportunity_codes`` table; the keyword query goes to the Whoosh index (``matching.keyword``)
through the small ``KeywordSearcher`` protocol, and relevance order comes from its scores.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import operator
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import ColumnElement, Select, and_, case, func, or_, select
from sqlalchemy.orm import Session

from app.models import Agency, Opportunity, OpportunityCode, OpportunityStatus
from app.models.opportunity import number_key
from app.services import catalogue_version
from matching.keyword import IndexUnavailable

ALN_PATTERN = re.compile(r"^\d{2}\.\d{3}[A-Z]?$", re.IGNORECASE)
#: How many keyword hits relevance search considers before filtering (the rest are not relevant).
KEYWORD_CANDIDATES = 2000
SortKey = Literal["relevance", "close_date", "post_date", "award_ceiling"]
CLOSING_WINDOWS = (7, 30, 60, 90)


class KeywordHitLike(Protocol):
    """Read-only, so frozen hits (``matching.keyword.KeywordHit``) fit."""

    @property
    def opportunity_id(self) -> int: ...
    @property
    def score(self) -> float: ...
    @property
    def matched_terms(self) -> list[str]: ...


class KeywordSearcher(Protocol):
    """What search needs of the keyword index (``matching.keyword.KeywordIndex`` provides it)."""

    def search(
        self, query: str, limit: int = ..., filter_ids: Any = ..., *, terms: bool = ...
    ) -> Sequence[KeywordHitLike]: ...
    def matched_terms(self, query: str, ids: Sequence[int]) -> dict[int, list[str]]: ...


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
    """An opportunity whose number is exactly the query (case-insensitive), if any: one indexed
    read of the normalized ``number_key``."""
    key = number_key(q)
    if not key or len(key) > 200:
        return None
    return session.scalar(
        select(Opportunity)
        .where(Opportunity.number_key == key, _visible())
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
        else:
            if keyword is not None:
                try:
                    hits = keyword.search(query, limit=KEYWORD_CANDIDATES, terms=False)
                except IndexUnavailable:  # logged by the index; it is being rebuilt
                    keyword = None
                else:
                    scores = {hit.opportunity_id: hit.score for hit in hits}
                    base.append(Opportunity.id.in_(list(scores)) if scores else Opportunity.id.is_(None))
            if keyword is None:
                # No usable keyword index (not built yet, or damaged): plain SQL matching.
                like = f"%{query.lower()}%"
                base.append(
                    or_(
                        func.lower(Opportunity.title).like(like),
                        func.lower(Opportunity.description).like(like),
                    )
                )

    where = and_(*base, *conditions.values())
    offset = (params.page - 1) * params.per_page
    if scores:
        result = _keyword_result(session, params, scores, conditions, today, with_facets)
        if keyword is not None:  # the words each shown hit matches, for the page only
            with contextlib.suppress(IndexUnavailable):
                result.matched_terms = keyword.matched_terms(query, [o.id for o in result.items])
        return result
    total = session.scalar(select(func.count()).select_from(Opportunity).where(where)) or 0
    statement = _order(select(Opportunity).where(where), params.sort)
    items = list(session.scalars(statement.limit(params.per_page).offset(offset)))
    facets = _facets(session, params, base, conditions, today) if with_facets else {}
    return SearchResult(params, items, total, facets, matched, exact)


def _keyword_result(
    session: Session,
    params: SearchParams,
    scores: dict[int, float],
    conditions: dict[str, ColumnElement[bool]],
    today: dt.date,
    with_facets: bool,
) -> SearchResult:
    """Results and facets of a keyword search from one read of its (at most KEYWORD_CANDIDATES)
    candidates: each row carries which filters it passes, so the page, the total and every facet's
    "all the other filters" count come from Python instead of a query per facet over an id list."""
    names = list(conditions)
    columns: list[Any] = [
        Opportunity.id,
        Opportunity.department,
        Opportunity.sub_agency,
        Opportunity.status,
        Opportunity.close_date,
        Opportunity.post_date,
        Opportunity.forecast_post_date,
        Opportunity.award_ceiling,
        Opportunity.featured,
        Opportunity.cvi_eligible,
    ]
    passes = [case((cond, 1), else_=0) for cond in conditions.values()]
    columns += [flag.label(f"f{n}") for n, flag in enumerate(passes)]
    # Only rows that pass every filter (the results), or all but one (that filter's facet counts),
    # are ever used: the rest are left in the database instead of being read and thrown away.
    needed = len(passes) - 1 if with_facets else len(passes)
    wanted: list[ColumnElement[bool]] = [_visible()]
    if needed > 0:
        wanted.append(functools.reduce(operator.add, passes) >= needed)
    ids = list(scores)
    rows: list[Any] = []
    for start in range(0, len(ids), 900):  # SQLite's bound-parameter limit
        chunk = ids[start : start + 900]
        rows.extend(session.execute(select(*columns).where(*wanted, Opportunity.id.in_(chunk))).all())
    flags = {row[0]: tuple(bool(v) for v in row[10:]) for row in rows}
    passing = [row for row in rows if all(flags[row[0]])]
    total = len(passing)
    offset = (params.page - 1) * params.per_page
    page_ids = [row[0] for row in _sorted_rows(passing, params.sort, scores)][
        offset : offset + params.per_page
    ]
    found = {o.id: o for o in session.scalars(select(Opportunity).where(Opportunity.id.in_(page_ids)))}
    items = [found[i] for i in page_ids if i in found]
    facets: dict[str, list[FacetValue]] = {}
    if with_facets:
        facets = _facets_from_rows(session, params, rows, flags, names, today)
    return SearchResult(params, items, total, facets, {}, None)


def _sorted_rows(rows: list[Any], sort: SortKey, scores: dict[int, float]) -> list[Any]:
    """The SQL orders of ``_order`` (nulls last, ids breaking ties) applied to candidate rows."""
    if sort == "relevance":
        return sorted(rows, key=lambda r: (-scores[r[0]], r[0]))
    if sort == "close_date":
        return sorted(rows, key=lambda r: (r[4] is None, r[4] or dt.date.min, r[0]))
    if sort == "award_ceiling":
        return sorted(rows, key=lambda r: (r[7] is None, -(r[7] or 0), r[0]))

    def newest(r: Any) -> tuple[Any, ...]:
        posted = r[5] or r[6]
        return (not r[8], posted is None, -(posted.toordinal() if posted else 0), -r[0])

    return sorted(rows, key=newest)


def _facets_from_rows(
    session: Session,
    params: SearchParams,
    rows: list[Any],
    flags: dict[int, tuple[bool, ...]],
    names: list[str],
    today: dt.date,
) -> dict[str, list[FacetValue]]:
    """``_facets`` over candidate rows: a value counts a row that passes every filter but its own."""

    # Per row, the one filter it fails (-1: none, -2: several): a row counts for a facet when it
    # fails nothing or only that facet's own filter. One pass over the rows instead of one per facet.
    failing: list[int] = []
    for row in rows:
        failed = [i for i, passed in enumerate(flags[row[0]]) if not passed]
        failing.append(-1 if not failed else failed[0] if len(failed) == 1 else -2)
    memo: dict[int, list[Any]] = {}

    def others(name: str) -> list[Any]:
        skip = names.index(name) if name in names else -1
        if skip not in memo:
            memo[skip] = [r for r, f in zip(rows, failing, strict=True) if f == -1 or f == skip]
        return memo[skip]

    selected: dict[str, set[str]] = {
        "department": {d.upper() for d in params.department},
        "sub_agency": set(params.sub_agency),
        "status": {str(s) for s in params.status},
        "eligibility": set(params.eligibility),
        "instrument": set(params.instrument),
        "category": set(params.category),
    }
    facets: dict[str, list[FacetValue]] = {}
    for name, position in (("department", 1), ("sub_agency", 2), ("status", 3)):
        counts: dict[str, int] = {}
        for row in others(name):
            if row[position]:
                counts[str(row[position])] = counts.get(str(row[position]), 0) + 1
        facets[name] = [FacetValue(v, c, v in selected[name]) for v, c in _by_count(counts)]
    code_rows: dict[str, set[int]] = {
        k: {r[0] for r in others(k)} for k in ("eligibility", "instrument", "category")
    }
    wanted = sorted(set().union(*code_rows.values()))
    code_counts: dict[str, dict[str, int]] = {k: {} for k in code_rows}
    for start in range(0, len(wanted), 900):
        for opp_id, kind, code in session.execute(
            select(OpportunityCode.opportunity_id, OpportunityCode.kind, OpportunityCode.code).where(
                OpportunityCode.kind.in_(list(code_rows)),
                OpportunityCode.opportunity_id.in_(wanted[start : start + 900]),
            )
        ):
            if opp_id in code_rows[kind]:
                code_counts[kind][code] = code_counts[kind].get(code, 0) + 1
    for name, counts in code_counts.items():
        facets[name] = [FacetValue(code, count, code in selected[name]) for code, count in _by_count(counts)]
    for name, values in facets.items():
        shown = {f.value for f in values}
        values.extend(FacetValue(v, 0, True) for v in sorted(selected.get(name, set()) - shown))
    cvi_count = sum(1 for r in others("cvi_only") if r[9])
    facets["cvi_only"] = [FacetValue("true", cvi_count, params.cvi_only)]
    closing_rows = others("closing_within")
    facets["closing_within"] = [
        FacetValue(
            str(days),
            sum(
                1
                for r in closing_rows
                if r[4] is not None and today <= r[4] <= today + dt.timedelta(days=days)
            ),
            params.closing_within == days,
        )
        for days in CLOSING_WINDOWS
    ]
    posted_rows = others("posted_within")
    facets["posted_within"] = [
        FacetValue(
            str(days),
            sum(1 for r in posted_rows if r[5] is not None and r[5] >= today - dt.timedelta(days=days)),
            params.posted_within == days,
        )
        for days in POSTED_WINDOWS
    ]
    return facets


def _by_count(counts: dict[str, int]) -> list[tuple[str, int]]:
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))


def _order(statement: Select[Any], sort: SortKey) -> Select[Any]:
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


FACET_FIELDS = (
    "department",
    "sub_agency",
    "status",
    "eligibility",
    "instrument",
    "category",
    "cvi_only",
    "closing_within",
    "posted_within",
)
#: Posted-within windows offered with counts (any other N still filters; it just has no facet row).
POSTED_WINDOWS = (7, 30, 90, 365)


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
        "sub_agency": set(params.sub_agency),
        "status": {str(s) for s in params.status},
        "eligibility": set(params.eligibility),
        "instrument": set(params.instrument),
        "category": set(params.category),
    }
    facets: dict[str, list[FacetValue]] = {}
    for name, column in (
        ("department", Opportunity.department),
        ("sub_agency", Opportunity.sub_agency),
        ("status", Opportunity.status),
    ):
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
    for name, values in facets.items():
        # A chosen value with no results still shows (with 0), so it can be unchosen.
        shown = {f.value for f in values}
        values.extend(FacetValue(v, 0, True) for v in sorted(selected.get(name, set()) - shown))
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
    posted: list[FacetValue] = []
    for days in POSTED_WINDOWS:
        count = session.scalar(
            select(func.count())
            .select_from(Opportunity)
            .where(others("posted_within"), Opportunity.post_date >= today - dt.timedelta(days=days))
        )
        posted.append(FacetValue(str(days), count or 0, params.posted_within == days))
    facets["posted_within"] = posted
    return facets


#: Sub-agency code → readable name for the whole catalogue, per catalogue version (per process):
#: the names only change with the catalogue, and reading them is a scan of the opportunities.
_agency_name_memo: dict[str, dict[str, str]] = {}


def agency_names(session: Session, codes: Sequence[str]) -> dict[str, str]:
    """Readable names of sub-agency codes (from the agencies table, else an opportunity's agency name)."""
    if not codes:
        return {}
    token = catalogue_version.token(session)
    names = _agency_name_memo.get(token)
    if names is None:
        names = _all_agency_names(session)
        _agency_name_memo.clear()
        _agency_name_memo[token] = names
    return {code: names[code] for code in codes if code in names}


def _all_agency_names(session: Session) -> dict[str, str]:
    names: dict[str, str] = {}
    for code, name in session.execute(
        select(Opportunity.sub_agency, func.max(Opportunity.agency_name))
        .where(Opportunity.sub_agency.is_not(None), Opportunity.agency_name.is_not(None))
        .group_by(Opportunity.sub_agency)
    ):
        names[str(code)] = str(name)
    agencies = session.execute(select(Agency.code, Agency.name))
    names.update({str(code): str(name) for code, name in agencies})
    return names
