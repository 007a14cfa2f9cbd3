"""Security in real headless Chromium: the Content-Security-Policy holds on every main page (no
violation reported), stored hostile text stays inert (no dialog, no injected element), and the widget
still embeds on a partner page that has a strict nonce-based policy of its own."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from tests.browser.conftest import LiveServer
from tests.conftest import session_cookie_data
from tests.security import world as worlds
from tests.security.xss import HOSTILE, hostile_opportunities
from tests.site.helpers import add_catalogue

pytestmark = pytest.mark.browser

#: Records every violation the page reports, from the first script on (before any of ours runs).
WATCH_CSP = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', e => window.__csp.push(
  e.violatedDirective + ' ' + (e.blockedURI || 'inline') + ' ' + (e.sourceFile || '') + ':' + e.lineNumber));
"""
#: What an injection would leave in the DOM: foreign elements, handler attributes, script links.
INJECTED = """
() => {
  const found = [];
  for (const el of document.querySelectorAll('*')) {
    const name = el.tagName.toUpperCase();
    if (['IMG', 'SVG', 'IFRAME', 'OBJECT', 'EMBED'].includes(name)) found.push(name);
    for (const attr of el.attributes) {
      if (attr.name.startsWith('on')) found.push(el.tagName + ' ' + attr.name);
      if (['href', 'src', 'action'].includes(attr.name) && /^\\s*(javascript|data):/i.test(attr.value)) {
        found.push(el.tagName + ' ' + attr.name + '=' + attr.value.slice(0, 30));
      }
    }
    if (el.tagName === 'SCRIPT' && el.textContent.trim()) found.push('inline script');
  }
  if (window.__xss) found.push('window.__xss=' + window.__xss);
  return found;
}
"""


class Watched:
    """A signed-in page that keeps CSP violations, console CSP errors, dialogs and page errors."""

    def __init__(self, page: Any, base: str) -> None:
        self.page, self.base = page, base
        self.console: list[str] = []
        self.dialogs: list[str] = []
        page.add_init_script(WATCH_CSP)
        page.on("console", self._console)
        page.on("dialog", self._dialog)
        page.on("pageerror", lambda error: self.console.append(f"page error: {error}"))

    def _console(self, message: Any) -> None:
        if "Content Security Policy" in message.text or "Refused to" in message.text:
            self.console.append(message.text)

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def sign_in(self, app: Flask, user: Any) -> None:
        cookie = app.session_interface.get_signing_serializer(app).dumps(session_cookie_data(app, user))
        self.page.context.add_cookies(
            [{"name": app.config["SESSION_COOKIE_NAME"], "value": cookie, "url": self.base}]
        )

    def visit(self, path: str) -> list[str]:
        """Open ``path``; returns the CSP violations it reported."""
        response = self.page.goto(self.base + path)
        assert response is not None and response.status < 500, path
        self.page.wait_for_load_state("load")
        return list(self.page.evaluate("window.__csp"))


def main_pages(world: worlds.World, opportunity_id: int) -> list[str]:
    profile, tracked = world.ids["profile_id"], world.ids["tracked_id"]
    site = ["/", "/search", "/search?q=outreach&department=DOJ", f"/opportunities/{opportunity_id}"]
    workspace = [f"/profiles/{profile}/{page}" for page in ("matches", "edit", "dismissed")] + [
        "/profiles",
        "/profiles/new",
        "/tracked",
        f"/tracked/{tracked}",
        "/tracked/calendar",
        "/searches",
        "/alerts/preferences",
        "/organization",
    ]
    admin_pages = (
        "",
        "review",
        "opportunities",
        "users",
        "audit",
        "crawls",
        "outbox",
        "api-keys",
        "programs",
    )
    admin = [f"/admin/{page}" for page in admin_pages]
    admin.append(f"/admin/opportunities/{opportunity_id}")
    return [*site, *workspace, *admin, "/api/v1/docs"]


