"""The widget in a real browser: a partner page on another origin pastes the snippet and gets the list.

Two loopback servers: the app (werkzeug, threaded) and a plain partner page on a different port, so
the widget's fetch is a real cross-origin request. Needs Debian chromium (``make browser``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from flask import Flask
from werkzeug.serving import make_server

from tests.api.conftest import days
from tests.factories import record

pytestmark = pytest.mark.browser


@pytest.fixture
def app_server(roomy: Flask) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, roomy, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture
def partner_page(app_server: str) -> Iterator[Callable[[str], str]]:
    """Serve one HTML page from another origin; returns a function setting its body."""
    pages: dict[str, str] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = pages.get("html", "").encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def publish(snippet: str) -> str:
        pages["html"] = (
            '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Partner</title></head>'
            f"<body><h1>Partner network</h1>{snippet}</body></html>"
        )
        return f"http://127.0.0.1:{server.server_port}/"

    yield publish
    server.shutdown()


def test_pasted_widget_lists_deadlines_and_escapes_text(
    store: Callable[..., list[int]], app_server: str, partner_page: Callable[[str], str], page: Any
) -> None:
    store(
        record(
            id="w1", number="W-1", title="Street outreach <img src=x onerror=alert(1)>", close_date=days(5)
        ),
        record(
            id="w2",
            number="W-2",
            agency="HHS",
            sub_agency="HHS-CDC",
            title="Hospital CVI",
            close_date=days(9),
        ),
        record(
            id="w3", number="W-3", title="Texas only", close_date=days(7), eligible_applicants="Texas only"
        ),
    )
    url = partner_page(
        f'<div id="cvi-deadlines"></div><script src="{app_server}/api/v1/widget.js" '
        'data-state="CA" data-limit="5" async></script>'
    )
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("dialog", lambda dialog: errors.append(f"dialog: {dialog.message}"))
    page.goto(url)
    page.wait_for_selector("#cvi-deadlines li")
    items = page.locator("#cvi-deadlines li")
    assert items.count() == 2  # the Texas-only one is left out for California
    first = items.nth(0)
    assert first.locator("a").inner_text() == "Street outreach <img src=x onerror=alert(1)>"
    assert page.locator("#cvi-deadlines img").count() == 0
    assert first.locator("time").get_attribute("datetime") == days(5)
    assert "DOJ" in first.inner_text() and "5 days left" in first.inner_text()
    assert first.locator("a").get_attribute("href").endswith("/opportunities/1")
    section = page.locator("#cvi-deadlines section")
    assert section.get_attribute("aria-busy") == "false"
    heading_id = section.get_attribute("aria-labelledby")
    assert page.locator(f"#{heading_id}").inner_text() == "Upcoming CVI funding deadlines"
    assert errors == []


def test_widget_without_a_container_inserts_one_after_the_script(
    store: Callable[..., list[int]], app_server: str, partner_page: Callable[[str], str], page: Any
) -> None:
    store(record(id="w1", number="W-1", title="Community violence intervention", close_date=days(12)))
    url = partner_page(
        f'<p id="before">Deadlines:</p><script src="{app_server}/api/v1/widget.js" '
        'data-department="HHS" data-title="HHS deadlines"></script>'
    )
    page.goto(url)
    page.wait_for_selector("[data-cvi-widget] .cvi-status")
    page.wait_for_function(
        "document.querySelector('[data-cvi-widget] section').getAttribute('aria-busy') === 'false'"
    )
    assert page.locator("[data-cvi-widget] h2").inner_text() == "HHS deadlines"
    assert (
        page.locator("[data-cvi-widget] .cvi-status").inner_text() == "No upcoming CVI deadlines right now."
    )
