"""Partner API keys: issue, revoke, recognise, and admit a request (rate limit + usage count).

Keys are 256-bit random tokens, so a plain SHA-256 of the key is enough to store them safely
(no password stretching needed); a short public prefix finds the row without scanning.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import re
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db import utcnow
from app.models import ApiKey, ApiKeyUsage
from app.services import ratelimit
from app.services.api_meter import ApiMeter

log = logging.getLogger(__name__)

KEY_SCHEME = "cvi"
PREFIX_LENGTH = 10
RATE_WINDOW_SECONDS = 60
_PREFIX = re.compile(rf"[0-9a-f]{{{PREFIX_LENGTH}}}")


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
    _recent.forget(row.prefix)
    if row.revoked_at is None:
        row.revoked_at = now or utcnow()
        log.info("api key revoked", extra={"api_key_id": row.id, "prefix": prefix})
    return row


def _prefix_of(key: str) -> str | None:
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_SCHEME or not _PREFIX.fullmatch(parts[1]):
        return None
    return parts[1]


@dataclass(frozen=True)
class ActiveKey:
    """What a request needs to know about the key it presented (a plain value, safe to cache)."""

    id: int
    prefix: str
    rate_limit_per_minute: int
    allowed_origins: tuple[str, ...]


@dataclass(frozen=True)
class _Known:
    expires: float
    key_hash: str | None  # None: no key has this prefix
    key: ActiveKey | None  # None: revoked


class _KeyCache:
    """Keys recently looked up, by prefix, so a busy partner's requests skip the key query."""

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._entries: OrderedDict[str, _Known] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, prefix: str) -> _Known | None:
        with self._lock:
            known = self._entries.get(prefix)
            if known is None or known.expires < time.monotonic():
                return None
            return known

    def put(self, prefix: str, known: _Known) -> None:
        with self._lock:
            self._entries[prefix] = known
            self._entries.move_to_end(prefix)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def forget(self, prefix: str) -> None:
        with self._lock:
            self._entries.pop(prefix, None)


_recent = _KeyCache()


def authenticate(session: Session, presented: str, *, max_age: float = 0) -> ActiveKey:
    """The active key matching ``presented``; raises ApiKeyError saying why not.

    With ``max_age`` the answer may come from this process's memory of the last lookup of the same
    key prefix, at most that many seconds old: a revocation made by another process takes effect
    within ``max_age`` seconds (at once in the process that revoked it).
    """
    text = presented.strip()
    prefix = _prefix_of(text)
    if prefix is None:
        raise ApiKeyError("the X-API-Key header does not hold a key issued by this service")
    known = _recent.get(prefix) if max_age > 0 else None
    if known is None:
        row = session.execute(
            select(
                ApiKey.id,
                ApiKey.key_hash,
                ApiKey.rate_limit_per_minute,
                ApiKey.allowed_origins,
                ApiKey.revoked_at,
            ).where(ApiKey.prefix == prefix)
        ).first()
        if row is None:
            known = _Known(time.monotonic() + max_age, None, None)
        else:
            key_id, key_hash, limit, origins, revoked_at = row
            active = (
                None if revoked_at is not None else ActiveKey(key_id, prefix, limit, tuple(origins or ()))
            )
            known = _Known(time.monotonic() + max_age, key_hash, active)
        if max_age > 0:
            _recent.put(prefix, known)
    if known.key_hash is None or not hmac.compare_digest(known.key_hash, _digest(text)):
        raise ApiKeyError("the API key is not recognised")
    if known.key is None:
        raise ApiKeyError("the API key has been revoked")
    return known.key


def origin_registered(session: Session, origin: str) -> bool:
    """Whether any active key lists ``origin`` (preflight requests carry no key to look at)."""
    rows = session.scalars(select(ApiKey.allowed_origins).where(ApiKey.revoked_at.is_(None)))
    return any(origin in (origins or []) for origins in rows)


@dataclass(frozen=True)
class Admission:
    """The outcome of admitting one API request: who asked and what the rate limit says."""

    key: ActiveKey | None
    decision: ratelimit.RateDecision


def admit(
    session: Session,
    meter: ApiMeter,
    *,
    key: ActiveKey | None,
    client_ip: str,
    anonymous_limit: int,
    flush_seconds: float = 0,
    now: dt.datetime | None = None,
) -> Admission:
    """Count a request against its key's (or its IP's) per-minute budget and the key's usage.

    Whatever must be written goes into the caller's transaction; see ``api_meter`` for when that is.
    """
    now = now or utcnow()
    if key is None:
        bucket, limit = f"api:ip:{client_ip}", anonymous_limit
    else:
        bucket, limit = f"api:key:{key.id}", key.rate_limit_per_minute
    decision = meter.admit(
        session,
        bucket,
        limit=limit,
        window_seconds=RATE_WINDOW_SECONDS,
        key_id=key.id if key else None,
        now=now,
        flush_seconds=flush_seconds,
    )
    return Admission(key, decision)


def usage(session: Session, key: ApiKey, *, days: int = 30) -> list[tuple[dt.date, int]]:
    """Requests per day for the last ``days`` days (days without requests are left out)."""
    since = utcnow().date() - dt.timedelta(days=days - 1)
    rows = session.execute(
        select(ApiKeyUsage.day, ApiKeyUsage.count)
        .where(ApiKeyUsage.api_key_id == key.id, ApiKeyUsage.day >= since)
        .order_by(ApiKeyUsage.day)
    ).all()
    return [(day, count) for day, count in rows]
