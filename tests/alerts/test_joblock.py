"""The job lock: a lease with expiry, a claim per occurrence, and every run recorded with its outcome."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import time_machine
from apscheduler.triggers.cron import CronTrigger
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from app import jobs
from app.db import get_db
from app.models import JobOutcome, JobRun
from app.services import joblock
from tests.alerts.conftest import NOW

TTL = dt.timedelta(minutes=5)


def test_lease_is_exclusive_until_released_or_expired(app: Flask, session: Session) -> None:
    with time_machine.travel(NOW, tick=False):
        assert joblock.acquire(session, "crawl", "a", TTL)
        assert not joblock.acquire(session, "crawl", "b", TTL)
        assert joblock.acquire(session, "other-job", "b", TTL)  # locks are per job
        assert joblock.renew(session, "crawl", "a", TTL)
        assert not joblock.renew(session, "crawl", "b", TTL)
        joblock.release(session, "crawl", "b")  # not b's to release
        assert not joblock.acquire(session, "crawl", "b", TTL)
        joblock.release(session, "crawl", "a")
        assert joblock.acquire(session, "crawl", "b", TTL)
    with time_machine.travel(NOW + TTL + dt.timedelta(seconds=1), tick=False):
        # b crashed without releasing: its lease ran out and someone else may take over.
        assert joblock.acquire(session, "crawl", "c", TTL)
        assert joblock.current_holder(session, "crawl") == "c"


def test_run_exclusive_records_success_failure_and_skips(app: Flask, session: Session) -> None:
    factory = get_db().session_factory
    ok = joblock.run_exclusive(factory, "job", lambda: "did 3 things")
    assert ok.outcome == JobOutcome.SUCCEEDED and ok.detail == "did 3 things"

    def broken() -> str:
        raise RuntimeError("source answered 500")

    failed = joblock.run_exclusive(factory, "job", broken)
    assert failed.outcome == JobOutcome.FAILED and "source answered 500" in (failed.detail or "")

    def absent() -> str:
        raise joblock.JobSkipped("app.services.crawling is not installed")

    skipped = joblock.run_exclusive(factory, "job", absent)
    assert skipped.outcome == JobOutcome.SKIPPED

    assert joblock.acquire(session, "job", "someone-else", TTL)
    calls: list[int] = []
    held = joblock.run_exclusive(factory, "job", lambda: str(calls.append(1)))
    assert held.outcome == JobOutcome.SKIPPED and "someone-else" in (held.detail or "") and calls == []

    rows = session.scalars(select(JobRun).order_by(JobRun.id)).all()
    assert [r.outcome for r in rows] == ["succeeded", "failed", "skipped", "skipped"]
    assert all(r.finished_at is not None for r in rows)


def test_an_occurrence_runs_once_however_many_processes_fire_it(app: Flask, session: Session) -> None:
    factory = get_db().session_factory
    occurrence = dt.datetime(2026, 11, 2, 7, 0, tzinfo=dt.UTC)
    calls: list[str] = []
    first = joblock.run_exclusive(
        factory, "digests-daily", lambda: calls.append("a") or "a", scheduled_for=occurrence
    )
    second = joblock.run_exclusive(
        factory, "digests-daily", lambda: calls.append("b") or "b", scheduled_for=occurrence
    )
    assert first.outcome == JobOutcome.SUCCEEDED and second.outcome is None and calls == ["a"]
    nxt = joblock.run_exclusive(
        factory, "digests-daily", lambda: "next day", scheduled_for=occurrence + dt.timedelta(days=1)
    )
    assert nxt.outcome == JobOutcome.SUCCEEDED
    assert len(session.scalars(select(JobRun)).all()) == 2


def test_heartbeat_keeps_a_long_job_locked(app: Flask, session: Session) -> None:
    factory = get_db().session_factory
    seen: list[bool] = []

    def long_job() -> str:
        import time

        time.sleep(0.4)  # several heartbeats at a 0.3 s TTL
        with factory() as other:
            seen.append(joblock.acquire(other, "slow", "intruder", dt.timedelta(seconds=0.3)))
        return "done"

    result = joblock.run_exclusive(factory, "slow", long_job, ttl=dt.timedelta(seconds=0.3))
    assert result.outcome == JobOutcome.SUCCEEDED and seen == [False]


def test_latest_fire_time_names_the_same_occurrence_in_every_process() -> None:
    trigger = CronTrigger(hour=7, minute=0, timezone="America/New_York")
    fired = dt.datetime(2026, 11, 2, 12, 0, 3, 512000, tzinfo=dt.UTC)  # 07:00:03 in New York
    assert jobs.latest_fire_time(trigger, fired, dt.timedelta(minutes=16)) == dt.datetime(
        2026, 11, 2, 12, 0, tzinfo=dt.UTC
    )
    hourly = jobs.cron("5 * * * *", "UTC")
    assert jobs.latest_fire_time(
        hourly, dt.datetime(2026, 11, 2, 9, 6, tzinfo=dt.UTC), dt.timedelta(minutes=16)
    ) == (dt.datetime(2026, 11, 2, 9, 5, tzinfo=dt.UTC))
    assert str(jobs.cron("*/2 0 * * * *", "UTC")).startswith("cron[")
    with pytest.raises(ValueError, match="5 or 6 fields"):
        jobs.cron("every hour", "UTC")


def test_digest_trigger_uses_configured_time_zone_and_weekday(app: Flask) -> None:
    app.config.update(DIGEST_TIME="06:30", DIGEST_TIMEZONE="America/Chicago", DIGEST_WEEKDAY="fri")
    weekly = jobs.digest_trigger(app.config, weekly=True)
    after = dt.datetime(2026, 11, 2, tzinfo=dt.UTC)  # a Monday
    assert weekly.get_next_fire_time(None, after) == dt.datetime(2026, 11, 6, 12, 30, tzinfo=dt.UTC)
    app.config["DIGEST_TIME"] = "7 o'clock"
    with pytest.raises(ValueError, match="DIGEST_TIME"):
        jobs.digest_trigger(app.config, weekly=False)


def test_run_job_command_reports_outcomes(app: Flask, cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    absent = jobs.JobSpec(
        "outbox",
        "a job whose code is not installed",
        lambda app: str(jobs._required("app.services.not_installed", "run")()),
        jobs.JOBS["outbox"].trigger,
    )
    monkeypatch.setitem(jobs.JOBS, "outbox", absent)
    result = cli.invoke(args=["run-job", "outbox"])
    assert result.exit_code == 3 and "app.services.not_installed.run is not installed" in result.output
    monkeypatch.undo()
    result = cli.invoke(args=["run-job", "outbox"])
    assert result.exit_code == 0 and "outbox: succeeded" in result.output
    assert cli.invoke(args=["run-job", "nonsense"]).exit_code == 2


def test_crawl_job_runs_the_crawlers_and_records_a_failed_run_when_every_source_fails(
    app: Flask, session: Session
) -> None:
    from app.config import SOURCE_URL_DEFAULTS
    from app.models import CrawlRun
    from tests.alerts.conftest import free_port

    dead = f"http://127.0.0.1:{free_port()}"
    app.config.update({name: f"{dead}/{name.lower()}" for name in SOURCE_URL_DEFAULTS})
    app.config.update(CRAWL_MAX_RETRIES=0, CRAWL_MIN_INTERVAL=0, CRAWL_RESPECT_ROBOTS=False, CRAWL_TIMEOUT=2)
    result = jobs.run_job(app, "crawl-incremental")
    assert result.outcome == JobOutcome.FAILED and "every source failed" in (result.detail or "")
    runs = session.scalars(select(CrawlRun)).all()
    assert runs and all(r.mode == "incremental" and r.status == "failed" for r in runs)
    [job_run] = session.scalars(select(JobRun)).all()
    assert job_run.name == "crawl-incremental" and job_run.outcome == JobOutcome.FAILED
