"""The preferences page, the signed unsubscribe link (one-click too) and the private calendar feed."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from flask import Blueprint, Flask
from flask.testing import FlaskClient
from icalendar import Calendar
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import AlertSubscription, Frequency, ProgramProfile, SavedSearch, SubscriptionKind
from app.services import alert_tokens, digests
from tests.alerts.conftest import NOW, add_opportunity, csrf_token, subscribe_search, subscribe_tracked

PAGE = "/alerts/preferences"


@pytest.fixture
def signed_in_app(app: Flask) -> Flask:
    """Sign-in pages come from the site part; without it, give login_required somewhere to send people."""
    if "auth.sign_in" not in app.view_functions:
        auth = Blueprint("auth", __name__)
        auth.add_url_rule("/sign-in", "sign_in", lambda: "sign in")
        app.register_blueprint(auth)
    return app


def test_preferences_need_sign_in(signed_in_app: Flask, client: FlaskClient) -> None:
    response = client.get(PAGE)
    assert response.status_code == 302 and "/sign-in" in response.headers["Location"]


def test_subscribe_change_unsubscribe_and_resubscribe(
    signed_in_app: Flask, client: FlaskClient, session: Session, make_user: Any, login: Any
) -> None:
    user = make_user()
    login(user)
    saved = SavedSearch(user_id=user.id, name="Hospital programs", query={"q": "hospital"})
    profile = ProgramProfile(
        organization_id=user.organization_id,
        name="Youth outreach",
        org_type="city government",
        program_description="Street outreach for young people.",
    )
    session.add_all([saved, profile])
    session.commit()
    page = client.get(PAGE)
    assert b"Saved search: Hospital programs" in page.data and b"Program profile: Youth outreach" in page.data
    assert b"/calendar/" in page.data

    token = csrf_token(client, PAGE)
    response = client.post(
        "/alerts/subscriptions",
        data={"csrf_token": token, "target": f"search:{saved.id}", "frequency": "daily", "reminder_days": ""},
    )
    assert response.status_code == 302
    response = client.post(
        "/alerts/subscriptions",
        data={"csrf_token": token, "target": "tracked", "frequency": "weekly", "reminder_days": "21, 3"},
    )
    assert response.status_code == 302
    subs = {
        s.kind: s
        for s in session.scalars(select(AlertSubscription).execution_options(populate_existing=True))
    }
    assert subs[SubscriptionKind.SAVED_SEARCH].frequency == Frequency.DAILY
    assert subs[SubscriptionKind.TRACKED].reminder_days == [21, 3]
    tracked = subs[SubscriptionKind.TRACKED]

    response = client.post(
        f"/alerts/subscriptions/{tracked.id}",
        data={
            "csrf_token": token,
            f"s{tracked.id}-frequency": "daily",
            f"s{tracked.id}-reminder_days": "30,7",
        },
    )
    assert response.status_code == 302
    session.refresh(tracked)
    assert (tracked.frequency, tracked.reminder_days) == (Frequency.DAILY, [30, 7])

    assert (
        client.post(f"/alerts/subscriptions/{tracked.id}/unsubscribe", data={"csrf_token": token}).status_code
        == 302
    )
    session.refresh(tracked)
    assert not tracked.active and tracked.unsubscribed_at is not None
    assert (
        client.post(f"/alerts/subscriptions/{tracked.id}/resubscribe", data={"csrf_token": token}).status_code
        == 302
    )
    session.refresh(tracked)
    assert tracked.active and tracked.unsubscribed_at is None and tracked.last_digest_at is not None

    # Subscribing again to the same thing updates the one subscription, never adds a second.
    client.post(
        "/alerts/subscriptions",
        data={
            "csrf_token": token,
            "target": f"search:{saved.id}",
            "frequency": "weekly",
            "reminder_days": "",
        },
    )
    assert (
        session.scalar(
            select(AlertSubscription.frequency).where(AlertSubscription.saved_search_id == saved.id)
        )
        == "weekly"
    )
    assert len(session.scalars(select(AlertSubscription)).all()) == 2


def test_bad_input_is_a_clear_400_and_saves_nothing(
    signed_in_app: Flask, client: FlaskClient, session: Session, make_user: Any, login: Any
) -> None:
    user, stranger = make_user(), make_user()
    login(user)
    foreign = SavedSearch(user_id=stranger.id, name="Not yours", query={})
    mine = SavedSearch(user_id=user.id, name="Mine", query={})
    session.add_all([foreign, mine])
    session.commit()
    token = csrf_token(client, PAGE)
    bad_days = client.post(
        "/alerts/subscriptions",
        data={"csrf_token": token, "target": "tracked", "frequency": "daily", "reminder_days": "soon"},
    )
    assert bad_days.status_code == 400 and b"whole numbers of days" in bad_days.data
    not_yours = client.post(
        "/alerts/subscriptions",
        data={"csrf_token": token, "target": f"search:{foreign.id}", "frequency": "daily"},
    )
    assert not_yours.status_code == 400
    bad_frequency = client.post(
        "/alerts/subscriptions", data={"csrf_token": token, "target": "tracked", "frequency": "hourly"}
    )
    assert bad_frequency.status_code == 400 and b"Not a valid choice" in bad_frequency.data
    no_csrf = client.post("/alerts/subscriptions", data={"target": "tracked", "frequency": "daily"})
    assert no_csrf.status_code == 400
    assert session.scalars(select(AlertSubscription)).all() == []

    theirs = subscribe_search(session, stranger, {"q": "x"})
    assert (
        client.post(f"/alerts/subscriptions/{theirs.id}/unsubscribe", data={"csrf_token": token}).status_code
        == 404
    )
    session.refresh(theirs)
    assert theirs.active


def test_unsubscribe_link_confirms_then_unsubscribes_without_signing_in(
    app: Flask, client: FlaskClient, session: Session, make_user: Any
) -> None:
    user = make_user("reader@example.org")
    subscription = subscribe_search(session, user, {"q": "outreach"})
    url = "/alerts/unsubscribe/" + alert_tokens.unsubscribe_token(app.config["SECRET_KEY"], user.id)
    page = client.get(url)
    assert (
        page.status_code == 200
        and b"reader@example.org" in page.data
        and b'<form method="post">' in page.data
    )
    session.refresh(subscription)
    assert subscription.active  # GET (a link scanner, a preview) changes nothing
    done = client.post(url)  # the confirm button: no sign-in, no CSRF token needed
    assert done.status_code == 200 and b"will get no more alert emails" in done.data
    session.refresh(subscription)
    assert not subscription.active and subscription.unsubscribed_at is not None


def test_one_click_post_from_the_email_header_unsubscribes(
    app: Flask, client: FlaskClient, session: Session, make_user: Any, smtp: Any
) -> None:
    assert app.config["WTF_CSRF_ENABLED"]  # CSRF is on: only this endpoint is exempt
    user = make_user()
    subscription = subscribe_search(session, user, {"q": "outreach"})
    add_opportunity(session, at=NOW - dt.timedelta(hours=1), title="Outreach")
    import time_machine

    with time_machine.travel(NOW, tick=False):
        digests.send_digests(session, app.config, Frequency.DAILY, sender=_sender(app))
    [message] = smtp.messages
    https = re.search(r"<(http[^>]+)>", message["List-Unsubscribe"])
    assert https is not None
    path = https.group(1).removeprefix(app.config["BASE_URL"])
    response = client.post(
        path, data="List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 200
    session.refresh(subscription)
    assert not subscription.active


def _sender(app: Flask) -> Any:
    from app.services.smtp import SmtpSender, SmtpSettings

    return SmtpSender(SmtpSettings.from_config(app.config))


@pytest.mark.parametrize("tamper", ["signature", "user", "salt", "garbage"])
def test_a_tampered_unsubscribe_link_is_refused(
    app: Flask, client: FlaskClient, session: Session, make_user: Any, tamper: str
) -> None:
    victim = make_user()
    subscription = subscribe_search(session, victim, {"q": "outreach"})
    good = alert_tokens.unsubscribe_token(app.config["SECRET_KEY"], victim.id)
    payload, signature = good.rsplit(".", 1)
    token = {
        "signature": f"{payload}.{signature[:-2]}xx",
        "user": alert_tokens.unsubscribe_token("someone else's key", victim.id),
        "salt": alert_tokens.calendar_token(app.config["SECRET_KEY"], victim.id, 1),
        "garbage": "not-a-token",
    }[tamper]
    for response in (client.get(f"/alerts/unsubscribe/{token}"), client.post(f"/alerts/unsubscribe/{token}")):
        assert response.status_code == 400 and b"not valid" in response.data
    session.refresh(subscription)
    assert subscription.active


def test_calendar_feed_has_stable_events_with_alarms_and_can_be_revoked(
    signed_in_app: Flask, client: FlaskClient, session: Session, make_user: Any, login: Any, app: Flask
) -> None:
    user = make_user()
    first = add_opportunity(session, at=NOW, id="c1", title="Closes first", close_date="2026-12-01")
    second = add_opportunity(session, at=NOW, id="c2", title="Closes later", close_date="2027-01-15")
    subscribe_tracked(session, user, [first, second], reminder_days=[14, 2])
    login(user)
    page = client.get(PAGE)
    url = re.search(rb'value="http://testserver.local(/calendar/[^"]+\.ics)"', page.data)
    assert url is not None
    feed_path = url.group(1).decode()
    response = client.get(feed_path)
    assert response.status_code == 200 and response.headers["Content-Type"] == "text/calendar; charset=utf-8"
    calendar = Calendar.from_ical(response.data)
    events = {str(e["summary"]): e for e in calendar.walk("VEVENT")}
    assert set(events) == {"Closes: Closes first", "Closes: Closes later"}
    event = events["Closes: Closes first"]
    assert event.decoded("dtstart") == dt.date(2026, 12, 1)
    uid = str(event["uid"])
    assert uid == f"tracked-{user.organization_id}-{first.id}-close@testserver.local"
    triggers = sorted(str(a["trigger"].to_ical().decode()) for a in event.walk("VALARM"))
    assert triggers == ["-P13DT15H", "-P1DT15H"]  # 09:00 on the mornings 14 and 2 days before

    # The deadline moves: same UID, new date, so calendars move the event instead of adding one.
    add_opportunity(
        session, at=NOW + dt.timedelta(hours=1), id="c1", title="Closes first", close_date="2026-12-08"
    )
    moved = {str(e["uid"]): e for e in Calendar.from_ical(client.get(feed_path).data).walk("VEVENT")}
    assert moved[uid].decoded("dtstart") == dt.date(2026, 12, 8)

    assert client.get(feed_path[:-8] + "AAAA.ics").status_code == 404
    token = csrf_token(client, PAGE)
    assert client.post("/alerts/calendar/regenerate", data={"csrf_token": token}).status_code == 302
    assert client.get(feed_path).status_code == 404  # the old address no longer works
    new_page = client.get(PAGE)
    new_url = re.search(rb'value="http://testserver.local(/calendar/[^"]+\.ics)"', new_page.data)
    assert new_url is not None and new_url.group(1).decode() != feed_path
    assert client.get(new_url.group(1).decode()).status_code == 200
