"""A user's private iCalendar feed: the close dates of the organization's tracked opportunities.

Calendar clients (Outlook, Google, Apple) poll the URL and replace what they hold, so every event
has a UID that never changes for the same opportunity and deadline kind; a moved deadline therefore
moves the event instead of adding a second one. Alarms fire at 09:00 (the calendar's local time) on
each of the user's reminder lead times. Stages that no longer need the deadline drop out.
"""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlsplit

from icalendar import Alarm, Calendar, Event
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db import utcnow
from app.models import Opportunity, OpportunityStatus, PipelineStage, TrackedOpportunity, User

ACTIVE_STAGES = (PipelineStage.INTERESTED, PipelineStage.PREPARING, PipelineStage.SUBMITTED)
ALARM_HOUR = 9


def _alarm(days: int, what: str) -> Alarm:
    alarm = Alarm()
    alarm.add("action", "DISPLAY")
    alarm.add("trigger", dt.timedelta(days=-days, hours=ALARM_HOUR))
    alarm.add("description", f"{what} in {days} days" if days else f"{what} today")
    return alarm


def build_feed(
    session: Session,
    user: User,
    *,
    base_url: str,
    reminder_days: list[int],
    now: dt.datetime | None = None,
) -> bytes:
    """The feed as iCalendar bytes (empty calendar when the user has no organization)."""
    now = now or utcnow()
    domain = urlsplit(base_url).hostname or "cvi-funding-finder"
    calendar = Calendar()
    calendar.add("prodid", "-//CVI Funding Finder//Deadlines//EN")
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    calendar.add("x-wr-calname", "CVI funding deadlines")
    calendar.add("refresh-interval", dt.timedelta(hours=6), parameters={"VALUE": "DURATION"})
    calendar.add("x-published-ttl", "PT6H")
    if user.organization_id is None:
        return bytes(calendar.to_ical())
    rows = session.execute(
        select(TrackedOpportunity, Opportunity)
        .join(Opportunity, Opportunity.id == TrackedOpportunity.opportunity_id)
        .where(
            TrackedOpportunity.organization_id == user.organization_id,
            TrackedOpportunity.stage.in_([str(s) for s in ACTIVE_STAGES]),
        )
        .order_by(Opportunity.close_date, Opportunity.id)
    ).all()
    for tracked, opportunity in rows:
        link = f"{base_url}/opportunities/{opportunity.id}"
        gone = opportunity.vanished_at is not None or opportunity.status == OpportunityStatus.ARCHIVED
        deadlines = [("close", opportunity.close_date, "Closes")]
        if tracked.internal_deadline is not None:
            deadlines.append(("internal", tracked.internal_deadline, "Internal deadline"))
        for kind, day, label in deadlines:
            if day is None:
                continue
            event = Event()
            event.add("uid", f"tracked-{tracked.organization_id}-{opportunity.id}-{kind}@{domain}")
            event.add("summary", f"{label}: {opportunity.title}")
            event.add("dtstart", day)
            event.add("dtend", day + dt.timedelta(days=1))
            event.add("dtstamp", now)
            event.add("last-modified", max(opportunity.updated_at, tracked.updated_at))
            event.add("transp", "TRANSPARENT")
            event.add("url", link)
            number = f" ({opportunity.number})" if opportunity.number else ""
            event.add(
                "description",
                f"{opportunity.department}{number}. Pipeline stage: {tracked.stage}.\n{link}",
            )
            if gone:
                event.add("status", "CANCELLED")
            else:
                for days in sorted(set(reminder_days), reverse=True):
                    event.add_component(_alarm(days, label))
            calendar.add_component(event)
    return bytes(calendar.to_ical())
