"""Upcoming CVI deadlines for the partner widget, optionally for one department or one state.

The state rule, kept simple so a partner can predict it: an opportunity is relevant to a state when
its eligibility text or its extra source fields name that state (full name, e.g. "California", or a
``state``/``states`` field holding the two-letter code), or when they name no state at all — a
national opportunity. Two-letter codes inside free text are not read ("IN", "OR" and "ME" are words).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, load_only

from app.models import Opportunity, OpportunityStatus

STATES: dict[str, str] = {
    "AL": "Alabama", "AK": "Alaska", "AZ": "Arizona", "AR": "Arkansas", "CA": "California",
    "CO": "Colorado", "CT": "Connecticut", "DE": "Delaware", "DC": "District of Columbia",
    "FL": "Florida", "GA": "Georgia", "HI": "Hawaii", "ID": "Idaho", "IL": "Illinois", "IN": "Indiana",
    "IA": "Iowa", "KS": "Kansas", "KY": "Kentucky", "LA": "Louisiana", "ME": "Maine", "MD": "Maryland",
    "MA": "Massachusetts", "MI": "Michigan", "MN": "Minnesota", "MS": "Mississippi", "MO": "Missouri",
    "MT": "Montana", "NE": "Nebraska", "NV": "Nevada", "NH": "New Hampshire", "NJ": "New Jersey",
    "NM": "New Mexico", "NY": "New York", "NC": "North Carolina", "ND": "North Dakota", "OH": "Ohio",
    "OK": "Oklahoma", "OR": "Oregon", "PA": "Pennsylvania", "RI": "Rhode Island", "SC": "South Carolina",
    "SD": "South Dakota", "TN": "Tennessee", "TX": "Texas", "UT": "Utah", "VT": "Vermont",
    "VA": "Virginia", "WA": "Washington", "WV": "West Virginia", "WI": "Wisconsin", "WY": "Wyoming",
    "PR": "Puerto Rico", "GU": "Guam", "VI": "U.S. Virgin Islands", "AS": "American Samoa",
    "MP": "Northern Mariana Islands",
}  # fmt: skip

#: Names longest first, so "West Virginia" is read before "Virginia" and "Washington, D.C." before
#: "Washington".
_NAMES: list[tuple[str, str]] = sorted(
    [(name, code) for code, name in STATES.items()] + [("Washington, D.C.", "DC"), ("Washington DC", "DC")],
    key=lambda pair: -len(pair[0]),
)
_PATTERN = re.compile(
    r"\b(" + "|".join(re.escape(name).replace(r"\ ", r"\s+") for name, _ in _NAMES) + r")(?![\w.])",
    re.IGNORECASE,
)
_CODE_FOR_NAME = {re.sub(r"\s+", " ", name.lower()): code for name, code in _NAMES}
_STATE_KEYS = {"state", "states", "place_of_performance_state", "eligible_states"}
MAX_LIMIT = 20


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


def states_named(eligibility_text: str | None, extra: dict[str, Any] | None) -> set[str]:
    """Two-letter codes of the states this opportunity's eligibility text or extra fields name."""
    found: set[str] = set()
    texts = [eligibility_text or "", *_strings(extra or {})]
    for text in texts:
        for match in _PATTERN.finditer(text):
            found.add(_CODE_FOR_NAME[re.sub(r"\s+", " ", match.group(1).lower())])
    for key, value in (extra or {}).items():
        if key.lower() in _STATE_KEYS:
            for item in _strings(value):
                code = item.strip().upper()
                if code in STATES:
                    found.add(code)
    return found


def relevant_to_state(opportunity: Opportunity, state: str) -> bool:
    """National (no state named) or naming ``state``."""
    named = states_named(opportunity.eligible_applicants, opportunity.extra)
    return not named or state.upper() in named


def upcoming(
    session: Session,
    *,
    departments: list[str] | None = None,
    state: str | None = None,
    limit: int = 5,
    today: dt.date | None = None,
) -> list[Opportunity]:
    """Open or forecasted CVI-eligible opportunities with a close date from today, soonest first."""
    today = today or dt.date.today()
    query = (
        select(Opportunity)
        .options(
            load_only(
                Opportunity.id,
                Opportunity.title,
                Opportunity.number,
                Opportunity.department,
                Opportunity.sub_agency,
                Opportunity.agency_name,
                Opportunity.status,
                Opportunity.close_date,
                Opportunity.url,
                Opportunity.eligible_applicants,
                Opportunity.extra,
            )
        )
        .where(
            Opportunity.hidden.is_(False),
            Opportunity.merged_into_id.is_(None),
            Opportunity.cvi_eligible.is_(True),
            Opportunity.close_date >= today,
            Opportunity.status.in_([str(OpportunityStatus.POSTED), str(OpportunityStatus.FORECASTED)]),
        )
        .order_by(Opportunity.close_date, Opportunity.id)
    )
    if departments:
        query = query.where(Opportunity.department.in_([d.upper() for d in departments]))
    limit = max(1, min(limit, MAX_LIMIT))
    if not state:
        return list(session.scalars(query.limit(limit)))
    chosen: list[Opportunity] = []
    for opportunity in session.scalars(query.execution_options(yield_per=200)):
        if relevant_to_state(opportunity, state):
            chosen.append(opportunity)
            if len(chosen) >= limit:
                break
    return chosen
