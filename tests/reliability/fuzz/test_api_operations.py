"""Property-based contract test: schemathesis reads /api/v1/openapi.json and calls every operation
with generated requests, valid (positive) and invalid (negative), signed with a partner API key; no
response may be a 5xx and every response must match the document (status, content type, headers,
body schema). Bounded and derandomized, so it is fast and gives the same result on every run.

Every ``/api/v1`` route of the Flask URL map must be a documented operation (or be listed in
``UNDOCUMENTED`` with a reason), so a new endpoint cannot escape the fuzzing by being left out of
the document.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from app.api import openapi, views  # noqa: F401  (importing views fills the operation registry)
from tests.api.conftest import PROFILE

#: API routes that are not operations of the document, and why.
UNDOCUMENTED = {
    "/api/v1/<path:rest>": "the catch-all that answers unknown API paths with a problem+json 404",
}

DOCUMENT = openapi.document()
CASES = [
    (method.upper(), path, mode)
    for path, ops in DOCUMENT["paths"].items()
    for method, op in ops.items()
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    # Negative data needs something to break: a parameter or a body.
    if mode == GenerationMode.POSITIVE or op["parameters"] or "requestBody" in op
]
#: Rules JSON Schema cannot state (close_from ≤ close_to, "page or cursor", a profile description of
#: a few real words, a cursor this API issued) make some schema-valid requests 400s, so the check that
#: every schema-valid request succeeds is left out; the others (no 5xx, statuses, content types,
#: headers, body schemas, invalid data rejected) all run.
EXCLUDED = [positive_data_acceptance]
EXAMPLES = 20


@pytest.fixture
def fuzz_key(roomy: Flask, catalogue: dict[str, int], make_key: Callable[..., Any]) -> str:
    _row, key = make_key("Fuzzer", rate_limit=1_000_000)
    return str(key)


@pytest.mark.parametrize(("method", "path", "mode"), CASES)
def test_every_operation_conforms(
    roomy: Flask, fuzz_key: str, method: str, path: str, mode: GenerationMode
) -> None:
    loaded = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", roomy)
    operation = loaded[path][method]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def check(case: Any) -> None:
        case.call_and_validate(headers={"X-API-Key": fuzz_key}, excluded_checks=EXCLUDED)

    check()


def test_every_api_route_is_a_documented_operation(app: Flask) -> None:
    documented = {(path, method.upper()) for path, ops in DOCUMENT["paths"].items() for method in ops}
    missing = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/") or rule.rule in UNDOCUMENTED:
            continue
        path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            if (path, method) not in documented:
                missing.append(f"{method} {rule.rule}")
    assert not missing, f"API routes missing from the OpenAPI document (not fuzzed): {missing}"


def test_unknown_api_paths_answer_with_a_problem(roomy: Flask, fuzz_key: str) -> None:
    """The one excluded route: whatever is asked of it, a 404 problem with a message."""
    client = roomy.test_client()
    for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
        response = client.open(
            "/api/v1/%00/../\u00e9t\u00e9?x=%ff", method=method, headers={"X-API-Key": fuzz_key}
        )
        assert response.status_code == 404
        assert response.mimetype == "application/problem+json"
        assert response.get_json()["detail"]


def test_a_real_profile_conforms_too(roomy: Flask, catalogue: dict[str, int], fuzz_key: str) -> None:
    """Generated profiles rarely look like real ones; this one exercises the ranked, explained path."""
    loaded = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", roomy)
    operation = loaded["/api/v1/match"]["POST"]
    case = operation.Case(body=PROFILE, query={"method": "keyword"}, media_type="application/json")
    response = case.call_and_validate(headers={"X-API-Key": fuzz_key})
    assert response.status_code == 200 and response.json()["items"]


def test_an_id_past_the_id_range_is_a_404_problem_naming_the_field(roomy: Flask, fuzz_key: str) -> None:
    """Regression (schemathesis on PostgreSQL): once the site's ``<int:…>`` ids were bounded, the
    API's ids past the range were refused by routing and answered in the site's JSON error shape;
    the API's id is unbounded again (its service checks the range) and names the field."""
    client = roomy.test_client()
    for opportunity_id in (2**31, 2356252017539737, 10**30):
        response = client.get(f"/api/v1/opportunities/{opportunity_id}", headers={"X-API-Key": fuzz_key})
        assert response.status_code == 404 and response.mimetype == "application/problem+json"
        assert [e["field"] for e in response.get_json()["errors"]] == ["opportunity_id"]
