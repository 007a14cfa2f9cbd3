"""GET /api/v1/opportunities and /opportunities/<id>: the site's search, paged, in the API's shapes."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import update
from sqlalchemy.orm import Session

from app.models import Opportunity
from app.services.opportunities import upsert_many
from tests.api.conftest import assert_problem, days
from tests.factories import record


def ids(response: Any) -> list[int]:
    return [item["id"] for item in response.get_json()["items"]]


def test_cvi_only_by_default_and_every_field_in_json_types(
    client: FlaskClient, catalogue: dict[str, int]
) -> None:
    response = client.get("/api/v1/opportunities?sort=close_date")
    assert response.status_code == 200
    body = response.get_json()
    assert catalogue["nasa"] not in ids(response)
    assert body["total"] == 5 and body["page"] == 1 and body["pages"] == 1 and body["next_cursor"] is None
    closes = [item["close_date"] for item in body["items"]]
    assert closes == ["2024-05-01", days(10), days(20), days(40), days(60)]  # ISO 8601 dates, soonest first
    doj = next(i for i in body["items"] if i["id"] == catalogue["doj"])
    assert doj["award_ceiling"] == 2_000_000 and isinstance(doj["award_floor"], int)  # numbers, not text
    assert doj["link"] == f"http://testserver.local/opportunities/{catalogue['doj']}"
    everything = client.get("/api/v1/opportunities?cvi_only=false").get_json()
    assert everything["total"] == 6


def test_lists_as_repeated_or_comma_separated(client: FlaskClient, catalogue: dict[str, int]) -> None:
    repeated = client.get("/api/v1/opportunities?department=HHS&department=dol")
    commas = client.get("/api/v1/opportunities?department=HHS,dol")
    assert sorted(ids(repeated)) == sorted(ids(commas)) == sorted([catalogue["hhs"], catalogue["dol"]])


def test_keyword_filters_and_sort(client: FlaskClient, catalogue: dict[str, int]) -> None:
    hits = client.get("/api/v1/opportunities?q=reentry+employment&status=posted").get_json()
    assert [i["id"] for i in hits["items"]] == [catalogue["dol"]]
    assert "reentry" in hits["items"][0]["matched_terms"]
    assert ids(client.get("/api/v1/opportunities?q=heliophysics")) == []  # not CVI
    assert ids(client.get("/api/v1/opportunities?q=heliophysics&cvi_only=false")) == [catalogue["nasa"]]
    soon = client.get("/api/v1/opportunities?closing_within=30&sort=close_date")
    assert ids(soon) == [catalogue["dol"], catalogue["doj"]]
    by_aln = client.get("/api/v1/opportunities?aln=93.136")
    assert ids(by_aln) == [catalogue["hhs"]]
    exact = client.get("/api/v1/opportunities?q=DOL-1").get_json()
    assert exact["exact_match_id"] == catalogue["dol"]


def test_page_numbers_and_cursor_walk_the_same_results(
    client: FlaskClient, catalogue: dict[str, int]
) -> None:
    by_page = [
        ids(client.get(f"/api/v1/opportunities?sort=close_date&per_page=2&page={n}")) for n in (1, 2, 3)
    ]
    first = client.get("/api/v1/opportunities?sort=close_date&per_page=2").get_json()
    walked = [[i["id"] for i in first["items"]]]
    cursor = first["next_cursor"]
    while cursor:
        page = client.get(f"/api/v1/opportunities?sort=close_date&per_page=2&cursor={cursor}").get_json()
        walked.append([i["id"] for i in page["items"]])
        cursor = page["next_cursor"]
    assert walked == by_page
    assert sum(len(p) for p in walked) == first["total"] == 5


def test_cursor_errors_name_the_field(client: FlaskClient, catalogue: dict[str, int]) -> None:
    cursor = client.get("/api/v1/opportunities?per_page=2").get_json()["next_cursor"]
    assert_problem(client.get(f"/api/v1/opportunities?per_page=3&cursor={cursor}"), 400, "cursor")
    assert_problem(client.get("/api/v1/opportunities?cursor=not-a-cursor!"), 400, "cursor")
    assert_problem(client.get(f"/api/v1/opportunities?per_page=2&page=2&cursor={cursor}"), 400, "page")


def test_bad_parameters_are_400_problems_naming_each_field(client: FlaskClient) -> None:
    body = assert_problem(client.get("/api/v1/opportunities?per_page=101&colour=red"), 400, "per_page")
    assert "colour" in [e["field"] for e in body["errors"]]
    assert_problem(client.get("/api/v1/opportunities?page=abc"), 400, "page")
    assert_problem(client.get("/api/v1/opportunities?close_from=31-12-2026"), 400, "close_from")
    assert_problem(client.get("/api/v1/opportunities?closing_within=5"), 400, "closing_within")
    assert_problem(client.get("/api/v1/opportunities?status=open"), 400, "status")
    assert_problem(client.get("/api/v1/opportunities?sort=title"), 400, "sort")
    assert_problem(client.get("/api/v1/opportunities?page=1&page=2"), 400, "page")
    assert_problem(client.get("/api/v1/opportunities?award_min=10&award_max=5"), 400, "award_min")


def test_detail_has_versions(client: FlaskClient, session: Session, catalogue: dict[str, int]) -> None:
    upsert_many(
        session,
        [
            record(
                id="doj",
                number="O-BJA-1",
                title="CVI site-based grants (amended)",
                close_date=days(25),
                award_floor=250_000,
                award_ceiling=2_000_000,
                eligible_applicants="Units of local government and nonprofits",
            )
        ],
    )
    session.commit()
    response = client.get(f"/api/v1/opportunities/{catalogue['doj']}")
    assert response.status_code == 200
    body = response.get_json()
    assert body["title"] == "CVI site-based grants (amended)"
    assert body["description"].startswith("Street outreach")
    assert len(body["versions"]) == 1
    version = body["versions"][0]
    assert set(version["changed_fields"]) == {"title", "close_date"}
    assert version["changes"]["close_date"] == {"old": days(20), "new": days(25)}
    assert "T" in version["changed_at"]  # ISO 8601 timestamp


def test_detail_404s(client: FlaskClient, session: Session, catalogue: dict[str, int]) -> None:
    session.execute(update(Opportunity).where(Opportunity.id == catalogue["ed"]).values(hidden=True))
    session.commit()
    assert_problem(client.get(f"/api/v1/opportunities/{catalogue['ed']}"), 404, "opportunity_id")
    assert_problem(client.get("/api/v1/opportunities/999999"), 404, "opportunity_id")
    assert_problem(client.get("/api/v1/opportunities/99999999999999999999999"), 404, "opportunity_id")
    assert_problem(client.get("/api/v1/opportunities/abc"), 404, "path")


def test_merged_opportunity_leads_to_the_survivor(
    client: FlaskClient, session: Session, catalogue: dict[str, int]
) -> None:
    session.execute(
        update(Opportunity).where(Opportunity.id == catalogue["old"]).values(merged_into_id=catalogue["doj"])
    )
    session.commit()
    assert client.get(f"/api/v1/opportunities/{catalogue['old']}").get_json()["id"] == catalogue["doj"]
