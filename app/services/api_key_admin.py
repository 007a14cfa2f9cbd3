"""Partner API keys for admins: issue (the key is shown once), revoke, and read usage, all audited.

Keys are made, hashed and recognised by ``services.api_keys`` (the API's own service), so a key
issued here is exactly what the API accepts; this module adds form parsing and the audit trail.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import ApiKey, User
from app.services import api_keys, audit
from app.services.api_keys import ApiKeyError

__all__ = ["ApiKeyError", "IssuedKey", "issue", "keys", "revoke", "usage"]


@dataclass(frozen=True)
class IssuedKey:
    api_key: ApiKey
    secret: str


def keys(session: Session) -> list[ApiKey]:
    """Active keys first, newest first."""
    query = select(ApiKey).order_by(ApiKey.revoked_at.is_not(None), ApiKey.created_at.desc())
    return list(session.scalars(query))


def issue(
    session: Session, actor: User, name: str, rate_limit: str | None, origins: str, note: str | None
) -> IssuedKey:
    try:
        limit = int(rate_limit) if rate_limit else 120
    except ValueError:
        raise ApiKeyError("the rate limit must be a whole number of requests per minute") from None
    allowed = [o for o in re.split(r"[,\s]+", origins or "") if o.strip()]
    row, secret = api_keys.create_key(
        session, " ".join(name.split()), rate_limit_per_minute=limit, origins=allowed, created_by_id=actor.id
    )
    audit.record(
        session,
        actor,
        "issue api key",
        "api_key",
        row.id,
        new={
            "name": row.name,
            "prefix": row.prefix,
            "rate_limit_per_minute": limit,
            "origins": row.allowed_origins,
        },
        note=note,
    )
    return IssuedKey(row, secret)


def revoke(session: Session, actor: User, key_id: int, note: str | None) -> ApiKey:
    row = session.get(ApiKey, key_id)
    if row is None:
        raise ApiKeyError(f"there is no API key #{key_id}")
    if row.revoked_at is not None:
        raise ApiKeyError(f"“{row.name}” is already revoked")
    api_keys.revoke_key(session, row.prefix)
    audit.record(
        session, actor, "revoke api key", "api_key", row.id, field="revoked_at", new=row.revoked_at, note=note
    )
    return row


def usage(session: Session, key: ApiKey, days: int = 30) -> list[tuple[dt.date, int]]:
    """Requests per day over the last ``days`` days (from the API's own usage counts)."""
    return api_keys.usage(session, key, days=days)
