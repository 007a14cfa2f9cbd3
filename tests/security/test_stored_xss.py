"""Stored XSS (ASVS V5.3): hostile text from sources, imports, admins and users renders inert on every
page, in digest emails, in the iCalendar feeds and in the API. The browser proof is in
tests/browser/test_security_in_browser.py."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask, url_for
from flask.testing import FlaskClient
from icalendar import Calendar
from sqlalchemy.orm import Session

from app.db import utcnow
from app.models import Frequency, Opportunity
from app.services import digests
from tests.alerts.conftest import subscribe_search, subscribe_tracked
from tests.security import world as worlds
from tests.security.test_cross_organization import ARGUMENTS, ENDPOINTS, TOKEN_KIND
from tests.security.xss import ESCAPED, HOSTILE, hostile_opportunities, problems
from tests.site.helpers import add_catalogue

OUR_SCRIPTS = ("/static/admin.js", "/api/v1/widget.js")


@dataclass
class Hostile:
    world: worlds.World
    opportunity_ids: dict[str, int]
    objects: dict[str, Any]


@pytest.fixture
def hostile(app: Flask, session: Session, admin: Any, objects: dict[str, Any]) -> Hostile:
    catalogue = add_catalogue(session)
    opportunity_ids = hostile_opportunities(session, admin)
    tracked = [opportunity_ids["hostile-crawled"], opportunity_ids["hostile-imported"], catalogue["ed"]]
    world = worlds.build(app, session, "hostile", HOSTILE, tracked, admin=True)
    return Hostile(world, opportunity_ids, objects)


def page_urls(app: Flask, hostile: Hostile) -> list[tuple[str, str]]:
    """(endpoint, url) of every GET route, filled with the hostile organization's objects."""
    values: dict[str, Any] = {
        **hostile.world.ids,
        **{
            k: hostile.objects[k]
            for k in ("key_id", "run_id", "payload_id", "message_id", "program_id", "number")
        },
        "opportunity_id": hostile.opportunity_ids["hostile-crawled"],
        "filename": "site.css",
        "rest": "nope",
    }
    urls = []
    with app.test_request_context():
        for rule in app.url_map.iter_rules():
            if "GET" not in (rule.methods or set()):
                continue
            kind = "admin" if rule.endpoint.startswith("admin.") else ENDPOINTS[rule.endpoint]
            if kind == "token":
                args = {"token": hostile.world.tokens[TOKEN_KIND[rule.endpoint]]}
            else:
                args = {name: values[name] for name in rule.arguments if name in ARGUMENTS}
            urls.append((rule.endpoint, url_for(rule.endpoint, **args)))
    return urls


def test_every_page_leaves_hostile_text_inert(
    app: Flask, client: FlaskClient, login: Any, hostile: Hostile
) -> None:
    login(hostile.world.lead)
    shown_on = set()
    for endpoint, url in page_urls(app, hostile):
        response = client.get(url)
        assert response.status_code < 500, (endpoint, url)
        if response.mimetype != "text/html":
            continue
        html = response.get_data(as_text=True)
        assert problems(html, our_scripts=OUR_SCRIPTS) == [], (endpoint, url)
        if ESCAPED in html:
            shown_on.add(endpoint)
    # The hostile text really was on these pages (escaped), so the check above means something.
    assert {
        "home.index", "search.index", "opportunities.show", "profiles.index", "profiles.matches",
        "profiles.edit", "profiles.dismissed", "tracking.index", "tracking.edit", "tracking.saved_searches",
        "alerts.preferences", "org.members", "org.accept", "admin.opportunity", "admin.audit_log",
        "admin.users",
    } <= shown_on  # fmt: skip


def test_search_results_and_the_opportunity_page_drop_script_links(
    client: FlaskClient, hostile: Hostile
) -> None:
    opportunity_id = hostile.opportunity_ids["hostile-imported"]
    html = client.get(f"/opportunities/{opportunity_id}").get_data(as_text=True)
    assert problems(html, our_scripts=OUR_SCRIPTS) == []
    # The source's javascript: and data: links are not offered at all.
    assert "The listing at its source" not in html and "The agency's page" not in html
    search = client.get("/search", query_string={"q": HOSTILE}).get_data(as_text=True)
    assert problems(search, our_scripts=OUR_SCRIPTS) == []


def test_digest_emails_escape_hostile_text(
    app: Flask, session: Session, make_user: Any, hostile: Hostile
) -> None:
    user = make_user("digest@ovp.example.gov")
    now = utcnow()
    subscribe_search(session, user, {"q": "outreach"}, name=HOSTILE, created_at=now - dt.timedelta(days=3),
                     last_digest_at=now - dt.timedelta(days=1))  # fmt: skip
    opportunities = [session.get(Opportunity, i) for i in hostile.opportunity_ids.values()]
    subscribe_tracked(session, user, [o for o in opportunities if o], reminder_days=[14, 13],
                      last_digest_at=now - dt.timedelta(days=1))  # fmt: skip
    builder = digests.builder_from_config(session, app.config, now=now + dt.timedelta(minutes=5))
    run = digests.build_digests(session, builder, Frequency.DAILY, keep=True, user_email=user.email)
    [digest] = run.digests
    assert problems(digest.body_html) == []
    assert "&lt;script&gt;window.__xss=1" in digest.body_html  # the saved search's name, escaped
    assert "<script>" not in digest.body_html and "onerror=" not in digest.body_html.replace(
        "onerror=&#34;", ""
    )
    assert "\n" not in digest.subject and "\r" not in digest.subject


def test_calendar_feeds_keep_hostile_text_as_text(client: FlaskClient, hostile: Hostile) -> None:
    feed = client.get(f"/calendar/{hostile.world.tokens['calendar']}.ics")
    assert feed.status_code == 200 and feed.mimetype == "text/calendar"
    events = Calendar.from_ical(feed.data).walk("VEVENT")
    summaries = [str(e["summary"]) for e in events]
    assert summaries and not any(s.strip() == "injected" for s in summaries)
    assert any("<script>window.__xss=1" in s for s in summaries)  # kept as text, one event per deadline
    single = client.get(f"/opportunities/{hostile.opportunity_ids['hostile-crawled']}.ics")
    [event] = Calendar.from_ical(single.data).walk("VEVENT")
    assert "END:VEVENT" in str(event["summary"])  # the injected lines stayed inside the summary


def test_the_api_returns_hostile_text_as_data(client: FlaskClient, hostile: Hostile) -> None:
    response = client.get(f"/api/v1/opportunities/{hostile.opportunity_ids['hostile-imported']}")
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    body = response.get_json()
    assert body["title"].startswith("Outreach <script>")  # JSON data, for the partner to encode
    assert body["source_url"] is None  # a javascript: link is never handed on
    deadlines = client.get("/api/v1/deadlines").get_json()
    assert any(HOSTILE in item["title"] for item in deadlines["items"])
