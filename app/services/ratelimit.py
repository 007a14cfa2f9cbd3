"""Fixed-window rate limits counted in the database, so every worker process shares them."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from app.db import utcnow
from app.models import RateLimitCounter


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    limit: int
    remaining: int
    retry_after: int


def window_start(now: dt.datetime, window_seconds: int) -> dt.datetime:
    """The start of the fixed window ``now`` falls in."""
    epoch = int(now.timestamp())
    return dt.datetime.fromtimestamp(epoch - epoch % window_seconds, tz=dt.UTC)


def hit(
    session: Session,
    bucket: str,
    *,
    limit: int,
    window_seconds: int,
    now: dt.datetime | None = None,
    cost: int = 1,
) -> RateDecision:
    """Count one request in ``bucket`` and say whether it is within ``limit`` per window.

    The caller commits.
    """
    now = now or utcnow()
    start = window_start(now, window_seconds)
    used = claim(session, bucket, cost=cost, window_start=start)
    return RateDecision(used <= limit, limit, max(0, limit - used), retry_after(start, window_seconds, now))


def retry_after(start: dt.datetime, window_seconds: int, now: dt.datetime) -> int:
    """Whole seconds (at least 1) until the window that began at ``start`` ends."""
    return max(1, int((start + dt.timedelta(seconds=window_seconds) - now).total_seconds()))


def claim(session: Session, bucket: str, *, cost: int, window_start: dt.datetime) -> int:
    """Add ``cost`` to ``bucket``'s count for the window and return the new count.

    INSERT … ON CONFLICT DO UPDATE … RETURNING: concurrent workers never lose a count, and the new
    count comes back with the same statement (RETURNING: PostgreSQL, SQLite 3.35+).
    """
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = insert(RateLimitCounter).values(bucket=bucket[:200], window_start=window_start, count=cost)
    upsert = statement.on_conflict_do_update(
        index_elements=["bucket", "window_start"],
        set_={"count": RateLimitCounter.count + cost},
    ).returning(RateLimitCounter.count)
    return int(session.scalar(upsert) or 0)


def peek(session: Session, bucket: str, *, window_seconds: int, now: dt.datetime | None = None) -> int:
    """How many requests ``bucket`` has made in the current window (without counting one)."""
    now = now or utcnow()
    start = window_start(now, window_seconds)
    count = session.scalar(
        select(RateLimitCounter.count).where(
            RateLimitCounter.bucket == bucket[:200], RateLimitCounter.window_start == start
        )
    )
    return int(count or 0)


def prune(session: Session, *, older_than: dt.timedelta, now: dt.datetime | None = None) -> int:
    """Delete counters of windows that ended long ago (they only matter for the current window)."""
    from sqlalchemy import delete

    cutoff = (now or utcnow()) - older_than
    result = session.execute(delete(RateLimitCounter).where(RateLimitCounter.window_start < cutoff))
    return int(getattr(result, "rowcount", 0) or 0)
