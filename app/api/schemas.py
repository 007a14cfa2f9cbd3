"""The API's pydantic models: they validate requests, shape responses, and ARE the OpenAPI document.

Response models are built from store rows with ``from_*`` constructors; dates serialize as ISO 8601
and amounts as JSON numbers (whole dollars).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.links import http_url
from app.models import Agency, CviProgram, Opportunity, OpportunityStatus, OpportunityVersion
from app.services.search import CLOSING_WINDOWS, SearchParams
from matching.ranker import Match

# -- errors ----------------------------------------------------------------------------------------


class FieldError(BaseModel):
    field: str = Field(description="The parameter or body field that was wrong (`body` for the whole body).")
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details; every 4xx of the API has this shape."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[FieldError] = Field(default_factory=list)


# -- requests --------------------------------------------------------------------------------------


class OpportunityQuery(SearchParams):
    """Search parameters (the site's, exactly) plus a cursor. Lists: repeat the parameter or use commas."""

    closing_within: int | None = Field(
        default=None,
        description="Close date within the next N days.",
        json_schema_extra={"enum": list(CLOSING_WINDOWS)},
    )
    cursor: str | None = Field(
        default=None,
        max_length=200,
        description="Opaque `next_cursor` of a previous page; continues that search (instead of `page`).",
    )


def _departments(values: list[str]) -> list[str]:
    cleaned = [v.strip().upper() for v in values if v.strip()]
    for value in cleaned:
        if len(value) > 40:
            raise ValueError("a department code is at most 40 characters")
    return list(dict.fromkeys(cleaned))


class DepartmentQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    department: list[str] = Field(default_factory=list, description="Department codes (DOJ, DOL, ED, HHS …).")

    @field_validator("department")
    @classmethod
    def _clean(cls, values: list[str]) -> list[str]:
        return _departments(values)


class DeadlineQuery(DepartmentQuery):
    state: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z]{2}$",
        description="Two-letter state code: opportunities naming that state, or naming none (national).",
    )
    limit: int = Field(default=5, ge=1, le=20)


class MatchQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: int = Field(default=20, ge=1, le=50, description="How many ranked opportunities to return.")
    offset: int = Field(default=0, ge=0, le=500)
    department: list[str] = Field(default_factory=list, description="Only these departments.")
    cvi_only: bool = Field(default=True, description="Only CVI-eligible opportunities.")
    method: Literal["hybrid", "keyword", "semantic"] = Field(
        default="hybrid", description="Retrieval: keyword and semantic fused (hybrid), or one of them."
    )

    @field_validator("department")
    @classmethod
    def _clean(cls, values: list[str]) -> list[str]:
        return _departments(values)


class NoQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- responses -------------------------------------------------------------------------------------


class OpportunitySummary(BaseModel):
    id: int
    number: str | None
    title: str
    department: str
    sub_agency: str | None
    agency_name: str | None
    status: OpportunityStatus
    post_date: dt.date | None
    close_date: dt.date | None
    close_date_note: str | None
    award_floor: int | None
    award_ceiling: int | None
    total_funding: int | None
    expected_awards: int | None
    aln: list[str]
    eligibility_codes: list[str]
    funding_instruments: list[str]
    categories: list[str]
    cvi_eligible: bool
    cvi_score: float | None
    focus_tags: list[str]
    featured: bool
    source_url: str | None = Field(description="The opportunity at its source (Grants.gov, the agency).")
    link: str = Field(description="The opportunity on CVI Funding Finder.")
    matched_terms: list[str] = Field(default_factory=list)

    @classmethod
    def from_model(
        cls, opportunity: Opportunity, base_url: str, matched_terms: list[str] | None = None
    ) -> OpportunitySummary:
        return cls(
            id=opportunity.id,
            number=opportunity.number,
            title=opportunity.title,
            department=opportunity.department,
            sub_agency=opportunity.sub_agency,
            agency_name=opportunity.agency_name,
            status=OpportunityStatus(opportunity.status),
            post_date=opportunity.post_date,
            close_date=opportunity.close_date,
            close_date_note=opportunity.close_date_note,
            award_floor=opportunity.award_floor,
            award_ceiling=opportunity.award_ceiling,
            total_funding=opportunity.total_funding,
            expected_awards=opportunity.expected_awards,
            aln=list(opportunity.aln or []),
            eligibility_codes=list(opportunity.eligibility_codes or []),
            funding_instruments=list(opportunity.funding_instruments or []),
            categories=list(opportunity.categories or []),
            cvi_eligible=bool(opportunity.cvi_eligible),
            cvi_score=opportunity.cvi_score,
            focus_tags=list(opportunity.focus_tags or []),
            featured=bool(opportunity.featured),
            source_url=http_url(opportunity.url),
            link=f"{base_url}/opportunities/{opportunity.id}",
            matched_terms=list(matched_terms or []),
        )


class OpportunityPage(BaseModel):
    items: list[OpportunitySummary]
    total: int = Field(description="How many opportunities match, over all pages.")
    page: int
    per_page: int
    pages: int
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")
    exact_match_id: int | None = Field(
        default=None, description="Set when the query was exactly an opportunity number."
    )


class VersionOut(BaseModel):
    changed_at: dt.datetime
    source: str
    changed_fields: list[str]
    changes: dict[str, Any] = Field(description="Field → {old, new}.")

    @classmethod
    def from_model(cls, version: OpportunityVersion) -> VersionOut:
        return cls(
            changed_at=version.changed_at,
            source=version.source,
            changed_fields=list(version.changed_fields or []),
            changes=dict(version.changes or {}),
        )


