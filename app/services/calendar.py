"""An opportunity's deadlines as an iCalendar file ("add to calendar")."""

from __future__ import annotations

import datetime as dt

from icalendar import Alarm, Calendar, Event

from app.models import Opportunity

PRODID = "-//CVI Funding Finder//Opportunity deadlines//EN"


def deadlines(opportunity: Opportunity) -> list[tuple[dt.date, str]]:
    """Each deadline with its name: the close date and, for two-step DOJ solicitations, the second one."""
    found: list[tuple[dt.date, str]] = []
    if opportunity.close_date is not None:
        name = "Grants.gov deadline" if opportunity.second_close_date else "Application deadline"
        found.append((opportunity.close_date, name))
    if opportunity.second_close_date is not None:
        found.append(
            (opportunity.second_close_date, opportunity.second_close_date_label or "Second deadline")
        )
    return found


def opportunity_ics(opportunity: Opportunity, page_url: str, *, now: dt.datetime | None = None) -> bytes:
    """All-day events on each deadline with a reminder a week before; empty calendar when none is set."""
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("x-wr-calname", f"Deadline: {opportunity.title[:80]}")
    stamp = now or dt.datetime.now(dt.UTC)
    for index, (day, name) in enumerate(deadlines(opportunity)):
        event = Event()
        event.add("uid", f"opportunity-{opportunity.id}-deadline-{index}@cvi-funding-finder")
        event.add("dtstamp", stamp)
        event.add("dtstart", day)
        event.add("dtend", day + dt.timedelta(days=1))
        event.add("summary", f"{name}: {opportunity.title}")
        lines = [f"Opportunity {opportunity.number}" if opportunity.number else "", page_url]
        if opportunity.close_date_note:
            lines.append(opportunity.close_date_note)
        event.add("description", "\n".join(line for line in lines if line))
        event.add("url", page_url)
        alarm = Alarm()
        alarm.add("action", "DISPLAY")
        alarm.add("description", f"{name} in one week: {opportunity.title}")
        alarm.add("trigger", dt.timedelta(days=-7))
        event.add_component(alarm)
        calendar.add_component(event)
    return bytes(calendar.to_ical())
