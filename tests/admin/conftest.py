"""Admin test fixtures: a signed-in admin client that sends CSRF tokens, and one of each admin object."""

from __future__ import annotations

import gzip
import re
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from tests.factories import record

TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class AdminClient:
    """A test client signed in as an admin; ``post`` adds a valid CSRF token."""

    client: FlaskClient
    user: Any
    _token: str | None = None

    def token(self) -> str:
        if self._token is None:
            page = self.client.get("/admin/api-keys").get_data(as_text=True)
            match = TOKEN.search(page)
            assert match, "no CSRF token on the API keys page"
            self._token = match.group(1)
        return self._token

    def get(self, url: str, **kwargs: Any) -> Any:
        return self.client.get(url, **kwargs)

    def post(self, url: str, data: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        return self.client.post(url, data={**(data or {}), "csrf_token": self.token()}, **kwargs)


@pytest.fixture
def admin(make_user: Any) -> Any:
    return make_user("admin@example.org", role="admin")


@pytest.fixture
def admin_client(client: FlaskClient, admin: Any, login: Any) -> AdminClient:
    login(admin)
    return AdminClient(client, admin)


@pytest.fixture
def objects(session: Session, admin: Any, make_user: Any) -> dict[str, Any]:
    """One of every object an admin URL names, keyed by the URL argument."""
    import datetime as dt

    from app.models import (
        ApiKey,
        AssistanceListing,
        CrawlError,
        CrawlPayload,
        CrawlRun,
        CviProgram,
        EmailOutbox,
        OutboxStatus,
    )
    from app.services.opportunities import upsert_many

    result = upsert_many(session, [record()])
    program = CviProgram(
        slug="cvi-initiative",
        name="Community Based Violence Intervention and Prevention Initiative",
        department="DOJ",
        summary="Funds CVI programs.",
        eligible_applicants="Cities, counties, nonprofits",
        source_url="https://bja.ojp.gov/program/cvipi",
        last_verified=dt.date(2026, 11, 1),
    )
    session.add(program)
    session.flush()
    session.add(AssistanceListing(number="16.045", title="CVIPI", cvi_program_id=program.id))
    run = CrawlRun(source="grants_gov", status="partial", fetched=3, new=1, updated=1, unchanged=1, failed=1)
    session.add(run)
    session.flush()
    session.add(
        CrawlError(
            run_id=run.id,
            url="https://api.grants.gov/v1/api/fetchOpportunity",
            kind="http",
            message="HTTP 503",
        )
    )
    payload = CrawlPayload(
        run_id=run.id,
        url="https://api.grants.gov/v1/api/search2",
        status_code=200,
        content_type="application/json",
        body_gz=gzip.compress(b'{"hits": [], "note": "<script>alert(1)</script>"}'),
    )
    email = EmailOutbox(
        to_address="grants@example.org",
        kind="digest",
        period_key="2026-W47",
        subject="New CVI funding",
        body_text="…",
        status=OutboxStatus.FAILED,
        attempts=5,
        last_error="SMTP 550",
    )
    member = make_user("member@example.org")
    key = ApiKey(name="Partner", prefix="cvi_abcdefgh", key_hash="0" * 64)
    session.add_all([payload, email, key])
    session.commit()
    return {
        "opportunity_id": result.new_ids[0],
        "program_id": program.id,
        "number": "16.045",
        "run_id": run.id,
        "payload_id": payload.id,
        "message_id": email.id,
        "user_id": member.id,
        "key_id": key.id,
        "member": member,
    }


@pytest.fixture
def live_server(app: Any) -> Iterator[str]:
    """The app served on a free loopback port from a thread; yields its base URL."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


@pytest.fixture
def browser() -> Iterator[Any]:
    """Debian's headless Chromium driven by Playwright (never a downloaded browser)."""
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium")
    assert executable, "install Debian chromium: apt-get install -y chromium"
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=executable,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-dev-shm-usage",
            ],
        )
        try:
            yield instance
        finally:
            instance.close()


@pytest.fixture
def admin_page(app: Any, browser: Any, live_server: str, admin: Any) -> Iterator[Any]:
    """A browser page signed in as the admin through a session cookie made by the app's own serializer."""
    cookie = app.session_interface.get_signing_serializer(app).dumps(
        {"_user_id": str(admin.id), "_fresh": True}
    )
    context = browser.new_context(base_url=live_server)
    context.add_cookies([{"name": app.config["SESSION_COOKIE_NAME"], "value": cookie, "url": live_server}])
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.js_errors = errors
    try:
        yield page
    finally:
        context.close()
