"""The embeddable widget: its script, its data (/deadlines, with the state rule) and the demo page."""

from __future__ import annotations

from flask.testing import FlaskClient

from app.services.deadlines import states_named
from tests.api.conftest import assert_problem, days


def test_script_is_served_cacheable_and_never_uses_innerhtml(client: FlaskClient) -> None:
    response = client.get("/api/v1/widget.js")
    assert response.status_code == 200 and response.mimetype == "application/javascript"
    script = response.get_data(as_text=True)
    assert "innerHTML" not in script.replace("(never innerHTML)", "")
    assert "textContent" in script and "deadlines?" in script and "aria-live" in script
    assert (
        client.get("/api/v1/widget.js", headers={"If-None-Match": response.headers["ETag"]}).status_code
        == 304
    )


def test_demo_page_embeds_the_snippet(client: FlaskClient) -> None:
    page = client.get("/api/v1/widget-demo").get_data(as_text=True)
    assert '<script src="/api/v1/widget.js"' in page
    assert (
        "&lt;script src=&#34;http://testserver.local/api/v1/widget.js&#34;" in page
        or '&lt;script src="http://testserver.local/api/v1/widget.js"' in page
    )


def test_deadlines_soonest_first_by_department_and_state(
    client: FlaskClient, catalogue: dict[str, int]
) -> None:
    body = client.get("/api/v1/deadlines").get_json()
    assert [d["id"] for d in body["items"]] == [
        catalogue["dol"],
        catalogue["doj"],
        catalogue["hhs"],
        catalogue["ed"],
    ]
    first = body["items"][0]
    assert first["close_date"] == days(10) and first["days_left"] == 10 and first["department"] == "DOL"
    assert [d["id"] for d in client.get("/api/v1/deadlines?department=HHS,DOJ").get_json()["items"]] == [
        catalogue["doj"],
        catalogue["hhs"],
    ]
    # California: the national DOJ one and the HHS one naming California; not Texas-only DOL, not NY's ED.
    california = client.get("/api/v1/deadlines?state=ca").get_json()
    assert california["state"] == "CA"
    assert [d["id"] for d in california["items"]] == [catalogue["doj"], catalogue["hhs"]]
    texas = client.get("/api/v1/deadlines?state=TX&limit=1").get_json()
    assert [d["id"] for d in texas["items"]] == [catalogue["dol"]]
    assert_problem(client.get("/api/v1/deadlines?state=California"), 400, "state")
    assert_problem(client.get("/api/v1/deadlines?limit=50"), 400, "limit")


def test_state_rule() -> None:
    assert states_named("Nonprofits in West Virginia", {}) == {"WV"}
    assert states_named("Agencies in Washington, D.C. and Kansas", {}) == {"DC", "KS"}
    assert states_named("State, local and tribal governments", {}) == set()
    assert states_named(None, {"state": "ny", "note": "see Oregon"}) == {"NY", "OR"}
    assert states_named("Arkansas", {}) == {"AR"}
