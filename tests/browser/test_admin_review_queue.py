"""The admin review queue in real headless Chromium: clear a day's intake from the keyboard.

It lives with the site's browser tests so it shares their one Chromium (two Playwright instances
alive at once in one process do not work); the admin's other tests are in tests/admin/.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Curation, Opportunity
from app.services import cvi_scoring
from app.services.opportunities import upsert_many
from tests.browser.conftest import accessibility_problems
from tests.conftest import session_cookie_data
from tests.factories import record

pytestmark = pytest.mark.browser


@pytest.fixture
def admin_page(app: Any, page: Any, live_server: Any, make_user: Any) -> Iterator[Any]:
    """A browser page signed in as an admin through a session cookie made by the app's own serializer."""
    admin = make_user("admin@example.org", role="admin")
    cookie = app.session_interface.get_signing_serializer(app).dumps(session_cookie_data(app, admin))
    page.context.add_cookies(
        [{"name": app.config["SESSION_COOKIE_NAME"], "value": cookie, "url": live_server.url}]
    )
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.js_errors = errors
    page.base_url = live_server.url
    yield page


def _intake(session: Session) -> list[int]:
    """Three new records the classifier is unsure of (newest first in the returned list)."""
    ids = []
    for n, title in enumerate(
        ["Youth Violence Prevention", "Safe Neighborhoods Training", "Reentry Services"]
    ):
        now = dt.datetime(2026, 11, 20, 9, tzinfo=dt.UTC) - dt.timedelta(hours=n)
        result = upsert_many(session, [record(id=f"intake-{n}", title=title)], now=now)
        ids.append(result.new_ids[0])
    session.commit()  # the classifier scores them on commit; the test sets unsure scores after
    for opp in session.scalars(select(Opportunity).where(Opportunity.id.in_(ids))):
        opp.cvi_score = cvi_scoring.threshold() - 0.02
        opp.cvi_classified = False
        opp.cvi_eligible = False
        opp.cvi_reasons = [f"Mentions {opp.title.lower()}"]
    session.commit()
    return ids


def test_an_admin_clears_the_queue_with_the_keyboard(session: Session, admin_page: Any) -> None:
    newest, middle, oldest = _intake(session)
    page = admin_page
    page.goto(page.base_url + "/admin/review")
    assert accessibility_problems(page) == []
    assert page.locator(".review-item").count() == 3
    first = page.locator(".review-item").first
    assert first.get_attribute("data-id") == str(newest)
    assert first.evaluate("element => element === document.activeElement")
    assert "Mentions youth violence prevention" in first.inner_text()

    # c on the focused (first) item confirms it; the queue reloads without it.
    with page.expect_navigation():
        page.keyboard.press("c")
    assert "confirmed" in page.locator(".alert").first.inner_text()
    assert page.locator(".review-item").count() == 2

    # j moves to the next item; n opens its note; Escape returns; r rejects it with the note.
    page.keyboard.press("j")
    assert page.evaluate("document.activeElement.dataset.id") == str(oldest)
    page.keyboard.press("n")
    page.keyboard.type("Reentry only, no CVI activities")
    page.keyboard.press("Escape")
    with page.expect_navigation():
        page.keyboard.press("r")
    assert page.locator(".review-item").count() == 1

    # The last one by mouse, with the buttons.
    with page.expect_navigation():
        page.locator(".review-item").first.get_by_role("button", name="Confirm CVI").click()
    assert "The queue is empty" in page.content()
    assert page.js_errors == []

    session.expire_all()
    decisions = {
        o.id: o.cvi_override
        for o in session.scalars(select(Opportunity).where(Opportunity.id.in_([newest, middle, oldest])))
    }
    assert decisions == {newest: True, oldest: False, middle: True}
    note = session.scalars(select(Curation.note).where(Curation.opportunity_id == oldest)).one()
    assert note == "Reentry only, no CVI activities"
