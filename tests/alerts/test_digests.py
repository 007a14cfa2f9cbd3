"""What a digest says: new matches, forecasts now posted, tracked changes and deadlines coming up."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import time_machine
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import (
    AlertSubscription,
    EmailOutbox,
    Frequency,
    Opportunity,
    PipelineStage,
    TrackedOpportunity,
)
from app.services import digests
from app.services.opportunities import mark_vanished
from tests.alerts.conftest import NOW, add_opportunity, subscribe_search, subscribe_tracked


def _build(
    session: Session, app: Flask, frequency: Frequency = Frequency.DAILY, **kw: Any
) -> digests.DigestRun:
    with time_machine.travel(kw.pop("at", NOW), tick=False):
        builder = digests.builder_from_config(session, app.config)
        return digests.build_digests(session, builder, frequency, keep=True, **kw)


def test_period_keys_follow_the_digest_timezone() -> None:
    tz = ZoneInfo("America/New_York")
    late = dt.datetime(2026, 11, 3, 3, 0, tzinfo=dt.UTC)  # still Nov 2 in New York
    assert digests.period_for(Frequency.DAILY, late, tz).key == "daily:2026-11-02"
    assert digests.period_for(Frequency.WEEKLY, late, tz).key == "weekly:2026-W45"
    assert digests.period_for(Frequency.WEEKLY, late, tz).label == "week of November 2, 2026"


def test_saved_search_lists_only_new_matches_and_forecasts_that_opened(
    app: Flask, session: Session, make_user: Any
) -> None:
    user = make_user()
    add_opportunity(session, at=NOW - dt.timedelta(days=5), id="old", title="Older outreach grant")
    add_opportunity(session, at=NOW - dt.timedelta(hours=2), id="new", title="Outreach workers")
    add_opportunity(
        session, at=NOW - dt.timedelta(hours=2), id="not-cvi", title="Outreach for farms", cvi=False
    )
    forecast = add_opportunity(
        session, at=NOW - dt.timedelta(days=20), id="fc", title="Outreach forecast", status="forecasted"
    )
    add_opportunity(
        session, at=NOW - dt.timedelta(hours=4), id="fc", title="Outreach forecast", status="posted"
    )
    subscribe_search(session, user, {"q": "outreach", "page": 3})

    run = _build(session, app)
    [digest] = run.digests
    [section] = digest.sections
    assert section.label == "Saved search “Street outreach”"
    assert [i.title for i in section.new] == ["Outreach workers"]
    assert [i.title for i in section.now_posted] == ["Outreach forecast"]
    assert section.now_posted[0].opportunity_id == forecast.id
    assert section.link == "http://testserver.local/search?q=outreach"
    assert "Forecasts now open for applications" in digest.body_text
    assert digest.subject == "Your daily CVI funding digest: 1 new opportunity, 1 forecast now open"
    subscription = session.scalars(select(AlertSubscription)).one()
    assert subscription.last_digest_at == NOW  # the next digest counts from here


def test_tracked_changes_are_described_from_the_version_history(
    app: Flask, session: Session, make_user: Any
) -> None:
    user = make_user()
    before = NOW - dt.timedelta(days=10)
    moved = add_opportunity(session, at=before, id="moved", title="Deadline moves", close_date="2026-12-15")
    money = add_opportunity(session, at=before, id="money", title="Amount changes", award_ceiling=2_000_000)
    archived = add_opportunity(session, at=before, id="arch", title="Gets archived")
    gone = add_opportunity(session, at=before, id="gone", title="Disappears")
    quiet = add_opportunity(session, at=before, id="quiet", title="Nothing happens")
    subscribe_tracked(session, user, [moved, money, archived, gone, quiet], reminder_days=[])
    change_at = NOW - dt.timedelta(hours=6)
    add_opportunity(session, at=change_at, id="moved", title="Deadline moves", close_date="2027-01-12")
    add_opportunity(session, at=change_at, id="money", title="Amount changes", award_ceiling=1_500_000)
    add_opportunity(session, at=change_at, id="arch", title="Gets archived", status="archived")
    session.query(Opportunity).filter(Opportunity.source_id != "gone").update({"last_seen": change_at})
    mark_vanished(session, "test", seen_since=change_at - dt.timedelta(minutes=1), now=change_at)
    session.commit()

    [digest] = _build(session, app).digests
    notes = {item.title: item.notes for item in digest.changes}
    assert notes == {
        "Deadline moves": ["Deadline extended: Dec 15, 2026 → Jan 12, 2027"],
        "Amount changes": ["Award ceiling changed: $2,000,000 → $1,500,000"],
        "Gets archived": ["Archived: no longer accepting applications"],
        "Disappears": ["No longer listed by the source: it may have been cancelled"],
    }
    assert "CHANGES TO OPPORTUNITIES YOU TRACK" in digest.body_text
    assert "Deadline extended: Dec 15, 2026 → Jan 12, 2027" in digest.body_html


def test_reminders_fire_at_the_lead_times_once_per_window(
    app: Flask, session: Session, make_user: Any
) -> None:
    user = make_user()
    today = NOW.astimezone(ZoneInfo(app.config["DIGEST_TIMEZONE"])).date()
    old = NOW - dt.timedelta(days=60)
    in_14 = add_opportunity(
        session, at=old, id="d14", title="Closes in 14", close_date=str(today + dt.timedelta(14))
    )
    in_10 = add_opportunity(
        session, at=old, id="d10", title="Closes in 10", close_date=str(today + dt.timedelta(10))
    )
    in_2 = add_opportunity(
        session, at=old, id="d2", title="Closes in 2", close_date=str(today + dt.timedelta(2))
    )
    done = add_opportunity(
        session, at=old, id="sub", title="Submitted", close_date=str(today + dt.timedelta(7))
    )
    subscribe_tracked(session, user, [in_14, in_10, in_2, done])
    session.query(TrackedOpportunity).filter_by(opportunity_id=done.id).update(
        {"stage": PipelineStage.SUBMITTED}
    )
    session.commit()

    [digest] = _build(session, app).digests
    assert [(r.title, r.days_left) for r in digest.reminders] == [("Closes in 2", 2), ("Closes in 14", 14)]
    assert "DEADLINES COMING UP" in digest.body_text and "(2 days left)" in digest.body_text
    assert digest.subject.endswith("2 deadlines coming up")

    # Three days later the 7-day reminder of the one closing in 10 is due; the others are not again.
    [later] = _build(session, app, at=NOW + dt.timedelta(days=3)).digests
    assert [(r.title, r.days_left) for r in later.reminders] == [("Closes in 10", 7)]


def test_weekly_digest_catches_every_reminder_of_the_week(
    app: Flask, session: Session, make_user: Any
) -> None:
    user = make_user()
    today = NOW.astimezone(ZoneInfo(app.config["DIGEST_TIMEZONE"])).date()
    old = NOW - dt.timedelta(days=60)
    soon = add_opportunity(
        session, at=old, id="w", title="Closes in 5", close_date=str(today + dt.timedelta(5))
    )
    subscribe_tracked(
        session, user, [soon], frequency=Frequency.WEEKLY, last_digest_at=NOW - dt.timedelta(days=7)
    )
    assert _build(session, app, Frequency.DAILY).digests == []
    [digest] = _build(session, app, Frequency.WEEKLY).digests
    assert [(r.title, r.days_left) for r in digest.reminders] == [("Closes in 5", 5)]  # its 7-day reminder
    assert digest.period.key == "weekly:2026-W45"
    assert digest.subject.startswith("Your weekly CVI funding digest")


def test_nothing_to_say_means_no_email_and_dry_run_writes_nothing(
    app: Flask, session: Session, make_user: Any
) -> None:
    quiet, busy = make_user(), make_user()
    add_opportunity(session, at=NOW - dt.timedelta(days=9), title="Old outreach")
    subscribe_search(session, quiet, {"q": "outreach"})
    add_opportunity(session, at=NOW - dt.timedelta(hours=1), title="Youth mentoring", description="Mentors.")
    subscribe_search(session, busy, {"q": "mentoring"})

    dry = _build(session, app, dry_run=True)
    assert (dry.users, dry.built, dry.empty) == (2, 1, 1)
    assert session.scalar(select(func.count()).select_from(EmailOutbox)) == 0
    assert all(
        s.last_digest_at == NOW - dt.timedelta(days=1) for s in session.scalars(select(AlertSubscription))
    )
    real = _build(session, app)
    assert (real.enqueued, real.empty) == (1, 1)
    assert session.scalars(select(EmailOutbox.to_address)).all() == [busy.email]


def test_unsubscribed_and_inactive_users_get_no_digest(app: Flask, session: Session, make_user: Any) -> None:
    off, gone = make_user(), make_user()
    add_opportunity(session, at=NOW - dt.timedelta(hours=1), title="Outreach")
    subscribe_search(session, off, {"q": "outreach"}).active = False
    subscribe_search(session, gone, {"q": "outreach"})
    gone.active = False
    session.commit()
    assert _build(session, app).users == 0


def test_invalid_saved_search_is_skipped_not_fatal(app: Flask, session: Session, make_user: Any) -> None:
    user, other = make_user(), make_user()
    add_opportunity(session, at=NOW - dt.timedelta(hours=1), title="Outreach")
    subscribe_search(session, user, {"q": "outreach", "closing_within": 12345})
    subscribe_search(session, other, {"q": "outreach"})
    run = _build(session, app)
    assert [d.email for d in run.digests] == [other.email]


def test_change_notes_read_well() -> None:
    notes = digests.describe_changes(
        {
            "status": {"old": "forecasted", "new": "posted"},
            "close_date": {"old": "2026-12-15", "new": "2026-12-01"},
            "description": {"old": "a", "new": "b"},
            "title": {"old": "Grant", "new": "CANCELLED: Grant"},
        }
    )
    assert notes == [
        "Now posted: applications are open",
        "Deadline moved earlier: Dec 15, 2026 → Dec 1, 2026",
        "Marked cancelled by the agency",
        "Also updated: description",
    ]


def test_saved_search_through_the_keyword_index_names_the_matched_terms(
    app: Flask, session: Session, make_user: Any
) -> None:
    from app import jobs

    user = make_user()
    add_opportunity(session, at=NOW - dt.timedelta(days=5), id="old", title="Older outreach grant")
    add_opportunity(session, at=NOW - dt.timedelta(hours=2), id="new", title="Outreach workers for hospitals")
    add_opportunity(
        session,
        at=NOW - dt.timedelta(hours=2),
        id="off",
        title="Rural broadband",
        description="Fiber to farms.",
    )
    subscribe_search(session, user, {"q": "outreach"})
    keyword = jobs.keyword_index(app.config)
    assert keyword is not None and keyword.search("outreach")  # the index follows the commits
    with time_machine.travel(NOW, tick=False):
        builder = digests.builder_from_config(session, app.config, keyword=keyword)
        run = digests.build_digests(session, builder, Frequency.DAILY, keep=True)
    [section] = run.digests[0].sections
    assert [(i.title, i.reason) for i in section.new] == [
        ("Outreach workers for hospitals", "Matches outreach")
    ]
