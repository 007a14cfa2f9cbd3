"""Operations pages: crawl runs and payloads, run a source now, jobs, outbox, users, API keys, dashboard."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import ApiKey, ApiKeyUsage, AuditEvent, EmailOutbox, JobLock, JobRun, User
from app.services import api_keys, crawl_admin
from tests.admin.conftest import AdminClient


def test_crawl_runs_show_counts_errors_and_payload_links(
    admin_client: AdminClient, objects: dict[str, Any]
) -> None:
    listing = admin_client.get("/admin/crawls").get_data(as_text=True)
    assert "grants_gov" in listing and "partial" in listing
    detail = admin_client.get(f"/admin/crawls/{objects['run_id']}").get_data(as_text=True)
    assert "https://api.grants.gov/v1/api/fetchOpportunity" in detail and "HTTP 503" in detail
    assert f"/admin/crawls/payloads/{objects['payload_id']}" in detail


def test_payloads_download_as_attachments_never_as_html(
    session: Session, admin_client: AdminClient, objects: dict[str, Any]
) -> None:
    response = admin_client.get(f"/admin/crawls/payloads/{objects['payload_id']}")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.get_data() == b'{"hits": [], "note": "<script>alert(1)</script>"}'

    import gzip

    from app.models import CrawlPayload

    html = CrawlPayload(
        run_id=objects["run_id"],
        url="https://www.dol.gov/grants",
        status_code=200,
        content_type="text/html; charset=utf-8",
        body_gz=gzip.compress(b"<html><script>x()</script></html>"),
    )
    session.add(html)
    session.commit()
    response = admin_client.get(f"/admin/crawls/payloads/{html.id}")
    assert response.mimetype == "text/plain" and "attachment" in response.headers["Content-Disposition"]
    assert admin_client.get("/admin/crawls/payloads/99999").status_code == 404


def test_run_a_source_now_starts_a_background_process(
    session: Session, admin_client: AdminClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[dict[str, Any]] = []

    class FakeProcess:
        pid = 4242

    def fake_popen(command: list[str], **kwargs: Any) -> FakeProcess:
        started.append({"command": command, **kwargs})
        return FakeProcess()

    monkeypatch.setattr(crawl_admin.subprocess, "Popen", fake_popen)
    response = admin_client.post("/admin/crawls/run", {"source": "grants_gov"})
    assert response.status_code == 302 and "source=grants_gov" in response.headers["Location"]
    assert started[0]["command"][-4:] == ["wsgi", "crawl", "--source", "grants_gov"]
    assert started[0]["start_new_session"] is True
    assert started[0]["env"]["DATABASE_URL"] == admin_client.client.application.config["DATABASE_URL"]
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == "run crawl")).one()
    assert event.new_value == "grants_gov" and event.actor_id == admin_client.user.id

    response = admin_client.post("/admin/crawls/run", {"source": "grants_gov; rm -rf /"})
    assert response.status_code == 400 and "choose one of the sources" in response.get_data(as_text=True)
    assert len(started) == 1
    form = admin_client.get("/admin/crawls").get_data(as_text=True)
    for name in ("grants_gov", "ojp", "dol_eta", "ed_forecast", "samhsa"):
        assert f"<option>{name}</option>" in form or f"<option selected>{name}</option>" in form


def test_jobs_page_shows_history_and_locks(session: Session, admin_client: AdminClient) -> None:
    now = dt.datetime(2026, 11, 20, 6, tzinfo=dt.UTC)
    session.add_all(
        [
            JobRun(
                name="daily-digest", started_at=now, finished_at=now, outcome="succeeded", detail="12 sent"
            ),
            JobRun(name="crawl-grants", started_at=now, outcome="failed", detail="timeout"),
            JobLock(name="daily-digest", holder="host-1:123", acquired_at=now, expires_at=now),
        ]
    )
    session.commit()
    page = admin_client.get("/admin/jobs").get_data(as_text=True)
    assert "12 sent" in page and "timeout" in page and "host-1:123" in page
    filtered = admin_client.get("/admin/jobs?name=crawl-grants").get_data(as_text=True)
    assert "timeout" in filtered and "12 sent" not in filtered


def test_failed_email_can_be_retried(
    session: Session, admin_client: AdminClient, objects: dict[str, Any]
) -> None:
    page = admin_client.get("/admin/outbox?status=failed").get_data(as_text=True)
    assert "SMTP 550" in page and "failed: 1" in page
    response = admin_client.post(f"/admin/outbox/{objects['message_id']}/retry")
    assert response.status_code == 302
    message = session.get(EmailOutbox, objects["message_id"])
    session.refresh(message)
    assert message is not None and message.status == "pending" and message.next_attempt_at is not None
    response = admin_client.post(f"/admin/outbox/{objects['message_id']}/retry")
    assert response.status_code == 400 and "only failed messages" in response.get_data(as_text=True)
    assert admin_client.get("/admin/outbox?status=bogus").status_code == 400


def test_role_changes_and_deactivation_are_audited(
    session: Session, admin_client: AdminClient, objects: dict[str, Any]
) -> None:
    member = objects["member"]
    assert (
        admin_client.post(
            f"/admin/users/{member.id}/role", {"role": "admin", "note": "new OVP lead"}
        ).status_code
        == 302
    )
    assert admin_client.post(f"/admin/users/{member.id}/active", {"active": "0"}).status_code == 302
    assert admin_client.post(f"/admin/users/{member.id}/active", {"active": "1"}).status_code == 302
    session.expire_all()
    user = session.get(User, member.id)
    assert user is not None and user.role == "admin" and user.active is True
    events = session.scalars(
        select(AuditEvent).where(AuditEvent.target_id == member.id).order_by(AuditEvent.id)
    )
    assert [(e.action, e.old_value, e.new_value) for e in events] == [
        ("change role", "member", "admin"),
        ("deactivate user", True, False),
        ("reactivate user", False, True),
    ]
    page = admin_client.get(f"/admin/audit/accounts?target=user&target_id={member.id}").get_data(as_text=True)
    assert "new OVP lead" in page and "member@example.org" in page

    me = admin_client.user.id
    response = admin_client.post(f"/admin/users/{me}/role", {"role": "member"})
    assert response.status_code == 400 and "your own admin role" in response.get_data(as_text=True)
    assert admin_client.post(f"/admin/users/{me}/active", {"active": "0"}).status_code == 400
    assert admin_client.post(f"/admin/users/{member.id}/role", {"role": "owner"}).status_code == 400
    assert "Organization" in admin_client.get("/admin/users").get_data(as_text=True)


def test_api_keys_are_shown_once_work_with_the_api_and_can_be_revoked(
    session: Session, admin_client: AdminClient
) -> None:
    response = admin_client.post(
        "/admin/api-keys",
        {"name": "Violence Prevention Network widget", "allowed_origins": "https://vpn.example.org"},
    )
    assert response.status_code == 201
    page = response.get_data(as_text=True)
    row = session.scalars(select(ApiKey).where(ApiKey.name == "Violence Prevention Network widget")).one()
    secret = page.split('id="api-key-secret">', 1)[1].split("<", 1)[0]
    assert secret.startswith("cvi_") and secret not in row.key_hash
    assert api_keys.authenticate(session, secret).id == row.id
    assert row.allowed_origins == ["https://vpn.example.org"] and row.created_by_id == admin_client.user.id
    assert secret not in admin_client.get(f"/admin/api-keys/{row.id}").get_data(as_text=True)
    assert secret not in admin_client.get("/admin/api-keys").get_data(as_text=True)

    session.add(ApiKeyUsage(api_key_id=row.id, day=dt.datetime.now(dt.UTC).date(), count=37))
    session.commit()
    assert "<td>37</td>" in admin_client.get(f"/admin/api-keys/{row.id}").get_data(as_text=True)

    assert admin_client.post(f"/admin/api-keys/{row.id}/revoke", {"note": "partner left"}).status_code == 302
    with pytest.raises(api_keys.ApiKeyError, match="revoked"):
        api_keys.authenticate(session, secret)
    assert admin_client.post(f"/admin/api-keys/{row.id}/revoke").status_code == 400
    actions = session.scalars(select(AuditEvent.action).where(AuditEvent.target_type == "api_key")).all()
    assert actions == ["issue api key", "revoke api key"]
    assert admin_client.post("/admin/api-keys", {"name": ""}).status_code == 400
    assert admin_client.post("/admin/api-keys", {"name": "x", "rate_limit": "many"}).status_code == 400
    assert (
        admin_client.post("/admin/api-keys", {"name": "x", "allowed_origins": "not a url"}).status_code == 400
    )


def test_dashboard_counts(session: Session, admin_client: AdminClient, objects: dict[str, Any]) -> None:
    page = admin_client.get("/admin/").get_data(as_text=True)
    assert "All opportunities</dt><dd>1</dd>" in page
    assert "Emails failed</a></dt><dd>1</dd>" in page
    assert "grants_gov" in page and "partial" in page
