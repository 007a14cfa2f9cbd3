"""A source that hangs: its requests time out, its run records why, the other sources still land.

The hanging source is a real loopback TCP server that accepts connections and then either never
answers or answers with headers and trickles the body a byte at a time (each byte well inside the
read timeout, so only the per-response deadline ends it). Every other source is served by the
recorded-response server of ``tests/crawlers``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import CrawlError, CrawlRun, Opportunity
from tests.conftest import ROOT
from tests.crawlers.conftest import FakeServer, agency_routes, grants_gov_routes

#: A trickling connection gives up after this long, so a regression fails the test instead of hanging it.
GIVE_UP_SECONDS = 30.0


class StallingServer:
    """Accepts every connection, reads the request, then stalls: ``silent`` sends nothing at all;
    ``trickle`` sends a 200 with a large Content-Length and then one body byte every ``interval``;
    ``trickle_headers`` sends the status line and then one byte of an endless header line."""

    def __init__(self, mode: str, interval: float = 0.1) -> None:
        self.mode = mode
        self.interval = interval
        self.requests: list[str] = []
        self.stopped = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}"

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                connection, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        started = time.monotonic()
        with connection:
            connection.settimeout(0.2)
            request = b""
            while b"\r\n\r\n" not in request and not self.stopped.is_set():
                try:
                    data = connection.recv(4096)
                except TimeoutError:
                    continue
                except OSError:
                    return
                if not data:
                    return
                request += data
            self.requests.append(request.split(b"\r\n", 1)[0].decode("latin-1"))
            opening = {
                "trickle": b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 1000000\r\n\r\n",
                "trickle_headers": b"HTTP/1.1 200 OK\r\nX-Slow: ",
            }.get(self.mode)
            if opening:
                try:
                    connection.sendall(opening)
                except OSError:
                    return
            while not self.stopped.is_set() and time.monotonic() - started < GIVE_UP_SECONDS:
                if self.mode != "silent":
                    try:
                        connection.sendall(b"<")
                    except OSError:
                        return  # the client gave up and closed the connection
                    time.sleep(self.interval)
                else:
                    try:
                        if connection.recv(4096) == b"":
                            return  # the client gave up
                    except TimeoutError:
                        continue
                    except OSError:
                        return

    def paths(self) -> list[str]:
        return [line.split(" ")[1] for line in self.requests if " " in line]

    def stop(self) -> None:
        self.stopped.set()
        self.listener.close()
        self.thread.join(5)


@pytest.fixture
def server() -> Iterator[FakeServer]:
    fake = FakeServer()
    fake.start()
    grants_gov_routes(fake)
    agency_routes(fake)
    yield fake
    fake.stop()


def _stalling(mode: str) -> Iterator[StallingServer]:
    stalling = StallingServer(mode)
    try:
        yield stalling
    finally:
        stalling.stop()


@pytest.fixture
def silent() -> Iterator[StallingServer]:
    yield from _stalling("silent")


@pytest.fixture(params=["trickle", "trickle_headers"])
def trickle(request: pytest.FixtureRequest) -> Iterator[StallingServer]:
    yield from _stalling(request.param)


def _urls(server: FakeServer, hanging: StallingServer) -> dict[str, str]:
    """Every source on the recorded server except ED's forecast page, which hangs."""
    return {
        "GRANTS_GOV_API_URL": f"{server.url}/v1/api",
        "OJP_FUNDING_URL": f"{server.url}/funding-api",
        "DOL_ETA_URL": f"{server.url}/eta/find-opportunities",
        "ED_FORECAST_URL": f"{hanging.url}/ed/forecast",
        "SAMHSA_NOFO_URL": f"{server.url}/samhsa/grants-dashboard",
    }


def _configure(app: Flask, server: FakeServer, hanging: StallingServer, **settings: object) -> None:
    app.config.update(
        _urls(server, hanging),
        CRAWL_CONTACT="crawler-test@example.org",
        CRAWL_TIMEOUT=0.5,
        CRAWL_REQUEST_DEADLINE=1.0,
        CRAWL_MAX_RETRIES=1,
        CRAWL_BACKOFF=0.01,
        CRAWL_MIN_INTERVAL=0.0,
        CRAWL_PAGE_SIZE=3,
        CRAWL_BATCH_SIZE=2,
        **settings,
    )


def _runs(session: Session) -> dict[str, CrawlRun]:
    session.expire_all()
    return {run.source: run for run in session.scalars(select(CrawlRun).order_by(CrawlRun.id))}


def _stored(session: Session) -> dict[str, int]:
    rows = session.execute(select(Opportunity.source, func.count()).group_by(Opportunity.source)).all()
    return {source: count for source, count in rows}


