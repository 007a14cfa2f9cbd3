"""The grant writer's day in real headless Chromium, with screenshots and accessibility checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from icalendar import Calendar
from sqlalchemy.orm import Session

from tests.browser.conftest import ARTIFACTS, LiveServer, accessibility_problems, screenshot
from tests.site.helpers import add_catalogue

pytestmark = pytest.mark.browser


def test_sign_up_profile_matches_search_track_and_calendar(
    live_server: LiveServer, page: Any, session: Session
) -> None:
    ids = add_catalogue(session)
    base = live_server.url

    page.goto(f"{base}/sign-up")
    assert accessibility_problems(page) == []
    page.get_by_label("Your name").fill("Dana Writer")
    page.get_by_label("Work email").fill("dana@ovp.example.gov")
    page.locator("#organization").fill("Office of Violence Prevention")
    page.get_by_label("Kind of organization").select_option("city government")
    page.locator("#password").fill("correct horse battery")
    page.locator("#confirm").fill("correct horse battery")
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url(f"{base}/profiles/new")

    assert accessibility_problems(page) == []
    page.get_by_label("Program name").fill("Safe Streets Outreach")
    page.get_by_label("What the program does").fill(
        "Credible messengers do street outreach and violence intervention with young adults."
    )
    page.get_by_label("Focus areas").fill("street outreach, violence intervention")
    page.get_by_role("button", name="Save and see matches").click()
    page.wait_for_url("**/matches")
    assert page.get_by_role("heading", name="Funding that fits Safe Streets Outreach").is_visible()
    assert page.get_by_role(
        "link", name="Community violence intervention and prevention initiative", exact=True
    ).is_visible()
    assert page.get_by_text("Why it fits:").first.is_visible()
    screenshot(page, "matches")

    page.goto(f"{base}/search")
    page.get_by_label("Department of Labor").check()
    page.get_by_role("button", name="Apply filters").click()
    page.wait_for_url("**department=DOL**")
    assert page.get_by_role("heading", name="1 opportunity").is_visible()
    assert page.get_by_role("link", name="Reentry employment for young adults").is_visible()
    screenshot(page, "search-filtered")

    page.goto(f"{base}/opportunities/{ids['cvi']}")
    assert accessibility_problems(page) == []
    page.get_by_role("button", name="Track this opportunity").click()
    assert page.get_by_text("Added to your organization's tracked opportunities.").is_visible()
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Add deadline to calendar (.ics)").click()
    download = download_info.value
    saved = Path(ARTIFACTS) / download.suggested_filename
    ARTIFACTS.mkdir(exist_ok=True)
    download.save_as(str(saved))
    events = Calendar.from_ical(saved.read_bytes()).walk("VEVENT")
    assert len(events) == 1 and "Community violence intervention" in str(events[0]["summary"])
    screenshot(page, "opportunity-tracked")

    page.goto(f"{base}/tracked")
    assert page.get_by_role(
        "link", name="Community violence intervention and prevention initiative", exact=True
    ).is_visible()
    assert accessibility_problems(page) == []
    screenshot(page, "tracked")


def test_keyboard_only_search(live_server: LiveServer, page: Any, session: Session) -> None:
    add_catalogue(session)
    page.goto(f"{live_server.url}/search")
    assert accessibility_problems(page) == []
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip-link"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    for _ in range(5):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "q":
            break
    assert page.evaluate("document.activeElement.id") == "q"
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline == "solid"  # visible focus
    page.keyboard.type("reentry")
    page.keyboard.press("Enter")
    page.wait_for_url("**q=reentry**")
    assert page.get_by_role("link", name="Reentry employment for young adults").is_visible()
    screenshot(page, "search-keyboard")


@pytest.mark.parametrize("path", ["/search", "/sign-up", "/sign-in"])
def test_no_horizontal_scroll_at_320px(
    live_server: LiveServer, page: Any, session: Session, path: str
) -> None:
    add_catalogue(session)
    page.set_viewport_size({"width": 320, "height": 800})
    page.goto(f"{live_server.url}{path}")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 320, f"{path} is {width}px wide at 320px"
    screenshot(page, f"narrow{path.replace('/', '-')}")
