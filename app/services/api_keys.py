"""Partner API keys: issue, revoke, recognise, and admit a request (rate limit + usage count).

Keys are 256-bit random tokens, so a plain SHA-256 of the key is enough to store them safely
(no password stretching needed); a short public prefix finds the row without scanning.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from app.db import utcnow
from app.models import ApiKey, ApiKeyUsage
from app.services import ratelimit

log = logging.getLogger(__name__)

KEY_SCHEME = "cvi"
PREFIX_LENGTH = 10
RATE_WINDOW_SECONDS = 60


class ApiKeyError(ValueError):
    """A key that cannot be used (malformed, unknown, revoked) or bad input to issue one."""


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def normalize_origin(origin: str) -> str:
    """``https://Example.org/`` → ``https://example.org``; raises ApiKeyError when not an origin."""
    parts = urlsplit(origin.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/"):
        raise ApiKeyError(f"{origin!r} is not an origin like https://partner.example.org")
    if parts.query or parts.fragment or "@" in parts.netloc:
        raise ApiKeyError(f"{origin!r} is not an origin like https://partner.example.org")
    return f"{parts.scheme}://{parts.netloc.lower()}"


def create_key(
    session: Session,
    name: str,
    *,
    rate_limit_per_minute: int = 120,
    origins: list[str] | None = None,
    created_by_id: int | None = None,
) -> tuple[ApiKey, str]:
    """Issue a key; returns the row and the plaintext key (shown once, never stored)."""
    name = name.strip()
    if not name or len(name) > 200:
        raise ApiKeyError("a key needs a partner name of 1 to 200 characters")
    if not 1 <= rate_limit_per_minute <= 1_000_000:
        raise ApiKeyError("the rate limit must be between 1 and 1,000,000 requests per minute")
    allowed = list(dict.fromkeys(normalize_origin(o) for o in origins or []))
    while True:
        prefix = secrets.token_hex(PREFIX_LENGTH // 2)
        if session.scalar(select(ApiKey.id).where(ApiKey.prefix == prefix)) is None:
            break
    key = f"{KEY_SCHEME}_{prefix}_{secrets.token_urlsafe(32)}"
    row = ApiKey(
        name=name,
        prefix=prefix,
        key_hash=_digest(key),
        rate_limit_per_minute=rate_limit_per_minute,
        allowed_origins=allowed,
        created_by_id=created_by_id,
        request_count=0,
    )
    session.add(row)
    session.flush()
    log.info("api key created", extra={"api_key_id": row.id, "prefix": prefix, "partner": name})
    return row, key


def revoke_key(session: Session, prefix_or_key: str, *, now: dt.datetime | None = None) -> ApiKey:
    """Revoke by prefix (or the whole key); a revoked key is answered 401 from then on."""
    text = prefix_or_key.strip()
    prefix = _prefix_of(text) or text
    row = session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
    if row is None:
        raise ApiKeyError(f"no API key with prefix {prefix!r}")
    if row.revoked_at is None:
        row.revoked_at = now or utcnow()
        log.info("api key revoked", extra={"api_key_id": row.id, "prefix": prefix})
    return row


def _prefix_of(key: str) -> str | None:
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_SCHEME or len(parts[1]) != PREFIX_LENGTH:
        return None
    return parts[1]


def authenticate(session: Session, presented: str) -> ApiKey:
    """The active key matching ``presented``; raises ApiKeyError saying why not."""
    prefix = _prefix_of(presented.strip())
    if prefix is None:
        raise ApiKeyError("the X-API-Key header does not hold a key issued by this service")
    row = session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
    if row is None or not hmac.compare_digest(row.key_hash, _digest(presented.strip())):
        raise ApiKeyError("the API key is not recognised")
    if row.revoked_at is not None:
        raise ApiKeyError("the API key has been revoked")
    return row


def origin_registered(session: Session, origin: str) -> bool:
    """Whether any active key lists ``origin`` (preflight requests carry no key to look at)."""
    rows = session.scalars(select(ApiKey.allowed_origins).where(ApiKey.revoked_at.is_(None)))
    return any(origin in (origins or []) for origins in rows)


@dataclass(frozen=True)
class Admission:
    """The outcome of admitting one API request: who asked and what the rate limit says."""

    key: ApiKey | None
    decision: ratelimit.RateDecision


def admit(
    session: Session,
    *,
    key: ApiKey | None,
    client_ip: str,
    anonymous_limit: int,
    now: dt.datetime | None = None,
) -> Admission:
    """Count a request against its key's (or its IP's) per-minute budget and the key's usage.

    Everything happens in the caller's transaction, so one commit records both.
    """
    now = now or utcnow()
    if key is None:
        bucket, limit = f"api:ip:{client_ip}", anonymous_limit
    else:
        bucket, limit = f"api:key:{key.id}", key.rate_limit_per_minute
        record_use(session, key, now)
    decision = ratelimit.hit(session, bucket, limit=limit, window_seconds=RATE_WINDOW_SECONDS, now=now)
    return Admission(key, decision)


def record_use(session: Session, key: ApiKey, now: dt.datetime) -> None:
    """One more request for ``key``: today's usage row and the key's running total."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = insert(ApiKeyUsage).values(api_key_id=key.id, day=now.date(), count=1)
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["api_key_id", "day"], set_={"count": ApiKeyUsage.count + 1}
        )
    )
    session.execute(
        update(ApiKey)
        .where(ApiKey.id == key.id)
        .values(request_count=ApiKey.request_count + 1, last_used_at=now)
        .execution_options(synchronize_session=False)
    )


def usage(session: Session, key: ApiKey, *, days: int = 30) -> list[tuple[dt.date, int]]:
    """Requests per day for the last ``days`` days (days without requests are left out)."""
    since = utcnow().date() - dt.timedelta(days=days - 1)
    rows = session.execute(
        select(ApiKeyUsage.day, ApiKeyUsage.count)
        .where(ApiKeyUsage.api_key_id == key.id, ApiKeyUsage.day >= since)
        .order_by(ApiKeyUsage.day)
    ).all()
    return [(day, count) for day, count in rows]
