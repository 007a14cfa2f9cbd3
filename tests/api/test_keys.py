"""API keys: issued by the CLI, stored hashed, required for /match, counted, limited, revoked."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import ApiKey, ApiKeyUsage
from tests.api.conftest import assert_problem


def test_create_api_key_prints_the_key_alone_and_stores_only_its_hash(
    cli: FlaskCliRunner, session: Session, client: FlaskClient
) -> None:
    result = cli.invoke(
        args=[
            "create-api-key",
            "--name",
            "Cure Violence Global",
            "--rate-limit",
            "300",
            "--origin",
            "https://Partner.example.org/",
        ]
    )
    assert result.exit_code == 0, result.output
    key = result.output.strip().splitlines()[-1]
    assert key.startswith("cvi_") and " " not in key
    row = session.scalars(select(ApiKey)).one()
    assert row.name == "Cure Violence Global" and row.rate_limit_per_minute == 300
    assert row.allowed_origins == ["https://partner.example.org"]
    assert row.key_hash == hashlib.sha256(key.encode()).hexdigest() and key not in row.key_hash
    assert client.get("/api/v1/opportunities", headers={"X-API-Key": key}).status_code == 200


def test_create_api_key_refuses_bad_input(cli: FlaskCliRunner) -> None:
    result = cli.invoke(args=["create-api-key", "--name", "P", "--origin", "partner.example.org"])
    assert result.exit_code != 0 and "is not an origin" in result.output
    result = cli.invoke(args=["create-api-key", "--name", "P", "--rate-limit", "0"])
    assert result.exit_code != 0 and "rate limit" in result.output


def test_usage_is_counted_per_key_and_day(
    client: FlaskClient, session: Session, make_key: Callable[..., Any]
) -> None:
    row, key = make_key()
    for _ in range(3):
        assert client.get("/api/v1/agencies", headers={"X-API-Key": key}).status_code == 200
    session.expire_all()
    refreshed = session.get(ApiKey, row.id)
    assert refreshed is not None
    assert refreshed.request_count == 3 and refreshed.last_used_at is not None
    usage = session.scalars(select(ApiKeyUsage)).one()
    assert usage.api_key_id == row.id and usage.count == 3


def test_unknown_malformed_and_revoked_keys_are_401(
    client: FlaskClient, cli: FlaskCliRunner, make_key: Callable[..., Any]
) -> None:
    row, key = make_key()
    assert_problem(client.get("/api/v1/agencies", headers={"X-API-Key": "nonsense"}), 401, "X-API-Key")
    forged = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
    assert_problem(client.get("/api/v1/agencies", headers={"X-API-Key": forged}), 401, "X-API-Key")
    result = cli.invoke(args=["revoke-api-key", row.prefix])
    assert result.exit_code == 0 and "revoked" in result.output
    body = assert_problem(client.get("/api/v1/agencies", headers={"X-API-Key": key}), 401, "X-API-Key")
    assert "revoked" in body["detail"]
    assert cli.invoke(args=["revoke-api-key", "nope"]).exit_code != 0


def test_per_key_rate_limit_answers_429_with_retry_after(
    client: FlaskClient, make_key: Callable[..., Any]
) -> None:
    _row, key = make_key(rate_limit=3)
    for n in range(3):
        response = client.get("/api/v1/agencies", headers={"X-API-Key": key})
        assert response.status_code == 200
        assert response.headers["X-RateLimit-Remaining"] == str(2 - n)
    limited = client.get("/api/v1/agencies", headers={"X-API-Key": key})
    assert_problem(limited, 429)
    assert 0 < int(limited.headers["Retry-After"]) <= 60
    # Another key has its own budget.
    _other, other_key = make_key("Other", rate_limit=3)
    assert client.get("/api/v1/agencies", headers={"X-API-Key": other_key}).status_code == 200


def test_anonymous_reads_are_limited_per_ip(app: Flask, client: FlaskClient) -> None:
    app.config["API_ANON_RATE_LIMIT"] = 2
    one = {"REMOTE_ADDR": "203.0.113.1"}
    assert client.get("/api/v1/agencies", environ_base=one).status_code == 200
    assert client.get("/api/v1/agencies", environ_base=one).status_code == 200
    limited = client.get("/api/v1/agencies", environ_base=one)
    assert_problem(limited, 429)
    assert "Retry-After" in limited.headers
    assert client.get("/api/v1/agencies", environ_base={"REMOTE_ADDR": "203.0.113.2"}).status_code == 200
    # Docs, the document and the widget script are never limited.
    for _ in range(3):
        assert client.get("/api/v1/openapi.json", environ_base=one).status_code == 200
