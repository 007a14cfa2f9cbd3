"""``make serve`` (gunicorn workers + the scheduler on PostgreSQL) under load while it crawls and mails.

The same harness as ``bench/bench_load.py`` with a smaller population and a Python load tool: the
figures come from the bench; this proves, on every CI run, that the production set-up starts from the
documented environment, answers a mixed load with no 5xx while its scheduler runs a crawl and the
daily digests, stops cleanly on SIGTERM, and loses or duplicates nothing.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from bench import stack
from tests.alerts.conftest import Recorder
from tests.crawlers.conftest import FakeServer, agency_routes, grants_gov_routes

TARGET = os.environ.get("TEST_DATABASE_URL", "sqlite")
pytestmark = pytest.mark.skipif(
    not TARGET.startswith("postgresql"),
    reason="the production set-up runs on PostgreSQL: this test runs in the PostgreSQL pass",
)
JOBS = ("crawl-incremental", "digests-daily")
CRAWL_AFTER = dt.timedelta(seconds=20)
DIGESTS_AFTER = dt.timedelta(seconds=24)


@pytest.fixture
def sources() -> Iterator[FakeServer]:
    server = FakeServer()
    grants_gov_routes(server)
    agency_routes(server)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def mail() -> Iterator[Recorder]:
    recorder = Recorder()
    recorder.port = stack.free_port()
    controller = Controller(recorder, hostname="127.0.0.1", port=recorder.port)
    controller.start()
    yield recorder
    controller.stop()


def test_serve_answers_a_mixed_load_while_crawling_and_sending_digests(
    tmp_path: Path, sources: FakeServer, mail: Recorder
) -> None:
    with stack.fresh_database(TARGET) as url:
        port = stack.free_port()
        env = stack.stack_env(url, tmp_path, port=port, sources=sources.url, smtp_port=mail.port)
        population = stack.prepare(env, organizations=6)
        launched = dt.datetime.now(dt.UTC)
        stack.schedule(env, crawl_at=launched + CRAWL_AFTER, digest_at=launched + DIGESTS_AFTER)
        server = stack.Stack(env, tmp_path / "serve.log")
        try:
            server.wait_ready(warm=False)  # no latency is judged here
            kinds = stack.targets(population, port, stack.cookies_for(population, port, users=2))
            load = stack.Load(port, kinds, clients=8)
            load_started = dt.datetime.now(dt.UTC)
            assert load_started < launched + CRAWL_AFTER, "the site took too long to start for this test"
            load.start()
            runs = stack.wait_for_jobs(url, JOBS, timeout=240)
            load.stop()
            load_ended = dt.datetime.now(dt.UTC)
        finally:
            exit_code = server.stop()
        api_answered = load.count("api")
        verdict = stack.verify(url, population, mail.messages, api_answered=api_answered, slack=0)

    log = (tmp_path / "serve.log").read_text(errors="replace")
    assert exit_code == 0, log[-3000:]
    assert set(runs) == set(JOBS), f"jobs that finished: {sorted(runs)}"
    for name, run in runs.items():
        started = run.started_at.replace(tzinfo=dt.UTC)
        finished = run.finished_at.replace(tzinfo=dt.UTC)
        assert load_started <= started and finished <= load_ended, f"{name} ran outside the load"
    assert load.failures == [], log[-5000:]
    assert load.count(status_class=5) == 0, load.statuses
    for kind in kinds:
        assert load.count(kind, 2) > 0, f"no successful {kind} request: {load.statuses}"
    assert load.count(status_class=4) == 0, load.statuses
    assert verdict.problems == [], verdict.facts
    assert verdict.facts["digests_in_outbox"] == len(population.emails) == len(mail.messages)
    assert verdict.facts["api_usage_counted"] == api_answered
