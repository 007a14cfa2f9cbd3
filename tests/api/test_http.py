"""CORS for partner origins and preflight; ETag/If-None-Match and Cache-Control on listings."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import update
from sqlalchemy.orm import Session

from app.models import Opportunity
from tests.api.conftest import assert_problem

PARTNER = "https://partner.example.org"
STRANGER = "https://stranger.example.com"


def test_configured_origin_is_allowed_others_are_not(app: Flask, client: FlaskClient) -> None:
    app.config["CORS_ORIGINS"] = [PARTNER]
    allowed = client.get("/api/v1/agencies", headers={"Origin": PARTNER})
    assert allowed.headers["Access-Control-Allow-Origin"] == PARTNER
    assert "ETag" in allowed.headers["Access-Control-Expose-Headers"]
    assert "Origin" in allowed.headers["Vary"]
    denied = client.get("/api/v1/agencies", headers={"Origin": STRANGER})
    assert "Access-Control-Allow-Origin" not in denied.headers


def test_preflight_allowed_and_denied(app: Flask, client: FlaskClient) -> None:
    app.config["CORS_ORIGINS"] = [PARTNER]
    ask = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "x-api-key, content-type",
    }
    ok = client.options("/api/v1/match", headers={"Origin": PARTNER, **ask})
    assert ok.status_code == 204
    assert ok.headers["Access-Control-Allow-Origin"] == PARTNER
    assert "POST" in ok.headers["Access-Control-Allow-Methods"]
    assert "X-API-Key" in ok.headers["Access-Control-Allow-Headers"]
    assert_problem(client.options("/api/v1/match", headers={"Origin": STRANGER, **ask}), 403, "Origin")


def test_a_keys_own_origins(client: FlaskClient, make_key: Callable[..., Any]) -> None:
    _row, key = make_key(origins=[STRANGER])
    preflight = client.options(
        "/api/v1/agencies", headers={"Origin": STRANGER, "Access-Control-Request-Method": "GET"}
    )
    assert preflight.status_code == 204 and preflight.headers["Access-Control-Allow-Origin"] == STRANGER
    keyed = client.get("/api/v1/agencies", headers={"Origin": STRANGER, "X-API-Key": key})
    assert keyed.headers["Access-Control-Allow-Origin"] == STRANGER
    anonymous = client.get("/api/v1/agencies", headers={"Origin": STRANGER})
    assert "Access-Control-Allow-Origin" not in anonymous.headers


def test_widget_data_is_open_to_every_origin(client: FlaskClient) -> None:
    response = client.get("/api/v1/deadlines", headers={"Origin": STRANGER})
    assert response.headers["Access-Control-Allow-Origin"] == "*"


def test_etag_304_and_cache_control(client: FlaskClient, catalogue: dict[str, int]) -> None:
    first = client.get("/api/v1/opportunities?department=DOJ")
    etag = first.headers["ETag"]
    assert first.headers["Cache-Control"].startswith("public, max-age=")
    again = client.get("/api/v1/opportunities?department=DOJ", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.get_data() == b"" and again.headers["ETag"] == etag
    other = client.get("/api/v1/opportunities?department=HHS", headers={"If-None-Match": etag})
    assert other.status_code == 200 and other.headers["ETag"] != etag
    detail = client.get(f"/api/v1/opportunities/{catalogue['doj']}")
    assert (
        client.get(
            f"/api/v1/opportunities/{catalogue['doj']}", headers={"If-None-Match": detail.headers["ETag"]}
        ).status_code
        == 304
    )


def test_changed_data_gets_a_new_etag_once_the_cache_expires(
    app: Flask, client: FlaskClient, session: Session, catalogue: dict[str, int]
) -> None:
    app.config["API_CACHE_SECONDS"] = 0
    etag = client.get("/api/v1/opportunities").headers["ETag"]
    session.execute(update(Opportunity).where(Opportunity.id == catalogue["doj"]).values(title="Renamed"))
    session.commit()
    response = client.get("/api/v1/opportunities", headers={"If-None-Match": etag})
    assert response.status_code == 200 and response.headers["ETag"] != etag
