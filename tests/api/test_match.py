"""POST /api/v1/match: a program profile in, ranked and explained opportunities out (key required)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask.testing import FlaskClient

from tests.api.conftest import PROFILE, assert_problem


def test_match_needs_a_key(client: FlaskClient, catalogue: dict[str, int]) -> None:
    assert_problem(client.post("/api/v1/match", json=PROFILE), 401, "X-API-Key")


def test_match_ranks_and_explains(
    client: FlaskClient, catalogue: dict[str, int], make_key: Callable[..., Any]
) -> None:
    _row, key = make_key()
    response = client.post("/api/v1/match?method=keyword&limit=3", json=PROFILE, headers={"X-API-Key": key})
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["profile_id"] == "oakland-ovp" and body["limit"] == 3
    assert 0 < len(body["items"]) <= 3
    returned = {m["opportunity"]["id"] for m in body["items"]}
    assert catalogue["nasa"] not in returned and catalogue["old"] not in returned
    first = body["items"][0]
    assert first["explanation"]["reason"]
    assert first["explanation"]["eligibility"]["verdict"] in {
        "eligible",
        "partner",
        "not eligible",
        "unknown",
    }
    scores = [m["score"] for m in body["items"]]
    assert scores == sorted(scores, reverse=True)


def test_match_body_errors_name_the_field(
    client: FlaskClient, catalogue: dict[str, int], make_key: Callable[..., Any]
) -> None:
    _row, key = make_key()
    headers = {"X-API-Key": key}
    bad_type = dict(PROFILE, org_type="space agency")
    assert_problem(client.post("/api/v1/match", json=bad_type, headers=headers), 400, "org_type")
    missing = {k: v for k, v in PROFILE.items() if k != "program_description"}
    assert_problem(client.post("/api/v1/match", json=missing, headers=headers), 400, "program_description")
    not_json = client.post(
        "/api/v1/match", data="{not json", headers=headers, content_type="application/json"
    )
    assert_problem(not_json, 400, "body")
    assert_problem(client.post("/api/v1/match", json=[1, 2], headers=headers), 400, "body")
    assert_problem(client.post("/api/v1/match", data="x=1", headers=headers), 415, "body")
    huge = dict(PROFILE, funding_need="x" * 70_000)
    assert_problem(client.post("/api/v1/match", json=huge, headers=headers), 413)
    assert_problem(client.post("/api/v1/match?limit=500", json=PROFILE, headers=headers), 400, "limit")
    bad_utf8 = client.post(
        "/api/v1/match", data=b'{"a": "\xff"}', headers=headers, content_type="application/json"
    )
    assert_problem(bad_utf8, 400, "body")


def test_match_refuses_control_characters(client: FlaskClient, make_key: Callable[..., Any]) -> None:
    _row, key = make_key()
    body = dict(PROFILE, focus_areas=["outreach", "a\u0000b"])
    assert_problem(client.post("/api/v1/match", json=body, headers={"X-API-Key": key}), 400, "focus_areas.1")
