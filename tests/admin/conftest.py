"""Admin test fixtures: a signed-in admin client that sends CSRF tokens, and one of each admin object."""

from __future__ import annotations

import gzip
import re
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