def _errors(session: Session, run: CrawlRun) -> list[CrawlError]:
    return list(session.scalars(select(CrawlError).where(CrawlError.run_id == run.id)))


def _assert_others_landed(session: Session, runs: dict[str, CrawlRun]) -> None:
    for name in ("grants_gov", "ojp", "dol_eta", "samhsa"):
        assert runs[name].status == "succeeded", (name, runs[name].summary)
        assert runs[name].finished_at is not None
    stored = _stored(session)
    assert stored.get("ed_forecast", 0) == 0
    assert all(stored.get(source, 0) > 0 for source in ("grants_gov", "ojp", "dol_eta", "samhsa")), stored


def test_a_silent_source_times_out_and_the_others_are_stored(
    app: Flask, server: FakeServer, silent: StallingServer, session: Session
) -> None:
    _configure(app, server, silent)
    started = time.monotonic()
    result = app.test_cli_runner().invoke(args=["crawl"])
    took = time.monotonic() - started
    output = result.output + result.stderr

    assert result.exit_code == 1, output
    assert "FAILED: ed_forecast" in output
    runs = _runs(session)
    ed = runs["ed_forecast"]
    assert ed.status == "failed" and ed.finished_at is not None
    (error,) = _errors(session, ed)
    assert error.kind == "timeout" and error.url == f"{silent.url}/ed/forecast"
    expected = f"no response from GET {silent.url}/ed/forecast within 0.5 s (after 2 attempts)"
    assert error.message == expected
    # robots.txt (given up at once), then the page twice: each wait ended by the read timeout.
    assert silent.paths() == ["/robots.txt", "/ed/forecast", "/ed/forecast"]
    assert (ed.finished_at - ed.started_at).total_seconds() < 10
    _assert_others_landed(session, runs)
    assert took < 60


def test_a_trickling_source_is_cut_off_by_the_response_deadline(
    app: Flask, server: FakeServer, trickle: StallingServer, session: Session
) -> None:
    """A byte every 0.1 s (of the body, or of the headers) never trips the 0.5 s read timeout; the
    1 s deadline per response does."""
    _configure(app, server, trickle)
    started = time.monotonic()
    result = app.test_cli_runner().invoke(args=["crawl", "--source", "ed_forecast", "--source", "dol_eta"])
    took = time.monotonic() - started
    output = result.output + result.stderr

    assert result.exit_code == 1, output
    assert "ed_forecast failed" in output and "dol_eta succeeded" in output
    runs = _runs(session)
    (error,) = _errors(session, runs["ed_forecast"])
    assert error.kind == "timeout" and error.url == f"{trickle.url}/ed/forecast"
    assert error.message.startswith(f"response from GET {trickle.url}/ed/forecast not complete within 1 s")
    assert "sending too slowly" in error.message and error.message.endswith("(after 2 attempts)")
    assert trickle.paths() == ["/robots.txt", "/ed/forecast", "/ed/forecast"]
    assert runs["dol_eta"].status == "succeeded" and _stored(session).get("dol_eta", 0) > 0
    # robots.txt and two attempts, each cut off after about a second.
    assert took < 20


def test_flask_crawl_command_exits_non_zero_with_timeouts_from_the_environment(
    app: Flask, server: FakeServer, silent: StallingServer, session: Session, tmp_path: Path
) -> None:
    """The real command line, configured only through environment variables."""
    env = dict(os.environ)
    env.update(
        _urls(server, silent),
        DATABASE_URL=app.config["DATABASE_URL"],
        SECRET_KEY=app.config["SECRET_KEY"],
        INDEX_DIR=str(tmp_path / "index"),
        CRAWL_ARCHIVE_DIR=str(tmp_path / "archive"),
        CRAWL_TIMEOUT="0.5",
        CRAWL_REQUEST_DEADLINE="1",
        CRAWL_MAX_RETRIES="1",
        CRAWL_BACKOFF="0.01",
        CRAWL_MIN_INTERVAL="0",
    )
    command = [sys.executable, "-m", "flask", "--app", "wsgi", "crawl"]
    command += ["--source", "dol_eta", "--source", "ed_forecast", "--source", "samhsa"]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)

    assert done.returncode == 1, done.stderr[-3000:]
    assert "FAILED: ed_forecast" in done.stdout
    assert f"ed_forecast error [timeout] {silent.url}/ed/forecast" in done.stderr
    runs = _runs(session)
    assert runs["ed_forecast"].status == "failed"
    assert runs["dol_eta"].status == "succeeded" and runs["samhsa"].status == "succeeded"
    stored = _stored(session)
    assert stored.get("dol_eta", 0) > 0 and stored.get("samhsa", 0) > 0
