"""PostgreSQL restarted (or stopped) in the middle of a crawl and of a digest run.

Each test has a private cluster (``conftest.PrivateCluster``) and restarts it at a fixed point of the
work: from the crawl sink after a batch is written but before it commits, from the outbox after a
digest is queued but before its commit, from the SMTP server after it accepted the Nth message. No
sleeps decide the outcome; the server is down or back when the hook returns.

What must hold: the store is whole (every opportunity complete, with its codes and versions, and
equal to an uninterrupted crawl of the same recorded source), every crawl run ends with its outcome
recorded, a rerun stores everything exactly once, and every user receives exactly one digest.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import time_machine
from aiosmtpd.controller import Controller
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app import create_app, jobs
from app.db import utcnow
from app.models import (
    CrawlError,
    CrawlRun,
    EmailOutbox,
    JobLock,
    JobOutcome,
    JobRun,
    Opportunity,
    OpportunityCode,
    OpportunityVersion,
    Organization,
)
from app.services import crawling, outbox
from app.services.accounts import create_user
from bench.stack import free_port
from tests.alerts.conftest import Recorder, add_opportunity, subscribe_search
from tests.crawlers.conftest import FIXTURES, FakeServer, grants_gov_routes
from tests.reliability.conftest import PrivateCluster, needs_postgres

pytestmark = needs_postgres

#: The recorded Grants.gov source: the records with a detail response are the ones stored.
RECORDED = sorted(p.stem.split("_", 1)[1] for p in (FIXTURES / "grants_gov").glob("fetchOpportunity_*.json"))
USERS = 4


@pytest.fixture
def make_app(private_pg: PrivateCluster, tmp_path: Path) -> Iterator[Callable[..., Flask]]:
    """Apps on fresh databases of the private cluster (dropped afterwards, the server up again)."""
    made: list[Flask] = []

    def make(**config: Any) -> Flask:
        url = private_pg.create_database()
        application = create_app(
            {
                "TESTING": True,
                "DATABASE_URL": url,
                "INDEX_DIR": str(tmp_path / f"index-{len(made)}"),
                "CRAWL_ARCHIVE_DIR": str(tmp_path / f"archive-{len(made)}"),
                "SECRET_KEY": "test-secret-key",
                "BASE_URL": "http://testserver.local",
                "DIGEST_TIMEZONE": "UTC",
                "SCHEDULER_RETRIES": 2,
                "SCHEDULER_RETRY_SECONDS": 0,
                **config,
            }
        )
        made.append(application)
        return application

    yield make
    private_pg.ensure_running()
    for application in made:
        application.extensions["database"].session.remove()
        application.extensions["database"].engine.dispose()
        private_pg.drop_database(application.config["DATABASE_URL"])


@pytest.fixture
def source() -> Iterator[FakeServer]:
    server = FakeServer()
    grants_gov_routes(server)
    server.start()
    yield server
    server.stop()


def crawl_settings(server: FakeServer) -> dict[str, Any]:
    """Grants.gov on loopback, pages of 3 and batches of 2: the recorded source is written in 3 batches."""
    return {
        "GRANTS_GOV_API_URL": f"{server.url}/v1/api",
        "CRAWL_CONTACT": "crawler-test@example.org",
        "CRAWL_TIMEOUT": 2.0,
        "CRAWL_MAX_RETRIES": 1,
        "CRAWL_BACKOFF": 0.01,
        "CRAWL_MIN_INTERVAL": 0.0,
        "CRAWL_PAGE_SIZE": 3,
        "CRAWL_BATCH_SIZE": 2,
    }


def crawl(app: Flask) -> list[tuple[int | None, Any]]:
    """One scheduled-style crawl of Grants.gov, in its own data session."""
    database = app.extensions["database"]
    with app.app_context():
        data = database.session_factory()
        try:
            return crawling.run_crawl(data, database.session_factory, app.config, ["grants_gov"])
        finally:
            data.close()


def store(app: Flask) -> dict[str, tuple[str | None, str, list[tuple[str, str]], int]]:
    """Every stored opportunity: content hash, title, codes and how many versions it has."""
    with app.extensions["database"].session_factory() as session:
        duplicates = session.execute(
            select(Opportunity.source, Opportunity.source_id)
            .group_by(Opportunity.source, Opportunity.source_id)
            .having(func.count() > 1)
        ).all()
        assert duplicates == [], f"stored twice: {duplicates}"
        found = {}
        for row in session.scalars(select(Opportunity).order_by(Opportunity.source_id)):
            codes = session.execute(
                select(OpportunityCode.kind, OpportunityCode.code)
                .where(OpportunityCode.opportunity_id == row.id)
                .order_by(OpportunityCode.kind, OpportunityCode.code)
            ).all()
            versions = session.scalar(
                select(func.count())
                .select_from(OpportunityVersion)
                .where(OpportunityVersion.opportunity_id == row.id)
            )
            found[row.source_id] = (
                row.content_hash,
                row.title,
                [tuple(c) for c in codes],
                int(versions or 0),
            )
        return found


def crawl_runs(app: Flask) -> list[tuple[CrawlRun, list[CrawlError]]]:
    with app.extensions["database"].session_factory() as session:
        runs = list(session.scalars(select(CrawlRun).order_by(CrawlRun.id)))
        return [
            (
                run,
                list(
                    session.scalars(
                        select(CrawlError).where(CrawlError.run_id == run.id).order_by(CrawlError.id)
                    )
                ),
            )
            for run in runs
        ]


def reference_store(make_app: Callable[..., Flask], server: FakeServer) -> dict[str, Any]:
    """The store an uninterrupted crawl of the same recorded source leaves (in another database)."""
    reference = make_app(**crawl_settings(server))
    ((_, outcome),) = crawl(reference)
    assert outcome.status == "succeeded", outcome.summary()
    expected = store(reference)
    assert sorted(expected) == RECORDED
    assert all(content_hash and title for content_hash, title, _codes, _versions in expected.values())
    return expected


def fail_after_writing(batch: int, action: Callable[[], None], monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Run ``action`` once batch number ``batch`` is written in its transaction, before the commit."""
    written: list[int] = []
    real = crawling.StoreSink._write

    def write(self: crawling.StoreSink, records: Any, *args: Any) -> Any:
        counts = real(self, records, *args)
        written.append(len(records))
        if len(written) == batch:
            action()
        return counts

    monkeypatch.setattr(crawling.StoreSink, "_write", write)
    return written


