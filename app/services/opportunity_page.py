"""What the opportunity page shows: the record (following merges), its history in words, its CVI
programs, who reviewed it, and whether the viewer's organization tracks it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from app import labels
from app.links import http_url
from app.models import (
    AssistanceListing,
    CviProgram,
    Opportunity,
    OpportunityVersion,
    TrackedOpportunity,
    User,
)

#: Fields whose old and new values are too long to show side by side.
LONG_FIELDS = {"description", "description_html", "eligible_applicants", "contact"}
MONEY_FIELDS = {"award_floor", "award_ceiling", "total_funding"}
DATE_FIELDS = {
    "post_date",
    "close_date",
    "second_close_date",
    "archive_date",
    "forecast_post_date",
    "forecast_award_date",
}
CODE_FIELDS = {
    "eligibility_codes": "eligibility",
    "funding_instruments": "instrument",
    "categories": "category",
    "status": "status",
    "agency": "department",
    "department": "department",
}


class NotFound(LookupError):
    """No opportunity the viewer may see."""


class Merged(Exception):
    """The opportunity was merged into another; ``target_id`` is where it lives now."""

    def __init__(self, target_id: int) -> None:
        super().__init__(target_id)
        self.target_id = target_id


def load(session: Session, opportunity_id: int, *, is_admin: bool) -> Opportunity:
    """The opportunity, or Merged (follow the chain to the surviving record) or NotFound."""
    opportunity = session.get(Opportunity, opportunity_id)
    if opportunity is None:
        raise NotFound(opportunity_id)
    if opportunity.merged_into_id is not None:
        seen = {opportunity.id}
        target = opportunity
        while target.merged_into_id is not None and target.merged_into_id not in seen:
            seen.add(target.merged_into_id)
            nxt = session.get(Opportunity, target.merged_into_id)
            if nxt is None:
                break
            target = nxt
        if target.id != opportunity.id:
            raise Merged(target.id)
    if opportunity.hidden and not is_admin:
        raise NotFound(opportunity_id)
    return opportunity


def _format(name: str, value: Any) -> str:
    if value is None or value == "" or value == []:
        return "not set"
    if name in MONEY_FIELDS and isinstance(value, int | float):
        return f"${value:,.0f}"
    if name in DATE_FIELDS and isinstance(value, str):
        try:
            day = dt.date.fromisoformat(value[:10])
        except ValueError:
            return value
        return f"{day:%B} {day.day}, {day.year}"
    if name in CODE_FIELDS:
        kind = CODE_FIELDS[name]
        if isinstance(value, list):
            return "; ".join(labels.label(kind, v) for v in value)
        return labels.label(kind, value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


@dataclass
class Change:
    field: str
    label: str
    old: str | None
    new: str | None


@dataclass
class HistoryEntry:
    changed_at: dt.datetime
    source: str
    changes: list[Change] = field(default_factory=list)
    kept_curated: list[str] = field(default_factory=list)


def history(session: Session, opportunity_id: int) -> list[HistoryEntry]:
    """Each version, newest first, with every change as "label: old → new" in plain words."""
    versions = session.scalars(
        select(OpportunityVersion)
        .where(OpportunityVersion.opportunity_id == opportunity_id)
        .order_by(OpportunityVersion.changed_at.desc(), OpportunityVersion.id.desc())
    )
    entries = []
    for version in versions:
        entry = HistoryEntry(
            version.changed_at, version.source, kept_curated=list(version.kept_curated or [])
        )
        for name in version.changed_fields or sorted(version.changes or {}):
            change = (version.changes or {}).get(name) or {}
            if name == "vanished":
                entry.changes.append(Change(name, "Listing", "removed from its source", "back at its source"))
                continue
            label = labels.FIELD_NAMES.get(name, name.replace("_", " ").capitalize())
            if name in LONG_FIELDS:
                entry.changes.append(Change(name, label, None, None))
            else:
                entry.changes.append(
                    Change(name, label, _format(name, change.get("old")), _format(name, change.get("new")))
                )
        entries.append(entry)
    return entries


def cvi_programs(session: Session, opportunity: Opportunity) -> list[CviProgram]:
    """The curated CVI programs whose assistance listings this opportunity carries."""
    if not opportunity.aln:
        return []
    return list(
        session.scalars(
            select(CviProgram)
            .join(AssistanceListing, AssistanceListing.cvi_program_id == CviProgram.id)
            .where(AssistanceListing.number.in_(list(opportunity.aln)))
            .distinct()
            .order_by(CviProgram.name)
        )
    )


def reviewer(session: Session, opportunity: Opportunity) -> User | None:
    if opportunity.cvi_override is None or opportunity.reviewed_by_id is None:
        return None
    return session.get(User, opportunity.reviewed_by_id)


def tracked(session: Session, opportunity_id: int, organization_id: int | None) -> TrackedOpportunity | None:
    if organization_id is None:
        return None
    return session.scalar(
        select(TrackedOpportunity).where(
            TrackedOpportunity.organization_id == organization_id,
            TrackedOpportunity.opportunity_id == opportunity_id,
        )
    )


def grants_gov_url(opportunity: Opportunity) -> str | None:
    """The listing on Grants.gov: its own link when it is one, else Grants.gov's page for its id or number."""
    url = http_url(opportunity.url)
    host = urlsplit(url).hostname or "" if url else ""
    if url and (host == "grants.gov" or host.endswith(".grants.gov")):
        return url
    if opportunity.source.startswith("grants.gov") and opportunity.source_id.isdigit():
        return f"https://www.grants.gov/search-results-detail/{opportunity.source_id}"
    if opportunity.number:
        from urllib.parse import quote

        return f"https://www.grants.gov/search-grants?keywords={quote(opportunity.number)}"
    return None
