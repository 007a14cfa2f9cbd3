"""Database rate-limit counters shared by every worker."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from app.services.ratelimit import hit, peek

NOW = dt.datetime(2026, 11, 21, 10, 0, 30, tzinfo=dt.UTC)


def test_allows_up_to_the_limit_then_refuses_with_retry_after(session: Session) -> None:
    decisions = [hit(session, "sign-in:1.2.3.4", limit=3, window_seconds=60, now=NOW) for _ in range(4)]
    session.commit()
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert decisions[-1].remaining == 0
    assert decisions[-1].retry_after == 30
    assert peek(session, "sign-in:1.2.3.4", window_seconds=60, now=NOW) == 4


def test_a_new_window_starts_fresh_and_buckets_are_separate(session: Session) -> None:
    for _ in range(3):
        hit(session, "k", limit=2, window_seconds=60, now=NOW)
    assert hit(session, "other", limit=2, window_seconds=60, now=NOW).allowed
    later = NOW + dt.timedelta(seconds=60)
    assert hit(session, "k", limit=2, window_seconds=60, now=later).allowed
