"""Partner API keys for admins: issue (the key is shown once), revoke, and read usage.

Only a SHA-256 hash of the key and its first characters (to recognise it in lists) are stored.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db import utcnow
from app.models import ApiKey, ApiKeyUsage, User
from app.services import audit

KEY_PREFIX = "cvi_"
PREFIX_LENGTH = 12
ORIGIN_PATTERN = re.compile(r"^https?://[A-Za-z0-9.-]+(:\d+)?$")


class ApiKeyError(ValueError):
    """An API key operation that cannot be done, with a message for the admin."""


def hash_key(key: str) -> str:
    """The stored form of a key (keys are long random strings, so a fast hash is enough)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class IssuedKey:
    api_key: ApiKey
    secret: str


def keys(session: Session) -> list[ApiKey]:
    return list(
        session.scalars(select(ApiKey).order_by(ApiKey.revoked_at.is_not(None), ApiKey.created_at.desc()))
    )


def issue(
    session: Session, actor: User, name: str, rate_limit: str | int | None, origins: str, note: str | None
) -> IssuedKey:
    name = " ".join(name.split())
    if not name or len(name) > 200:
        raise ApiKeyError("give the key a name of 1 to 200 characters (the partner and what it is for)")
    try:
        limit = int(rate_limit) if rate_limit not in (None, "") else 120
    except ValueError:
        raise ApiKeyError("the rate limit must be a whole number of requests per minute") from None
    if not 1 <= limit <= 100_000:
        raise ApiKeyError("the rate limit must be between 1 and 100000 requests per minute")
    allowed = [o.strip().rstrip("/") for o in re.split(r"[,\s]+", origins or "") if o.strip()]
    for origin in allowed:
        if not ORIGIN_PATTERN.match(origin):
            raise ApiKeyError(f"'{origin}' is not an origin like https://partner.example.org")
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    api_key = ApiKey(
        name=name,
        prefix=secret[:PREFIX_LENGTH],
        key_hash=hash_key(secret),
        rate_limit_per_minute=limit,
        allowed_origins=allowed,
        created_by_id=actor.id,
        created_at=utcnow(),
    )
    session.add(api_key)
    session.flush()
    audit.record(session, actor, "issue api key", "api_key", api_key.id, new=name, note=note)
    return IssuedKey(api_key, secret)


def revoke(session: Session, actor: User, key_id: int, note: str | None) -> ApiKey:
    api_key = session.get(ApiKey, key_id)
    if api_key is None:
        raise ApiKeyError(f"there is no API key #{key_id}")
    if api_key.revoked_at is not None:
        raise ApiKeyError(f"“{api_key.name}” is already revoked")
    api_key.revoked_at = utcnow()
    audit.record(
        session,
        actor,
        "revoke api key",
        "api_key",
        api_key.id,
        field="revoked_at",
        new=api_key.revoked_at,
        note=note,
    )
    return api_key


def usage(session: Session, key_id: int, days: int = 30, today: dt.date | None = None) -> list[ApiKeyUsage]:
    """Requests per day over the last ``days`` days, newest first."""
    since = (today or utcnow().date()) - dt.timedelta(days=days - 1)
    query = (
        select(ApiKeyUsage)
        .where(ApiKeyUsage.api_key_id == key_id, ApiKeyUsage.day >= since)
        .order_by(ApiKeyUsage.day.desc())
    )
    return list(session.scalars(query))
