"""Fixtures for the partner API tests: a small catalogue, keys, and a client that sends a key."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import update
from sqlalchemy.orm import Session

from app.models import Opportunity
from app.services import api_keys
from app.services.opportunities import upsert_many
from tests.factories import record

TODAY = dt.date.today()


def days(n: int) -> str:
    return (TODAY + dt.timedelta(days=n)).isoformat()


@pytest.fixture
def store(session: Session) -> Callable[..., list[int]]:
    """Upsert records and set their CVI eligibility (the admin override wins over the classifier)."""

    def add(*records: Any, cvi: bool = True) -> list[int]:
        result = upsert_many(session, list(records))
        session.commit()
        ids = result.new_ids + result.updated_ids
        session.execute(
            update(Opportunity).where(Opportunity.id.in_(ids)).values(cvi_override=cvi, cvi_eligible=cvi)
        )
        session.commit()
        return ids

    return add


@pytest.fixture
def catalogue(store: Callable[..., list[int]]) -> dict[str, int]:
    """Five CVI opportunities across departments and states, and one that is not CVI."""
    ids = store(
        record(
            id="doj",
            number="O-BJA-1",
            title="Community violence intervention site-based grants",
            close_date=days(20),
            award_floor=250_000,
            award_ceiling=2_000_000,
            eligible_applicants="Units of local government and nonprofits",
        ),
        record(
            id="hhs",
            number="HHS-1",
            agency="HHS",
            sub_agency="HHS-CDC",
            agency_name="CDC",
            title="Hospital violence intervention programs",
            close_date=days(40),
            aln=["93.136"],
            eligible_applicants="Hospitals in California, Oregon and Washington",
        ),
        record(
            id="dol",
            number="DOL-1",
            agency="DOL",
            sub_agency="DOL-ETA",
            agency_name="ETA",
            title="Reentry employment for young adults",
            close_date=days(10),
            aln=["17.270"],
            eligible_applicants="Nonprofits in Texas only",
        ),
        record(
            id="ed",
            number="ED-1",
            agency="ED",
            sub_agency="ED-OESE",
            agency_name="OESE",
            title="Full-service community schools",
            close_date=days(60),
            aln=["84.215J"],
            eligible_applicants="Local educational agencies",
            state="NY",
        ),
        record(
            id="old",
            number="O-BJA-0",
            title="Community violence intervention 2024",
            status="closed",
            close_date="2024-05-01",
            post_date="2024-01-10",
        ),
    )
    (noncvi,) = store(
        record(
            id="nasa",
            number="NASA-1",
            agency="NASA",
            sub_agency="NASA",
            agency_name="NASA",
            title="Heliophysics research",
            close_date=days(30),
        ),
        cvi=False,
    )
    names = ["doj", "hhs", "dol", "ed", "old"]
    return {**dict(zip(names, ids, strict=True)), "nasa": noncvi}


@pytest.fixture
def make_key(session: Session) -> Callable[..., tuple[Any, str]]:
    def issue(name: str = "Partner", *, rate_limit: int = 1000, origins: list[str] | None = None) -> Any:
        row, key = api_keys.create_key(session, name, rate_limit_per_minute=rate_limit, origins=origins)
        session.commit()
        return row, key

    return issue


@pytest.fixture
def roomy(app: Flask) -> Flask:
    """An app whose anonymous rate limit does not get in the way of a test making many requests."""
    app.config["API_ANON_RATE_LIMIT"] = 100_000
    return app


PROFILE = {
    "id": "oakland-ovp",
    "name": "Oakland street outreach",
    "org_type": "city government",
    "city": "Oakland",
    "state": "CA",
    "program_description": (
        "Street outreach and hospital-based violence intervention for young adults at the highest "
        "risk of gun violence, with life coaching and employment."
    ),
    "focus_areas": ["street outreach", "hospital-based violence intervention"],
    "populations": ["young adults"],
    "funding_need": "Outreach worker salaries",
    "budget_range": "$500,000 - $2,000,000",
}


def assert_problem(response: Any, status: int, field: str | None = None) -> dict[str, Any]:
    """The response is our one error shape with ``status`` (and names ``field`` when given)."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.get_json(force=True)
    assert set(body) == {"type", "title", "status", "detail", "errors"}
    assert body["status"] == status and body["title"] and body["detail"]
    if field is not None:
        assert field in [e["field"] for e in body["errors"]], body
    return dict(body)
