"""Builders for test records."""

from __future__ import annotations

import datetime as dt
from typing import Any

from crawlers.normalize import NormalizedOpportunity

#: Default dates are relative to the day the suite runs, so a record stays open (not "closed" by the
#: calendar) and inside the matcher's default window whenever the tests run.
POST_DATE = dt.date.today() - dt.timedelta(days=60)
CLOSE_DATE = dt.date.today() + dt.timedelta(days=100)


def record(**overrides: Any) -> NormalizedOpportunity:
    data: dict[str, Any] = {
        "id": "opp-1",
        "source": "test",
        "number": "O-OJP-2026-0001",
        "title": "Community Violence Intervention Site-Based Grants",
        "agency": "DOJ",
        "sub_agency": "USDOJ-OJP-BJA",
        "agency_name": "Bureau of Justice Assistance",
        "aln": ["16.045"],
        "status": "posted",
        "post_date": POST_DATE.isoformat(),
        "close_date": CLOSE_DATE.isoformat(),
        "award_ceiling": 2_000_000,
        "eligibility_codes": ["01", "02", "12"],
        "funding_instruments": ["G"],
        "categories": ["LJL"],
        "description": (
            "Street outreach and hospital-based violence intervention in neighborhoods"
            " with the most shootings."
        ),
    }
    data.update(overrides)
    return NormalizedOpportunity.model_validate(data)
