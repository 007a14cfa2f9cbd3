"""Per-process metering of API requests: rate-limit budget leased in blocks, usage counted in batches.

The shared truth stays in the database (``rate_limit_counters``, ``api_key_usage``, the key's
``request_count``), so every worker process enforces the same per-minute limit. What changes is
how often a request has to write it:

* **Leases.** A worker claims a block of a bucket's per-minute budget with one
  ``INSERT … ON CONFLICT … RETURNING`` and answers the next requests of that bucket from the block
  without touching the database. A block is at most 1 % of the limit (and at most
  ``MAX_LEASE``), so budgets under 200 requests a minute are still counted one request per write,
  exactly; a busy key wastes at most one unused block per worker per minute. Once the database says
  the window is spent, the worker refuses that bucket until the window ends without asking again.
* **Usage.** Requests per key and day, the key's running total and ``last_used_at`` are summed in
  memory and written with the next lease claim or when ``flush_seconds`` have passed (and at exit),
  so the admin's usage figures lag by at most that long.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import case, or_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from app.models import ApiKey, ApiKeyUsage
from app.services import ratelimit

#: A worker never leases more than this many requests of one bucket at once.
MAX_LEASE = 1000
#: Share of a bucket's limit one lease may take.
LEASE_SHARE = 0.01


def lease_size(limit: int) -> int:
    """How many requests one claim reserves: 1 % of the limit, at least 1, at most ``MAX_LEASE``."""
    return max(1, min(MAX_LEASE, int(limit * LEASE_SHARE)))


@dataclass
class _Lease:
    window_start: dt.datetime
    tokens: int = 0
    counted: int = 0  # the bucket's count in the database after this worker's last claim
    spent: bool = False  # the database said the window's budget is gone


@dataclass
class _Pending:
    by_day: defaultdict[dt.date, int]
    last_used_at: dt.datetime


class ApiMeter:
    """One per process (see ``app.api.gate``); thread-safe for threaded servers."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._leases: dict[str, _Lease] = {}
        self._pending: dict[int, _Pending] = {}
        self._last_flush = time.monotonic()

    def admit(
        self,
        session: Session,
        bucket: str,
        *,
        limit: int,
        window_seconds: int,
        key_id: int | None,
        now: dt.datetime,
        flush_seconds: float,
    ) -> ratelimit.RateDecision:
        """Take one request from ``bucket``'s budget and count it for ``key_id``; the caller commits.

        Writes to the database only when the worker's lease is used up (or the budget changed) or
        usage is due to be flushed.
        """
        start = ratelimit.window_start(now, window_seconds)
        retry_after = ratelimit.retry_after(start, window_seconds, now)
        with self._lock:
            if key_id is not None:
                self._count_use(key_id, now)
            lease = self._leases.get(bucket)
            if lease is None or lease.window_start != start:
                lease = self._leases[bucket] = _Lease(start)
                self._forget_old_windows(start)
            if lease.tokens > 0:
                lease.tokens -= 1
                remaining = max(0, limit - lease.counted) + lease.tokens
                decision = ratelimit.RateDecision(True, limit, min(limit, remaining), retry_after)
                due = flush_seconds <= 0 or time.monotonic() - self._last_flush >= flush_seconds
                claim = 0
            elif lease.spent:
                return ratelimit.RateDecision(False, limit, 0, retry_after)
            else:
                claim = lease_size(limit)
                due = True
        if due:
            self.flush(session)
        if claim == 0:
            return decision
        counted = ratelimit.claim(session, bucket, cost=claim, window_start=start)
        granted = max(0, min(claim, limit - (counted - claim)))
        with self._lock:
            lease = self._leases.setdefault(bucket, _Lease(start))
            if lease.window_start == start:
                lease.counted = max(lease.counted, counted)
                if granted == 0:
                    lease.spent = True
                else:
                    lease.tokens += granted - 1
            remaining = max(0, limit - counted) + max(0, granted - 1)
        return ratelimit.RateDecision(granted > 0, limit, min(limit, remaining), retry_after)

    def _count_use(self, key_id: int, now: dt.datetime, count: int = 1, day: dt.date | None = None) -> None:
        pending = self._pending.get(key_id)
        if pending is None:
            pending = self._pending[key_id] = _Pending(defaultdict(int), now)
        pending.by_day[day or now.date()] += count
        pending.last_used_at = max(pending.last_used_at, now)

    def _forget_old_windows(self, current: dt.datetime) -> None:
        stale = [b for b, lease in self._leases.items() if lease.window_start < current]
        for bucket in stale:
            del self._leases[bucket]

    def flush(self, session: Session) -> int:
        """Write the usage counted since the last flush (in the caller's transaction); returns how
        many requests were written."""
        with self._lock:
            pending, self._pending = self._pending, {}
            self._last_flush = time.monotonic()
        try:
            return _write_usage(session, pending)
        except Exception:
            with self._lock:  # keep the counts for the next flush rather than lose them
                for key_id, use in pending.items():
                    for day, count in use.by_day.items():
                        self._count_use(key_id, use.last_used_at, count, day)
            raise

    def pending(self) -> int:
        """Requests counted but not yet written."""
        with self._lock:
            return sum(sum(p.by_day.values()) for p in self._pending.values())


def _write_usage(session: Session, pending: dict[int, _Pending]) -> int:
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    written = 0
    for key_id, use in sorted(pending.items()):
        for day, count in sorted(use.by_day.items()):
            statement = insert(ApiKeyUsage).values(api_key_id=key_id, day=day, count=count)
            session.execute(
                statement.on_conflict_do_update(
                    index_elements=["api_key_id", "day"], set_={"count": ApiKeyUsage.count + count}
                )
            )
            written += count
        seen = use.last_used_at
        session.execute(
            update(ApiKey)
            .where(ApiKey.id == key_id)
            .values(
                request_count=ApiKey.request_count + sum(use.by_day.values()),
                # Another worker may have written a later time already.
                last_used_at=case(
                    (or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at < seen), seen),
                    else_=ApiKey.last_used_at,
                ),
            )
            .execution_options(synchronize_session=False)
        )
    return written
