"""Does a normalized record fit the store? The check PostgreSQL would make, made without a database.

SQLite stores an over-long string or a 20-digit number without complaint; PostgreSQL refuses the
whole batch (and with it every good record in it). So a parser's output is held against the
``opportunities`` columns it becomes: string lengths, integer ranges, no NUL characters.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import BigInteger, Integer, String

from app.models import Opportunity
from app.services.opportunities import new_row_values
from crawlers.normalize import NormalizedOpportunity

INT_LIMITS = {BigInteger: 2**63 - 1, Integer: 2**31 - 1}


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple):
        return [s for item in value for s in _strings(item)]
    if isinstance(value, dict):
        return [s for item in value.values() for s in _strings(item)]
    return []


def misfits(record: NormalizedOpportunity) -> list[str]:
    """What in ``record`` the store would refuse (empty when it fits)."""
    values = new_row_values(record, "0" * 64, dt.date(2026, 12, 1))
    columns = Opportunity.__table__.columns
    problems = []
    for name, value in values.items():
        if value is None or name not in columns:
            continue
        kind = columns[name].type
        if any("\x00" in text for text in _strings(value)):
            problems.append(f"{name} holds a NUL character")
        if isinstance(kind, String) and kind.length and isinstance(value, str) and len(value) > kind.length:
            problems.append(f"{name} is {len(value)} characters, the column holds {kind.length}")
        for int_type, limit in INT_LIMITS.items():
            if type(kind) is int_type and isinstance(value, int) and not -limit - 1 <= value <= limit:
                problems.append(f"{name} = {value} is out of the column's range")
    return problems