def test_main_pages_report_no_csp_violation(
    app: Flask, live_server: LiveServer, page: Any, session: Session
) -> None:
    ids = add_catalogue(session)
    world = worlds.build(app, session, "csp", "Safe Streets", [ids["cvi"], ids["dol"], ids["ed"]], admin=True)
    watched = Watched(page, live_server.url)
    for path in ("/sign-in", "/sign-up", "/reset", "/no-such-page"):
        assert watched.visit(path) == [], path
    watched.sign_in(app, world.lead)
    for path in main_pages(world, ids["cvi"]):
        assert watched.visit(path) == [], path
        assert "Sign in" not in page.title(), path
    # The widget demo: the widget's own style block takes the nonce of its script tag.
    assert watched.visit("/api/v1/widget-demo") == []
    page.wait_for_selector("#cvi-deadlines li")
    border = page.evaluate("getComputedStyle(document.querySelector('.cvi-widget')).borderTopStyle")
    assert border == "solid"  # the nonce'd style applied
    assert page.evaluate("window.__csp") == []
    assert watched.console == [] and watched.dialogs == []
    # The detector sees a violation when there is one: an inline script is refused.
    page.evaluate("() => { const s = document.createElement('script'); s.textContent = 'window.x=1'; "
                  "document.body.appendChild(s); }")  # fmt: skip
    page.wait_for_function("window.__csp.length > 0")
    assert page.evaluate("window.x") is None


def test_stored_hostile_text_is_inert_in_the_browser(
    app: Flask, live_server: LiveServer, page: Any, session: Session, make_user: Any
) -> None:
    add_catalogue(session)
    admin = make_user("curator@example.org", role="admin")
    hostile = hostile_opportunities(session, admin)
    tracked = [hostile["hostile-crawled"], hostile["hostile-imported"], hostile["hostile-crawled"]]
    world = worlds.build(app, session, "hostile", HOSTILE, tracked, admin=True)
    watched = Watched(page, live_server.url)
    watched.sign_in(app, world.lead)
    extra = [f"/search?q={HOSTILE}", f"/invite/{world.tokens['invite']}", "/api/v1/widget-demo"]
    for path in [*main_pages(world, hostile["hostile-imported"]), *extra]:
        watched.visit(path)
        if path == "/api/v1/widget-demo":
            page.wait_for_selector("#cvi-deadlines li")
            assert HOSTILE in page.locator("#cvi-deadlines").inner_text()  # shown as text
        assert page.evaluate(INJECTED) == [], path
    assert watched.dialogs == []
    page.goto(f"{live_server.url}/profiles")
    assert page.get_by_role("link", name=f"{HOSTILE} program").first.is_visible()  # the text, as text


@pytest.fixture
def partner_site(live_server: LiveServer) -> Iterator[Callable[[str], str]]:
    """A page on another origin whose own policy allows only scripts and styles with its nonce."""
    pages: dict[str, str] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = pages["html"].encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header(
                "Content-Security-Policy",
                f"default-src 'none'; script-src 'nonce-partner123' {live_server.url}; "
                f"style-src 'nonce-partner123'; connect-src {live_server.url}",
            )
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    def publish(snippet: str) -> str:
        pages["html"] = (
            '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Partner</title></head>'
            f"<body><h1>Partner network</h1>{snippet}</body></html>"
        )
        return f"http://127.0.0.1:{server.server_port}/"

    yield publish
    server.shutdown()


def test_widget_embeds_on_a_partner_page_with_a_strict_policy(
    live_server: LiveServer, page: Any, session: Session, partner_site: Callable[[str], str]
) -> None:
    add_catalogue(session)
    url = partner_site(
        f'<div id="cvi-deadlines"></div><script nonce="partner123" src="{live_server.url}/api/v1/widget.js" '
        'data-limit="5" async></script>'
    )
    watched = Watched(page, "")
    assert watched.visit(url) == []
    page.wait_for_selector("#cvi-deadlines li")
    assert page.evaluate("getComputedStyle(document.querySelector('.cvi-widget')).borderTopStyle") == "solid"
    assert page.evaluate("window.__csp") == [] and watched.console == []
