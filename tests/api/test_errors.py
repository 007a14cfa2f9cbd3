"""One error shape for every 4xx under /api/v1: unknown paths, wrong methods, bad bodies."""

from __future__ import annotations

from flask.testing import FlaskClient

from tests.api.conftest import assert_problem


def test_unknown_path_is_a_problem_not_the_site_404(client: FlaskClient) -> None:
    assert_problem(client.get("/api/v1/no-such-thing"), 404, "path")
    assert_problem(client.post("/api/v1/no/such/thing", json={}), 404, "path")


def test_wrong_method_is_405_with_allow(client: FlaskClient) -> None:
    response = client.delete("/api/v1/opportunities")
    assert_problem(response, 405, "method")
    assert "GET" in response.headers["Allow"]
    assert_problem(client.get("/api/v1/match"), 405, "method")


def test_unknown_parameter_on_an_operation_without_parameters(client: FlaskClient) -> None:
    assert_problem(client.get("/api/v1/?x=1"), 400, "x")


def test_index_links(client: FlaskClient) -> None:
    body = client.get("/api/v1/").get_json()
    assert body["openapi"] == "/api/v1/openapi.json" and body["docs"] == "/api/v1/docs"


def test_control_characters_are_400_not_500(client: FlaskClient) -> None:
    assert_problem(client.get("/api/v1/opportunities?eligibility=%00x"), 400, "eligibility")
    assert_problem(client.get("/api/v1/agencies?department=D%00J"), 400, "department")
    bad_key = {"X-API-Key": "cvi_0000000000_x"}
    assert_problem(client.get("/api/v1/agencies", headers=bad_key), 401, "X-API-Key")