# --------------------------------------------------------------------------- requests


def test_requests_after_a_restart_get_fresh_connections_not_errors(
    make_app: Callable[..., Flask], private_pg: PrivateCluster
) -> None:
    app = make_app()
    with app.app_context():
        add_opportunity(app.extensions["database"].session(), title="Street outreach workers")
    client = app.test_client()
    assert "Street outreach workers" in client.get("/").get_data(as_text=True)  # the pool holds a connection

    private_pg.restart()  # every pooled connection is now dead

    for _ in range(3):
        page = client.get("/")
        assert page.status_code == 200 and "Street outreach workers" in page.get_data(as_text=True)


# --------------------------------------------------------------------------- crawls


def test_crawl_survives_a_restart_mid_batch_and_the_rerun_completes_it(
    make_app: Callable[..., Flask],
    private_pg: PrivateCluster,
    source: FakeServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    expected = reference_store(make_app, source)
    app = make_app(**crawl_settings(source))

    restarts = private_pg.restarts
    written = fail_after_writing(2, private_pg.restart, monkeypatch)
    ((run_id, outcome),) = crawl(app)
    assert private_pg.restarts == restarts + 1 and written == [2, 2, 1]

    # The batch in flight was rolled back whole; the batches before and after it are stored whole.
    assert outcome.status == "partial", outcome.summary()
    stored = store(app)
    assert sorted(stored) == [RECORDED[0], RECORDED[1], RECORDED[4]]
    assert all(stored[i] == expected[i] for i in stored)
    ((run, errors),) = crawl_runs(app)
    assert run.id == run_id and run.status == "partial" and run.finished_at is not None
    assert (run.new, run.failed) == (3, 2)
    assert [e.kind for e in errors] == ["store"]
    assert "batch of 2 records not stored, rolled back" in errors[0].message
    assert "OperationalError" in errors[0].message

    # A rerun (no restart this time) stores the rest, once.
    monkeypatch.undo()
    ((_, again),) = crawl(app)
    assert again.status == "succeeded", again.summary()
    assert (again.new, again.updated) == (2, 0)
    assert store(app) == expected
    with app.extensions["database"].session_factory() as session:
        assert session.scalar(select(func.count()).select_from(JobLock)) == 0  # no lease left behind


def test_crawl_run_left_running_by_a_lost_database_is_marked_abandoned_by_the_next_run(
    make_app: Callable[..., Flask],
    private_pg: PrivateCluster,
    source: FakeServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    expected = reference_store(make_app, source)
    # The database stays down longer than the crawl waits for it (0.2 s): the run cannot record its end.
    app = make_app(**crawl_settings(source), DATABASE_RETRY_SECONDS=0.2, SCHEDULER_LOCK_TTL_SECONDS=1)
    fail_after_writing(2, private_pg.stop, monkeypatch)
    ((run_id, outcome),) = crawl(app)
    assert outcome.status == "failed"
    assert any("OperationalError" in issue.message for issue in outcome.issues)
    private_pg.start()

    stored = store(app)
    assert sorted(stored) == RECORDED[:2]  # the first batch, whole; nothing of the second
    assert all(stored[i] == expected[i] for i in stored)
    ((run, _errors),) = crawl_runs(app)
    assert run.id == run_id and run.status == "running" and run.finished_at is None

    # Its lease runs out (1 s); the next run marks it failed as abandoned, then crawls everything.
    monkeypatch.undo()
    with time_machine.travel(utcnow() + dt.timedelta(seconds=2), tick=True):
        ((_, again),) = crawl(app)
    assert again.status == "succeeded", again.summary()
    assert store(app) == expected
    (first, first_errors), (second, _second_errors) = crawl_runs(app)
    assert first.status == "failed" and first.finished_at is not None
    assert "abandoned" in (first.summary or "")
    assert [e.kind for e in first_errors][-1:] == ["abandoned"]
    assert second.status == "succeeded" and (second.new, second.unchanged) == (3, 2)
    with app.extensions["database"].session_factory() as session:
        assert session.scalar(select(func.count()).select_from(JobLock)) == 0


# --------------------------------------------------------------------------- digests


class RestartingRecorder(Recorder):
    """The loopback SMTP server, doing something to the database right after accepting message N."""

    def __init__(self, actions: dict[int, Callable[[], None]]) -> None:
        super().__init__()
        self.actions = actions
        self.done: list[int] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        reply = await super().handle_DATA(server, session, envelope)
        action = self.actions.pop(len(self.messages), None)
        if action is not None:
            action()  # blocks the mail server too: the client sees the 250 only afterwards
            self.done.append(len(self.messages))
        return reply


@pytest.fixture
def mail() -> Iterator[Callable[[dict[int, Callable[[], None]]], RestartingRecorder]]:
    controllers: list[Controller] = []

    def start(actions: dict[int, Callable[[], None]]) -> RestartingRecorder:
        recorder = RestartingRecorder(actions)
        recorder.port = free_port()
        controller = Controller(recorder, hostname="127.0.0.1", port=recorder.port)
        controller.start()
        controllers.append(controller)
        return recorder

    yield start
    for controller in controllers:
        controller.stop()


def population(app: Flask) -> list[str]:
    """``USERS`` users, each subscribed to a saved search with something new to tell them."""
    now = utcnow()
    with app.app_context():
        session: Session = app.extensions["database"].session()
        add_opportunity(session, at=now - dt.timedelta(hours=1), title="Street outreach workers")
        emails = []
        for n in range(USERS):
            organization = Organization(name=f"Office of Violence Prevention {n}")
            session.add(organization)
            user = create_user(
                session, f"reader{n}@example.org", "correct horse battery", organization=organization
            )
            session.commit()
            subscribe_search(
                session,
                user,
                {"q": "outreach"},
                created_at=now - dt.timedelta(days=3),
                last_digest_at=now - dt.timedelta(days=1),
            )
            emails.append(user.email)
    return emails


def outbox_rows(app: Flask) -> list[tuple[str, str, int]]:
    with app.extensions["database"].session_factory() as session:
        return [
            (row.to_address, str(row.status), row.attempts)
            for row in session.scalars(select(EmailOutbox).order_by(EmailOutbox.to_address))
        ]


def job_runs(app: Flask) -> list[JobRun]:
    with app.extensions["database"].session_factory() as session:
        return list(session.scalars(select(JobRun).order_by(JobRun.id)))


def assert_one_digest_each(recorder: Recorder, emails: list[str]) -> None:
    assert sorted(str(m["To"]) for m in recorder.messages) == sorted(emails)
    assert len({m["Message-ID"] for m in recorder.messages}) == len(emails)


def test_restart_and_outage_during_delivery_send_each_digest_once_and_record_it(
    make_app: Callable[..., Flask], private_pg: PrivateCluster, mail: Any
) -> None:
    def outage() -> None:
        private_pg.stop()
        private_pg.start_in_background()  # the sender records message 3 while the server comes up

    recorder = mail({2: private_pg.restart, 3: outage})
    app = make_app(SMTP_HOST="127.0.0.1", SMTP_PORT=recorder.port, SMTP_TIMEOUT=60)
    emails = population(app)

    results = jobs.run_with_retries(app, "digests-daily", utcnow().replace(microsecond=0))

    assert recorder.done == [2, 3]
    assert [r.outcome for r in results] == [JobOutcome.SUCCEEDED], [r.detail for r in results]
    assert_one_digest_each(recorder, emails)
    # Sent once, recorded once: no message waits in "sending" to be sent again after its lease.
    assert outbox_rows(app) == [(email, "sent", 1) for email in sorted(emails)]
    (run,) = job_runs(app)
    assert run.outcome == JobOutcome.SUCCEEDED and "sent 4" in (run.detail or "")


def test_restart_while_building_digests_fails_the_run_which_is_retried_and_sends_each_once(
    make_app: Callable[..., Flask], private_pg: PrivateCluster, mail: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder = mail({})
    app = make_app(SMTP_HOST="127.0.0.1", SMTP_PORT=recorder.port, SMTP_TIMEOUT=60)
    emails = population(app)

    # The third user's digest is queued in its transaction when the server restarts: that
    # transaction is lost, the two before it are committed, and the run fails.
    queued: list[str] = []
    real = outbox.enqueue

    def enqueue(session: Session, **fields: Any) -> Any:
        row = real(session, **fields)
        queued.append(fields["to_address"])
        if len(queued) == 3:
            private_pg.restart()
        return row

    monkeypatch.setattr(outbox, "enqueue", enqueue)
    scheduled = utcnow().replace(microsecond=0)
    results = jobs.run_with_retries(app, "digests-daily", scheduled)

    assert [r.outcome for r in results] == [JobOutcome.FAILED, JobOutcome.SUCCEEDED], [
        r.detail for r in results
    ]
    first, retry = job_runs(app)
    assert first.outcome == JobOutcome.FAILED and "OperationalError" in (first.detail or "")
    assert first.scheduled_for == scheduled and first.finished_at is not None
    assert retry.outcome == JobOutcome.SUCCEEDED and retry.scheduled_for is None
    assert (retry.detail or "").startswith(f"retry 1 of 2 of the run for {scheduled.isoformat()}")
    assert "2 already built" in (retry.detail or "") and "sent 4" in (retry.detail or "")
    # The lost digest was built again on the retry, not twice.
    assert len(queued) == USERS + 1 and queued[2] == queued[3]
    assert_one_digest_each(recorder, emails)
    assert outbox_rows(app) == [(email, "sent", 1) for email in sorted(emails)]

    # Run again (a second scheduler, a manual run): nobody gets a second digest.
    monkeypatch.undo()
    (again,) = jobs.run_with_retries(app, "digests-daily", scheduled + dt.timedelta(seconds=1))
    assert again.outcome == JobOutcome.SUCCEEDED and f"{USERS} already built" in (again.detail or "")
    assert_one_digest_each(recorder, emails)
