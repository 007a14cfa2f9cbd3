"""Matches for a program profile: the ranker with the site's filters, minus dismissed opportunities."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.orm import Session

from app.models import OpportunityStatus, ProgramProfile
from app.services.profiles import dismissed_ids
from app.services.search import CLOSING_WINDOWS
from matching.profile import ProfileInput
from matching.ranker import Match, RankFilters, rank

DEFAULT_STATUSES = ("posted", "forecasted")


class MatchParams(BaseModel):
    """The filters of the matches page, as they live in the URL."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    department: list[str] = Field(default_factory=list)
    status: list[OpportunityStatus] = Field(default_factory=list)
    closing_within: int | None = None
    cvi_only: bool = True
    page: int = Field(default=1, ge=1, le=50)

    @field_validator("closing_within")
    @classmethod
    def _known_window(cls, value: int | None) -> int | None:
        if value is not None and value not in CLOSING_WINDOWS:
            raise ValueError(f"must be one of {', '.join(map(str, CLOSING_WINDOWS))}")
        return value

    @field_validator("department", mode="after")
    @classmethod
    def _codes(cls, values: list[str]) -> list[str]:
        for value in values:
            if len(value) > 40:
                raise ValueError("a department code is at most 40 characters")
        return [v.upper() for v in values if v]


@dataclass
class MatchPage:
    matches: list[Match]
    page: int
    has_next: bool
    dismissed: int


def filters_for(params: MatchParams, exclude: set[int], today: dt.date) -> RankFilters:
    """The ranker's filters for the page's choices: open and forecasted with a week left by default."""
    statuses = [str(s) for s in params.status] or list(DEFAULT_STATUSES)
    past = any(s in ("closed", "archived") for s in statuses)
    close_after = close_before = None
    min_days_left: int | None = None if past else 7
    if params.closing_within is not None:
        close_after, close_before = today, today + dt.timedelta(days=params.closing_within)
        min_days_left = None if past else 0
    return RankFilters(
        departments=params.department or None,
        statuses=statuses,
        close_after=close_after,
        close_before=close_before,
        min_days_left=min_days_left,
        cvi_only=params.cvi_only,
        exclude_ids=exclude,
    )


def matches_for(
    session: Session,
    profile: ProgramProfile,
    params: MatchParams,
    *,
    per_page: int = 20,
    today: dt.date | None = None,
) -> MatchPage:
    """One page of ranked matches; raises matching.profile.MatchingError on a profile it cannot read."""
    today = today or dt.date.today()
    excluded = dismissed_ids(session, profile.id)
    found = rank(
        session,
        ProfileInput.from_model(profile),
        filters=filters_for(params, excluded, today),
        limit=per_page + 1,
        offset=(params.page - 1) * per_page,
        today=today,
    )
    return MatchPage(found[:per_page], params.page, len(found) > per_page, len(excluded))
