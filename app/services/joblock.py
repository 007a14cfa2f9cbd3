"""Run a job in one process only: a lease in ``job_locks`` and a claim per occurrence in ``job_runs``.

Two guards, for two different failures:
- **Occurrence claim.** A scheduled occurrence (job name + the time it was scheduled for) is
  claimed by inserting its ``job_runs`` row; the unique (name, scheduled_for) constraint lets exactly
  one of several scheduler processes firing the same occurrence insert it. The others log and stop.
  Without this, a second process firing a moment after the first finished would run it again.
- **Lease.** ``job_locks`` holds a row per job name; a process takes it with an atomic conditional
  UPDATE (free, or expired), and a heartbeat thread extends it while the job runs. A crashed
  holder's lease expires (``SCHEDULER_LOCK_TTL_SECONDS``), so nothing stays locked forever. This
  keeps a long run (a slow full crawl) from overlapping the next occurrence or a CLI ``run-job``.

Every attempt ends in ``job_runs`` with an outcome: succeeded, failed (with the error) or skipped
(with who held the lock). That last write waits for a restarting database (``database_wait``), so a
run interrupted by a database restart is recorded as failed instead of staying "running".
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import delete, or_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from app.db import retry_on_disconnect, utcnow
from app.models import JobLock, JobOutcome, JobRun

log = logging.getLogger(__name__)


class JobSkipped(Exception):
    """Raised by a job that has nothing it can do here (say, its module is not installed)."""


def make_holder() -> str:
    """Who holds a lock: host, process and a random part (two schedulers on one host differ)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _ensure_row(session: Session, name: str) -> None:
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    session.execute(insert(JobLock).values(name=name).on_conflict_do_nothing(index_elements=["name"]))


def acquire(
    session: Session, name: str, holder: str, ttl: dt.timedelta, now: dt.datetime | None = None
) -> bool:
    """Take the lease if it is free or expired; True when this holder has it. Commits."""
    now = now or utcnow()
    _ensure_row(session, name)
    result = session.execute(
        update(JobLock)
        .where(
            JobLock.name == name,
            or_(JobLock.holder.is_(None), JobLock.expires_at < now, JobLock.holder == holder),
        )
        .values(holder=holder, acquired_at=now, expires_at=now + ttl)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return getattr(result, "rowcount", 0) == 1


def renew(
    session: Session, name: str, holder: str, ttl: dt.timedelta, now: dt.datetime | None = None
) -> bool:
    """Extend our lease; False when it is no longer ours (it expired and someone else took it)."""
    now = now or utcnow()
    result = session.execute(
        update(JobLock)
        .where(JobLock.name == name, JobLock.holder == holder)
        .values(expires_at=now + ttl)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return getattr(result, "rowcount", 0) == 1


def release(session: Session, name: str, holder: str) -> None:
    session.execute(
        update(JobLock)
        .where(JobLock.name == name, JobLock.holder == holder)
        .values(holder=None, expires_at=None)
        .execution_options(synchronize_session=False)
    )
    session.commit()


def forget(session: Session, name: str, holder: str) -> None:
    """Drop our lease row altogether (a one-off lease, such as a crawl run's, is never taken again)."""
    session.execute(delete(JobLock).where(JobLock.name == name, JobLock.holder == holder))
    session.commit()


def current_holder(session: Session, name: str) -> str | None:
    lock = session.get(JobLock, name, populate_existing=True)
    return lock.holder if lock is not None else None


class Heartbeat:
    """Renews a lease every third of its TTL from its own thread and session while a job runs."""

    def __init__(self, factory: sessionmaker[Session], name: str, holder: str, ttl: dt.timedelta) -> None:
        self.factory, self.name, self.holder, self.ttl = factory, name, holder, ttl
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{name}", daemon=True)

    def _run(self) -> None:
        interval = max(self.ttl.total_seconds() / 3, 0.05)
        while not self._stop.wait(interval):
            with self.factory() as session:
                try:
                    if not renew(session, self.name, self.holder, self.ttl):
                        log.error("job lock lost", extra={"job": self.name, "holder": self.holder})
                        return
                except Exception:
                    log.exception("job lock renewal failed", extra={"job": self.name})

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


@dataclass
class RunResult:
    run_id: int | None
    outcome: JobOutcome | None
    detail: str | None

    @property
    def ran(self) -> bool:
        return self.outcome in (JobOutcome.SUCCEEDED, JobOutcome.FAILED)


def run_exclusive(
    factory: sessionmaker[Session],
    name: str,
    job: Callable[[], str | None],
    *,
    holder: str | None = None,
    ttl: dt.timedelta = dt.timedelta(minutes=5),
    scheduled_for: dt.datetime | None = None,
    note: str | None = None,
    database_wait: float = 30.0,
) -> RunResult:
    """Run ``job`` under the lease, recording the run; returns what happened.

    With ``scheduled_for`` the occurrence is claimed first: when another process already has it,
    nothing runs and nothing is recorded twice (``outcome`` None). ``note`` heads the recorded detail
    (a retry says which run it repeats).
    """
    holder = holder or make_holder()
    with factory() as session:
        run = JobRun(name=name, holder=holder, started_at=utcnow(), scheduled_for=scheduled_for)
        session.add(run)
        try:
            session.commit()
        except IntegrityError:
            session.rollback()
            log.info(
                "job occurrence already taken by another process",
                extra={"job": name, "scheduled_for": scheduled_for.isoformat() if scheduled_for else None},
            )
            return RunResult(None, None, None)
        run_id = run.id
        if not acquire(session, name, holder, ttl):
            why = f"skipped: {current_holder(session, name)} is still running {name}"
            _finish(session, run_id, JobOutcome.SKIPPED, why)
            log.warning("job skipped, lock held", extra={"job": name, "detail": why})
            return RunResult(run_id, JobOutcome.SKIPPED, why)
    outcome = JobOutcome.SUCCEEDED
    detail: str | None = None
    log.info("job started", extra={"job": name, "run_id": run_id, "holder": holder})
    try:
        with Heartbeat(factory, name, holder, ttl):
            detail = job()
    except JobSkipped as exc:
        outcome, detail = JobOutcome.SKIPPED, f"skipped: {exc}"
        log.warning("job skipped", extra={"job": name, "run_id": run_id, "detail": detail})
    except Exception as exc:
        outcome = JobOutcome.FAILED
        detail = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=8)}"
        log.exception("job failed", extra={"job": name, "run_id": run_id})
    finally:
        if note:
            detail = f"{note}\n{detail}" if detail else note
        with factory() as session:

            def record() -> None:
                _finish(session, run_id, outcome, detail)
                release(session, name, holder)

            retry_on_disconnect(session, record, seconds=database_wait, what=f"job {name} outcome")
    log.info("job finished", extra={"job": name, "run_id": run_id, "outcome": str(outcome)})
    return RunResult(run_id, outcome, detail)


def _finish(session: Session, run_id: int, outcome: JobOutcome, detail: str | None) -> None:
    session.execute(
        update(JobRun)
        .where(JobRun.id == run_id)
        .values(outcome=outcome, detail=(detail or "")[:8000] or None, finished_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    session.commit()