class OpportunityDetail(OpportunitySummary):
    description: str
    eligible_applicants: str | None
    cost_sharing: bool | None
    contact: str | None
    archive_date: dt.date | None
    forecast_post_date: dt.date | None
    forecast_award_date: dt.date | None
    second_close_date: dt.date | None
    second_close_date_label: str | None
    fiscal_year: int | None
    cvi_reasons: list[str]
    first_seen: dt.datetime
    last_seen: dt.datetime
    updated_at: dt.datetime
    versions: list[VersionOut] = Field(description="What changed and when, oldest first.")

    @classmethod
    def from_detail(cls, opportunity: Opportunity, base_url: str) -> OpportunityDetail:
        summary = OpportunitySummary.from_model(opportunity, base_url).model_dump()
        return cls(
            **summary,
            description=opportunity.description,
            eligible_applicants=opportunity.eligible_applicants,
            cost_sharing=opportunity.cost_sharing,
            contact=opportunity.contact,
            archive_date=opportunity.archive_date,
            forecast_post_date=opportunity.forecast_post_date,
            forecast_award_date=opportunity.forecast_award_date,
            second_close_date=opportunity.second_close_date,
            second_close_date_label=opportunity.second_close_date_label,
            fiscal_year=opportunity.fiscal_year,
            cvi_reasons=list(opportunity.cvi_reasons or []),
            first_seen=opportunity.first_seen,
            last_seen=opportunity.last_seen,
            updated_at=opportunity.updated_at,
            versions=[VersionOut.from_model(v) for v in opportunity.versions],
        )


class AssistanceListingOut(BaseModel):
    number: str = Field(description="Assistance Listing Number (ALN), e.g. 16.045.")
    title: str


class CviProgramOut(BaseModel):
    slug: str
    name: str
    department: str
    sub_agency: str | None
    summary: str
    activities: list[str]
    eligible_applicants: str
    how_cvi_fits: str
    source_url: str
    last_verified: dt.date
    assistance_listings: list[AssistanceListingOut]

    @classmethod
    def from_model(cls, program: CviProgram) -> CviProgramOut:
        return cls(
            slug=program.slug,
            name=program.name,
            department=program.department,
            sub_agency=program.sub_agency,
            summary=program.summary,
            activities=list(program.activities or []),
            eligible_applicants=program.eligible_applicants,
            how_cvi_fits=program.how_cvi_fits or "",
            source_url=program.source_url,
            last_verified=program.last_verified,
            assistance_listings=[
                AssistanceListingOut(number=a.number, title=a.title) for a in program.assistance_listings
            ],
        )


class CviProgramList(BaseModel):
    items: list[CviProgramOut]
    total: int


class AgencyOut(BaseModel):
    code: str
    name: str
    department: str
    opportunities: int = Field(description="Visible opportunities of this agency.")
    cvi_opportunities: int = Field(description="Of those, CVI-eligible.")

    @classmethod
    def from_model(cls, agency: Agency, opportunities: int, cvi_opportunities: int) -> AgencyOut:
        return cls(
            code=agency.code,
            name=agency.name,
            department=agency.department,
            opportunities=opportunities,
            cvi_opportunities=cvi_opportunities,
        )


class AgencyList(BaseModel):
    items: list[AgencyOut]
    total: int


class DeadlineOut(BaseModel):
    id: int
    title: str
    number: str | None
    department: str
    agency_name: str | None
    close_date: dt.date
    days_left: int
    link: str

    @classmethod
    def from_model(cls, opportunity: Opportunity, base_url: str, today: dt.date) -> DeadlineOut:
        close = opportunity.close_date or today
        return cls(
            id=opportunity.id,
            title=opportunity.title,
            number=opportunity.number,
            department=opportunity.department,
            agency_name=opportunity.agency_name,
            close_date=close,
            days_left=(close - today).days,
            link=f"{base_url}/opportunities/{opportunity.id}",
        )


class DeadlineList(BaseModel):
    items: list[DeadlineOut]
    state: str | None
    departments: list[str]


class EligibilityOut(BaseModel):
    verdict: Literal["eligible", "partner", "not eligible", "unknown"]
    sentence: str


class CviProgramRef(BaseModel):
    slug: str
    name: str
    aln: str | None = None


class ExplanationOut(BaseModel):
    reason: str
    matched_terms: list[str]
    passage: str | None
    eligibility: EligibilityOut
    cvi_programs: list[CviProgramRef]
    days_left: int | None
    cvi_reasons: list[str]


class MatchOut(BaseModel):
    opportunity: OpportunitySummary
    score: float
    explanation: ExplanationOut

    @classmethod
    def from_match(cls, match: Match, base_url: str) -> MatchOut:
        exp = match.explanation
        return cls(
            opportunity=OpportunitySummary.from_model(match.opportunity, base_url, exp.matched_terms),
            score=round(float(match.score), 6),
            explanation=ExplanationOut(
                reason=exp.reason,
                matched_terms=list(exp.matched_terms),
                passage=exp.passage,
                eligibility=EligibilityOut(
                    verdict=exp.eligibility.verdict, sentence=exp.eligibility.sentence or ""
                ),
                cvi_programs=[
                    CviProgramRef(slug=p["slug"], name=p["name"], aln=p.get("aln")) for p in exp.cvi_programs
                ],
                days_left=exp.days_left,
                cvi_reasons=list(exp.cvi_reasons),
            ),
        )


class MatchList(BaseModel):
    profile_id: str
    items: list[MatchOut]
    limit: int
    offset: int


class ApiIndex(BaseModel):
    name: str
    version: str
    openapi: str
    docs: str
    widget: str
