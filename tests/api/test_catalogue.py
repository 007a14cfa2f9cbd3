"""GET /api/v1/cvi-programs and /api/v1/agencies."""

from __future__ import annotations

import datetime as dt

from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from app.models import AssistanceListing, CviProgram
from tests.api.conftest import assert_problem


def test_cvi_programs_with_their_alns(client: FlaskClient, session: Session) -> None:
    program = CviProgram(
        slug="cvipi",
        name="Community Violence Intervention and Prevention Initiative",
        department="DOJ",
        sub_agency="BJA",
        summary="Funds CVI.",
        activities=["street outreach"],
        eligible_applicants="Local governments, nonprofits",
        how_cvi_fits="Directly.",
        source_url="https://bja.ojp.gov/program/cvipi",
        last_verified=dt.date(2026, 1, 5),
    )
    session.add(program)
    session.flush()
    session.add(
        AssistanceListing(number="16.045", title="CVIPI", department="DOJ", cvi_program_id=program.id)
    )
    session.add(
        CviProgram(
            slug="hvip",
            name="Hospital violence intervention",
            department="HHS",
            summary="s",
            activities=[],
            eligible_applicants="Hospitals",
            source_url="https://example.gov",
            last_verified=dt.date(2026, 1, 5),
        )
    )
    session.commit()
    body = client.get("/api/v1/cvi-programs").get_json()
    assert body["total"] == 2
    cvipi = body["items"][0]
    assert cvipi["slug"] == "cvipi" and cvipi["last_verified"] == "2026-01-05"
    assert cvipi["assistance_listings"] == [{"number": "16.045", "title": "CVIPI"}]
    only_hhs = client.get("/api/v1/cvi-programs?department=hhs").get_json()
    assert [p["slug"] for p in only_hhs["items"]] == ["hvip"]
    assert_problem(client.get("/api/v1/cvi-programs?dept=DOJ"), 400, "dept")


def test_agencies_with_counts(client: FlaskClient, catalogue: dict[str, int]) -> None:
    body = client.get("/api/v1/agencies").get_json()
    by_code = {a["code"]: a for a in body["items"]}
    assert by_code["USDOJ-OJP-BJA"]["department"] == "DOJ"
    assert by_code["USDOJ-OJP-BJA"]["opportunities"] == 2
    assert by_code["NASA"]["cvi_opportunities"] == 0 and by_code["NASA"]["opportunities"] == 1
    dol = client.get("/api/v1/agencies?department=DOL").get_json()
    assert [a["code"] for a in dol["items"]] == ["DOL-ETA"]
