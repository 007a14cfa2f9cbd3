"""An organization's pipeline: tracked opportunities with stage, owner, notes and deadlines."""

from __future__ import annotations

import calendar as cal
import datetime as dt
import logging
from dataclasses import dataclass, field

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from app.models import Opportunity, PipelineStage, TrackedOpportunity, User
from app.services.calendar import deadlines

log = logging.getLogger(__name__)


class TrackingError(ValueError):
    """A user-facing problem with a tracking change."""


@dataclass
class TrackedRow:
    tracked: TrackedOpportunity
    opportunity: Opportunity
    owner: User | None
    next_deadline: dt.date | None


def get(session: Session, organization_id: int, tracked_id: int) -> TrackedOpportunity | None:
    row = session.get(TrackedOpportunity, tracked_id)
    return row if row is not None and row.organization_id == organization_id else None


def track(session: Session, organization_id: int, opportunity_id: int, user: User) -> TrackedOpportunity:
    """Add an opportunity to the pipeline (idempotent: tracking twice keeps the first row)."""
    if session.get(Opportunity, opportunity_id) is None:
        raise TrackingError("That opportunity does not exist.")
    existing = session.scalar(
        select(TrackedOpportunity).where(
            TrackedOpportunity.organization_id == organization_id,
            TrackedOpportunity.opportunity_id == opportunity_id,
        )
    )
    if existing is not None:
        return existing
    row = TrackedOpportunity(
        organization_id=organization_id,
        opportunity_id=opportunity_id,
        stage=PipelineStage.INTERESTED,
        notes="",
        owner_id=user.id,
        created_by_id=user.id,
    )
    session.add(row)
    session.flush()
    log.info(
        "opportunity tracked", extra={"organization_id": organization_id, "opportunity_id": opportunity_id}
    )
    return row


def untrack(session: Session, organization_id: int, opportunity_id: int) -> bool:
    row = session.scalar(
        select(TrackedOpportunity).where(
            TrackedOpportunity.organization_id == organization_id,
            TrackedOpportunity.opportunity_id == opportunity_id,
        )
    )
    if row is None:
        return False
    session.delete(row)
    return True


def update(
    session: Session,
    row: TrackedOpportunity,
    *,
    stage: PipelineStage,
    owner_id: int | None,
    internal_deadline: dt.date | None,
    notes: str,
) -> TrackedOpportunity:
    """Change stage, owner (a member of the same organization), internal deadline and notes."""
    if owner_id is not None:
        owner = session.get(User, owner_id)
        if owner is None or owner.organization_id != row.organization_id:
            raise TrackingError("The owner must be a member of your organization.")
    row.stage = stage
    row.owner_id = owner_id
    row.internal_deadline = internal_deadline
    row.notes = notes.strip()
    return row


def _next_deadline(tracked: TrackedOpportunity, opportunity: Opportunity, today: dt.date) -> dt.date | None:
    days = [d for d, _ in deadlines(opportunity)]
    if tracked.internal_deadline:
        days.append(tracked.internal_deadline)
    upcoming = sorted(d for d in days if d >= today)
    if upcoming:
        return upcoming[0]
    return max(days) if days else None


def pipeline(
    session: Session,
    organization_id: int,
    *,
    today: dt.date | None = None,
    stage: PipelineStage | None = None,
) -> list[TrackedRow]:
    """The organization's tracked opportunities, next deadline first (past and undated last)."""
    today = today or dt.date.today()
    statement = (
        select(TrackedOpportunity, Opportunity, User)
        .join(Opportunity, Opportunity.id == TrackedOpportunity.opportunity_id)
        .outerjoin(User, User.id == TrackedOpportunity.owner_id)
        .where(TrackedOpportunity.organization_id == organization_id)
    )
    if stage is not None:
        statement = statement.where(TrackedOpportunity.stage == stage)
    rows = [TrackedRow(t, o, u, _next_deadline(t, o, today)) for t, o, u in session.execute(statement).all()]

    def key(row: TrackedRow) -> tuple[int, int, int]:
        if row.next_deadline is None:
            return (2, 0, row.tracked.id)
        if row.next_deadline < today:
            return (1, -row.next_deadline.toordinal(), row.tracked.id)
        return (0, row.next_deadline.toordinal(), row.tracked.id)

    return sorted(rows, key=key)


def stage_counts(session: Session, organization_id: int) -> dict[str, int]:
    order = case({s.value: i for i, s in enumerate(PipelineStage)}, value=TrackedOpportunity.stage)
    rows = session.execute(
        select(TrackedOpportunity.stage, func.count())
        .where(TrackedOpportunity.organization_id == organization_id)
        .group_by(TrackedOpportunity.stage)
        .order_by(func.min(order))
    ).all()
    return {str(stage): count for stage, count in rows}


@dataclass
class CalendarDay:
    day: dt.date | None
    events: list[tuple[str, TrackedRow]] = field(default_factory=list)


def month(session: Session, organization_id: int, year: int, month_number: int) -> list[list[CalendarDay]]:
    """Weeks (Monday first) of one month with each tracked deadline on its day."""
    if not 1 <= month_number <= 12 or not 1900 <= year <= 2200:
        raise TrackingError("Choose a month between 1900 and 2200.")
    rows = pipeline(session, organization_id, today=dt.date(year, month_number, 1))
    by_day: dict[dt.date, list[tuple[str, TrackedRow]]] = {}
    for row in rows:
        for day, name in deadlines(row.opportunity):
            by_day.setdefault(day, []).append((name, row))
        if row.tracked.internal_deadline:
            by_day.setdefault(row.tracked.internal_deadline, []).append(("Internal deadline", row))
    weeks = []
    for week in cal.Calendar(firstweekday=0).monthdatescalendar(year, month_number):
        weeks.append(
            [
                CalendarDay(
                    day if day.month == month_number else None,
                    by_day.get(day, []) if day.month == month_number else [],
                )
                for day in week
            ]
        )
    return weeks
