"""What the restart tests rely on, on either database: retried bookkeeping and jobs, abandoned runs."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
import time_machine
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from app import jobs
from app.db import retry_on_disconnect, utcnow
from app.models import CrawlError, CrawlRun, CrawlStatus, JobLock, JobOutcome, JobRun, Opportunity
from app.services import crawling
from tests.conftest import ROOT
from tests.crawlers.conftest import FakeServer, Seen, grants_gov_routes


def lost_connection() -> OperationalError:
    return OperationalError("SELECT 1", {}, Exception("server closed the connection unexpectedly"))


def test_bookkeeping_is_retried_while_the_database_is_unreachable(session: Session) -> None:
    attempts: list[int] = []
    pauses: list[float] = []

    def work() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise lost_connection()
        return "recorded"

    assert retry_on_disconnect(session, work, seconds=30, what="test", sleep=pauses.append) == "recorded"
    assert len(attempts) == 3 and pauses == [0.05, 0.1]


def test_other_errors_and_a_database_down_too_long_are_raised(session: Session) -> None:
    def duplicate() -> None:
        raise IntegrityError("INSERT", {}, Exception("duplicate key"))

    with pytest.raises(IntegrityError):
        retry_on_disconnect(session, duplicate, seconds=30, what="test", sleep=pytest.fail)

    def down() -> None:
        raise lost_connection()

    with pytest.raises(OperationalError):
        retry_on_disconnect(session, down, seconds=0, what="test", sleep=pytest.fail)


def _flaky_job(monkeypatch: pytest.MonkeyPatch, failures: int) -> list[int]:
    calls: list[int] = []

    def run(_app: Flask) -> str:
        calls.append(1)
        if len(calls) <= failures:
            raise RuntimeError(f"database restarting (call {len(calls)})")
        return "done"

    spec = jobs.JobSpec("flaky", "Fails, then works.", run, lambda c: jobs.cron("0 0 * * *", "UTC"))
    monkeypatch.setitem(jobs.JOBS, "flaky", spec)
    return calls


def test_a_failed_scheduled_run_is_recorded_and_retried(
    app: Flask, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _flaky_job(monkeypatch, failures=1)
    app.config.update(SCHEDULER_RETRIES=2, SCHEDULER_RETRY_SECONDS=7)
    waits: list[float] = []
    occurrence = dt.datetime(2026, 11, 2, 7, 0, tzinfo=dt.UTC)

    results = jobs.run_with_retries(app, "flaky", occurrence, wait=lambda s: bool(waits.append(s)))

    assert [r.outcome for r in results] == [JobOutcome.FAILED, JobOutcome.SUCCEEDED]
    assert len(calls) == 2 and waits == [7]
    first, retry = session.scalars(select(JobRun).order_by(JobRun.id)).all()
    assert first.scheduled_for == occurrence and "database restarting (call 1)" in (first.detail or "")
    assert retry.scheduled_for is None
    assert retry.detail == f"retry 1 of 2 of the run for {occurrence.isoformat()}\ndone"


def test_retries_stop_at_the_limit_or_when_the_scheduler_stops(
    app: Flask, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _flaky_job(monkeypatch, failures=10)
    app.config.update(SCHEDULER_RETRIES=2, SCHEDULER_RETRY_SECONDS=0)
    results = jobs.run_with_retries(app, "flaky", None, wait=lambda _s: False)
    assert [r.outcome for r in results] == [JobOutcome.FAILED] * 3 and len(calls) == 3

    stopping = jobs.run_with_retries(app, "flaky", None, wait=lambda _s: True)
    assert [r.outcome for r in stopping] == [JobOutcome.FAILED] and len(calls) == 4


def _running(session: Session, source: str, **lease: Any) -> CrawlRun:
    run = CrawlRun(source=source, mode="full", params={}, started_at=utcnow(), status=CrawlStatus.RUNNING)
    session.add(run)
    session.flush()
    if lease:
        session.add(JobLock(name=crawling.lease_name(run.id), acquired_at=utcnow(), **lease))
    session.commit()
    return run


def test_only_runs_whose_lease_is_gone_are_marked_abandoned(session: Session) -> None:
    now = utcnow()
    alive = _running(session, "grants_gov", holder="host:1:a", expires_at=now + dt.timedelta(minutes=1))
    expired = _running(session, "ojp", holder="host:2:b", expires_at=now - dt.timedelta(seconds=1))
    no_lease = _running(session, "dol_eta")

    assert sorted(crawling.mark_abandoned(session, now)) == sorted([expired.id, no_lease.id])

    session.expire_all()
    assert session.get(CrawlRun, alive.id).status == CrawlStatus.RUNNING  # type: ignore[union-attr]
    for run_id in (expired.id, no_lease.id):
        run = session.get(CrawlRun, run_id)
        assert run is not None and run.status == CrawlStatus.FAILED and run.finished_at == now
        (error,) = session.scalars(select(CrawlError).where(CrawlError.run_id == run_id)).all()
        assert error.kind == "abandoned" and "stopped, or lost the database" in error.message
    assert [lock.name for lock in session.scalars(select(JobLock))] == [crawling.lease_name(alive.id)]
    assert crawling.mark_abandoned(session, now) == []


def test_an_occurrence_the_database_could_not_record_is_still_claimed_by_the_retry(
    app: Flask, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    _flaky_job(monkeypatch, failures=0)
    app.config.update(SCHEDULER_RETRIES=1, SCHEDULER_RETRY_SECONDS=0)
    real = jobs.run_job
    claimed: list[dt.datetime | None] = []

    def run_job(app: Flask, name: str, scheduled_for: dt.datetime | None = None, **kwargs: Any) -> Any:
        claimed.append(scheduled_for)
        if len(claimed) == 1:
            raise lost_connection()  # down before the run could even be recorded
        return real(app, name, scheduled_for, **kwargs)

    monkeypatch.setattr(jobs, "run_job", run_job)
    occurrence = dt.datetime(2026, 11, 2, 7, 0, tzinfo=dt.UTC)
    results = jobs.run_with_retries(app, "flaky", occurrence, wait=lambda _s: False)

    assert [r.outcome for r in results] == [JobOutcome.FAILED, JobOutcome.SUCCEEDED]
    assert claimed == [occurrence, occurrence]
    (run,) = session.scalars(select(JobRun)).all()
    assert run.scheduled_for == occurrence and run.outcome == JobOutcome.SUCCEEDED


def test_a_crawl_whose_process_was_killed_is_marked_abandoned_by_the_next_run(
    app: Flask, session: Session, tmp_path: Path
) -> None:
    server = FakeServer()
    grants_gov_routes(server)
    detail = server.routes[("POST", "/v1/api/fetchOpportunity")]
    arrived, release = threading.Event(), threading.Event()

    def held(seen: Seen) -> Any:
        arrived.set()
        release.wait(60)
        return detail(seen)

    server.route("POST", "/v1/api/fetchOpportunity", handler=held)
    server.start()
    env = dict(
        os.environ,
        DATABASE_URL=app.config["DATABASE_URL"],
        SECRET_KEY="test-secret-key",
        INDEX_DIR=str(tmp_path / "index"),
        CRAWL_ARCHIVE_DIR=str(tmp_path / "archive"),
        GRANTS_GOV_API_URL=f"{server.url}/v1/api",
        SCHEDULER_LOCK_TTL_SECONDS="1",
    )
    command = [sys.executable, "-m", "flask", "--app", "wsgi", "crawl", "--source", "grants_gov"]
    try:
        with open(tmp_path / "crawl.log", "wb") as log:
            process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
            try:
                assert arrived.wait(120), (tmp_path / "crawl.log").read_text()[-2000:]
            finally:
                os.kill(process.pid, signal.SIGKILL)  # mid-run: its crawl_runs row says "running"
                process.wait(10)
        release.set()
        (killed,) = session.scalars(select(CrawlRun)).all()
        assert killed.status == CrawlStatus.RUNNING

        # Once the dead process's lease has run out, the next run marks its run failed, then crawls.
        server.route("POST", "/v1/api/fetchOpportunity", handler=detail)
        app.config.update(GRANTS_GOV_API_URL=f"{server.url}/v1/api", CRAWL_MIN_INTERVAL=0.0)
        database = app.extensions["database"]
        with time_machine.travel(utcnow() + dt.timedelta(seconds=2), tick=True):
            data = database.session_factory()
            try:
                ((_, outcome),) = crawling.run_crawl(
                    data, database.session_factory, app.config, ["grants_gov"]
                )
            finally:
                data.close()
    finally:
        release.set()
        server.stop()

    assert outcome.status == "succeeded", outcome.summary()
    session.expire_all()
    first, second = session.scalars(select(CrawlRun).order_by(CrawlRun.id)).all()
    assert first.status == CrawlStatus.FAILED and "abandoned" in (first.summary or "")
    assert second.status == CrawlStatus.SUCCEEDED and second.new == 5
    assert session.scalar(select(func.count()).select_from(Opportunity)) == 5
    assert session.scalars(select(JobLock)).all() == []
