"""The API meter: rate-limit budget leased in blocks per worker, usage written in batches, keys
remembered briefly — and the shared limit still holds across workers."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.api.gate import flush_usage
from app.models import ApiKey, ApiKeyUsage, RateLimitCounter
from app.services import api_keys, api_meter
from app.services.api_meter import ApiMeter, lease_size

NOW = dt.datetime(2026, 11, 21, 12, 0, 5, tzinfo=dt.UTC)


def counted(session: Session, bucket: str) -> int:
    session.expire_all()
    rows = session.scalars(select(RateLimitCounter.count).where(RateLimitCounter.bucket == bucket)).all()
    return sum(rows)


def admit(meter: ApiMeter, session: Session, bucket: str, limit: int, **kw: Any) -> bool:
    decision = meter.admit(
        session,
        bucket,
        limit=limit,
        window_seconds=60,
        key_id=kw.get("key_id"),
        now=kw.get("now", NOW),
        flush_seconds=kw.get("flush_seconds", 0),
    )
    session.commit()
    return decision.allowed


def test_lease_is_one_percent_of_the_limit_and_exact_for_small_limits() -> None:
    assert lease_size(30) == 1 and lease_size(199) == 1
    assert lease_size(1_000) == 10 and lease_size(60_000) == 600
    assert lease_size(1_000_000) == api_meter.MAX_LEASE


def test_a_worker_writes_once_per_lease_not_once_per_request(session: Session) -> None:
    meter = ApiMeter()
    assert admit(meter, session, "api:key:1", 1_000)
    assert counted(session, "api:key:1") == 10  # one claim of a 10-request block
    for _ in range(9):
        assert admit(meter, session, "api:key:1", 1_000)
    assert counted(session, "api:key:1") == 10  # answered from the block
    assert admit(meter, session, "api:key:1", 1_000)
    assert counted(session, "api:key:1") == 20


def test_small_limits_are_counted_exactly_and_remaining_is_reported(session: Session) -> None:
    meter = ApiMeter()
    remaining = []
    for _ in range(3):
        decision = meter.admit(
            session, "api:ip:1", limit=3, window_seconds=60, key_id=None, now=NOW, flush_seconds=0
        )
        remaining.append((decision.allowed, decision.remaining))
    assert remaining == [(True, 2), (True, 1), (True, 0)]
    assert not admit(meter, session, "api:ip:1", 3)
    assert counted(session, "api:ip:1") == 4


def test_two_workers_share_one_limit(session: Session) -> None:
    """Two processes' meters over one database never admit more than the limit in a window, and
    waste at most one block each."""
    workers = [ApiMeter(), ApiMeter()]
    limit = 900  # blocks of 9
    allowed = sum(admit(workers[n % 2], session, "api:key:7", limit) for n in range(1_200))
    assert limit - 2 * (lease_size(limit) - 1) <= allowed <= limit


def test_a_spent_window_is_refused_without_asking_the_database_again(session: Session) -> None:
    meter = ApiMeter()
    assert admit(meter, session, "api:key:2", 1)
    assert not admit(meter, session, "api:key:2", 1)
    before = counted(session, "api:key:2")
    for _ in range(5):
        assert not admit(meter, session, "api:key:2", 1)
    assert counted(session, "api:key:2") == before
    # The next window has a fresh budget.
    assert admit(meter, session, "api:key:2", 1, now=NOW + dt.timedelta(seconds=60))


def test_usage_is_written_in_batches_and_nothing_is_lost(
    session: Session, make_key: Callable[..., Any]
) -> None:
    row, _key = make_key(rate_limit=100_000)  # blocks of 1,000: one claim for all requests below
    meter = ApiMeter()
    for _ in range(25):
        assert admit(meter, session, f"api:key:{row.id}", 100_000, key_id=row.id, flush_seconds=60)
    session.expire_all()
    assert session.get(ApiKey, row.id).request_count == 1  # written with the lease claim
    assert meter.pending() == 24
    assert meter.flush(session) == 24
    session.commit()
    session.expire_all()
    refreshed = session.get(ApiKey, row.id)
    assert refreshed.request_count == 25 and refreshed.last_used_at is not None
    assert session.scalars(select(ApiKeyUsage.count)).one() == 25
    assert meter.pending() == 0


def test_a_failed_flush_keeps_the_counts_for_the_next(
    session: Session, make_key: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    row, _key = make_key(rate_limit=100_000)
    meter = ApiMeter()
    for _ in range(3):
        admit(meter, session, f"api:key:{row.id}", 100_000, key_id=row.id, flush_seconds=60)
    real = api_meter._write_usage

    def broken(*_args: Any) -> int:
        raise RuntimeError("database went away")

    monkeypatch.setattr(api_meter, "_write_usage", broken)
    with pytest.raises(RuntimeError):
        meter.flush(session)
    assert meter.pending() == 2
    monkeypatch.setattr(api_meter, "_write_usage", real)
    assert meter.flush(session) == 2


def test_usage_counted_in_memory_is_written_at_exit(
    app: Flask, client: FlaskClient, session: Session, make_key: Callable[..., Any]
) -> None:
    app.config["API_USAGE_FLUSH_SECONDS"] = 3600
    row, key = make_key(rate_limit=100_000)
    for _ in range(4):
        assert client.get("/api/v1/agencies", headers={"X-API-Key": key}).status_code == 200
    assert flush_usage(app) == 3
    session.expire_all()
    assert session.get(ApiKey, row.id).request_count == 4


def test_a_remembered_key_is_rechecked_after_max_age_and_forgotten_on_revoke(
    session: Session, make_key: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    row, key = make_key()
    clock = {"now": 1000.0}
    monkeypatch.setattr(api_keys.time, "monotonic", lambda: clock["now"])
    assert api_keys.authenticate(session, key, max_age=5).id == row.id
    # Revoked by another process: this one may keep answering for up to max_age seconds …
    session.execute(
        ApiKey.__table__.update().where(ApiKey.id == row.id).values(revoked_at=NOW)  # type: ignore[attr-defined]
    )
    session.commit()
    assert api_keys.authenticate(session, key, max_age=5).id == row.id
    clock["now"] += 6
    with pytest.raises(api_keys.ApiKeyError, match="revoked"):
        api_keys.authenticate(session, key, max_age=5)
    # A wrong secret with a remembered prefix is still refused.
    other, other_key = make_key("Other")
    assert api_keys.authenticate(session, other_key, max_age=5).id == other.id
    with pytest.raises(api_keys.ApiKeyError, match="not recognised"):
        api_keys.authenticate(session, other_key[:-2] + "xx", max_age=5)
    # Revoking in this process takes effect at once.
    api_keys.revoke_key(session, other.prefix)
    session.commit()
    with pytest.raises(api_keys.ApiKeyError, match="revoked"):
        api_keys.authenticate(session, other_key, max_age=5)
