"""The production set-up on loopback, loaded while its scheduler crawls and sends digests.

Used by ``bench/bench_load.py`` (60 s, 32 clients, wrk) and ``tests/reliability/load`` (a short run
with a Python client), so both prove the same things:

* ``scripts/serve.py`` (what ``make serve`` runs) serves gunicorn's workers and the scheduler on a
  fresh PostgreSQL database;
* the scheduler fires a crawl of every source (recorded responses from a loopback HTTP server) and
  the daily digests (to an aiosmtpd server on loopback) while the site is under load;
* afterwards nothing is lost or duplicated: every source's crawl run accounts for every record it
  fetched, every stored opportunity has its history, every subscribed user got exactly one digest,
  and the API usage counted for the partner key matches the API requests the load tool completed.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PASSWORD = "load test password 1"
SEARCHES = [
    "violence intervention", "street outreach", "hospital-based violence", "gun violence prevention",
    "youth mentoring", "reentry employment", "victim services", "trauma-informed care",
]  # fmt: skip
PROFILE_TEXTS = [
    "Credible messengers do street outreach and violence interruption with young adults at highest risk.",
    "A hospital-based violence intervention program meets gunshot patients at the bedside.",
    "After-school mentoring and summer jobs for teenagers in neighborhoods with the most shootings.",
    "Reentry coaching, job training and housing help for men coming home from prison.",
    "Trauma-informed counselling and advocacy for families who lost someone to gun violence.",
    "Group violence intervention with police, clergy and outreach workers calling in crews.",
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def fresh_database(admin_url: str) -> Iterator[str]:
    """A new, empty PostgreSQL database for one run, dropped afterwards."""
    admin = make_url(admin_url)
    name = f"cvi_load_{uuid.uuid4().hex[:10]}"
    engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()


@dataclass
class Population:
    """Who uses the site in the run: one user per organization, each with a profile and 3 subscriptions."""

    emails: list[str] = field(default_factory=list)
    profile_ids: list[int] = field(default_factory=list)
    opportunity_ids: list[int] = field(default_factory=list)
    api_key: str = ""
    stored_before: dict[str, int] = field(default_factory=dict)


def by_source(session: Session) -> dict[str, int]:
    """How many opportunities the store holds per source."""
    from app.models import Opportunity

    rows = session.execute(select(Opportunity.source, func.count()).group_by(Opportunity.source))
    return {source: count for source, count in rows}


def stack_env(database_url: str, workdir: Path, *, port: int, sources: str, smtp_port: int) -> dict[str, str]:
    """The environment ``make serve`` needs, with every source and the mail server on loopback."""
    return dict(
        os.environ,
        DATABASE_URL=database_url,
        SECRET_KEY=secrets.token_urlsafe(32),
        PORT=str(port),
        HOST="127.0.0.1",
        BASE_URL=f"http://127.0.0.1:{port}",
        INDEX_DIR=str(workdir / "index"),
        CRAWL_ARCHIVE_DIR=str(workdir / "archive"),
        LOG_LEVEL="WARNING",
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=str(smtp_port),
        SMTP_TIMEOUT="10",
        GRANTS_GOV_API_URL=f"{sources}/v1/api",
        GRANTS_GOV_EXTRACT_URL=f"{sources}/xml-extract",
        OJP_FUNDING_URL=f"{sources}/funding-api",
        DOL_ETA_URL=f"{sources}/eta/find-opportunities",
        ED_FORECAST_URL=f"{sources}/ed/forecast",
        SAMHSA_NOFO_URL=f"{sources}/samhsa/grants-dashboard",
        CRAWL_TIMEOUT="10",
        CRAWL_MIN_INTERVAL="0",
        CRAWL_BACKOFF="0.1",
        CRAWL_PAGE_SIZE="3",
        SCHEDULER_TIMEZONE="UTC",
        DIGEST_TIMEZONE="UTC",
        SCHEDULER_JOBS="crawl-incremental,digests-daily,outbox",
        API_USAGE_FLUSH_SECONDS="2",
    )


def schedule(env: dict[str, str], *, crawl_at: dt.datetime, digest_at: dt.datetime) -> None:
    """Make the scheduler fire the crawl and the daily digests at these (UTC) instants."""
    env["SCHEDULER_CRAWL_CRON"] = f"{crawl_at.second} {crawl_at.minute} {crawl_at.hour} * * *"
    env["DIGEST_TIME"] = digest_at.strftime("%H:%M:%S")


def flask(env: dict[str, str], *args: str) -> str:
    completed = subprocess.run(
        [str(BIN / "flask"), "--app", "wsgi", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if completed.returncode != 0:
        raise RuntimeError(f"flask {' '.join(args)} failed:\n{completed.stdout}\n{completed.stderr}")
    return completed.stdout


def prepare(env: dict[str, str], organizations: int) -> Population:
    """Migrate, seed, index, then add the organizations, their profiles and subscriptions, and a key."""
    subprocess.run(
        [str(BIN / "alembic"), "upgrade", "head"], cwd=ROOT, env=env, check=True, capture_output=True
    )
    flask(env, "seed")
    flask(env, "reindex")
    return populate(env["DATABASE_URL"], organizations)


def populate(database_url: str, organizations: int) -> Population:
    from app.db import make_engine
    from app.models import AlertSubscription, Opportunity, SavedSearch, TrackedOpportunity
    from app.services import api_keys, profiles, subscriptions
    from app.services import organizations as orgs

    engine = make_engine(database_url)
    population = Population()
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    with Session(engine) as session:
        population.opportunity_ids = list(session.scalars(select(Opportunity.id).order_by(Opportunity.id)))
        for n in range(organizations):
            email = f"writer{n}@ovp{n}.example.gov"
            user = orgs.sign_up(
                session, email=email, password=PASSWORD, name=f"Writer {n}", organization_name=f"OVP {n}"
            )
            assert user.organization_id is not None
            profile = profiles.create(
                session,
                user.organization_id,
                user,
                {
                    "name": f"Program {n}",
                    "org_type": "nonprofit",
                    "program_description": PROFILE_TEXTS[n % len(PROFILE_TEXTS)],
                    "focus_areas": ["street outreach", "violence intervention"],
                    "populations": ["young adults"],
                },
            )
            saved = SavedSearch(user_id=user.id, name="Outreach", query={"q": SEARCHES[n % len(SEARCHES)]})
            session.add(saved)
            for offset in (0, 1):
                opportunity_id = population.opportunity_ids[
                    (n * 2 + offset) % len(population.opportunity_ids)
                ]
                session.add(
                    TrackedOpportunity(organization_id=user.organization_id, opportunity_id=opportunity_id)
                )
            session.flush()
            for key in (f"profile:{profile.id}", f"search:{saved.id}", subscriptions.TRACKED_KEY):
                subscriptions.subscribe(session, user, key, "daily")
            population.emails.append(email)
            population.profile_ids.append(profile.id)
        # Subscribed three days ago, last digest yesterday: the seeded catalogue is news to everyone.
        for subscription in session.scalars(select(AlertSubscription)):
            subscription.created_at = now - dt.timedelta(days=3)
            subscription.last_digest_at = now - dt.timedelta(days=1)
        population.stored_before = by_source(session)
        _row, population.api_key = api_keys.create_key(session, "load", rate_limit_per_minute=1_000_000)
        session.commit()
    engine.dispose()
    return population


class Stack:
    """``scripts/serve.py`` in a subprocess: gunicorn workers plus the scheduler."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.port = int(env["PORT"])
        self.log = log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "scripts" / "serve.py")],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 180, *, warm: bool = True) -> float:
        """Seconds until the site answers, and (``warm``) its workers have warmed up.

        Warm means ``/healthz`` says so on 8 answers in a row: each answer comes from whichever worker
        accepted the connection, so 8 in a row means every worker (of a handful) is done, as a load
        balancer's readiness check would wait.
        """
        started = time.monotonic()
        in_a_row = 0
        while time.monotonic() - started < timeout:
            if self.process.poll() is not None:
                raise RuntimeError(f"serve exited with {self.process.returncode}; see {self.log.name}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                conn.request("GET", "/healthz")
                response = conn.getresponse()
                body = json.loads(response.read() or b"{}")
                conn.close()
                done = response.status == 200 and (not warm or body.get("warm_up") in ("done", "failed"))
            except (OSError, ValueError):
                done = False
            in_a_row = in_a_row + 1 if done else 0
            if in_a_row >= (8 if warm else 1):
                return time.monotonic() - started
            time.sleep(0.05 if done else 0.3)
        raise RuntimeError(f"the site did not warm up within {timeout:g} s")

    def stop(self) -> int:
        """SIGTERM, as a process manager would: workers finish and flush, the scheduler stops."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
        return self.process.returncode


def sign_in(port: int, email: str) -> str:
    """A session cookie for ``email``, through the real sign-in form (CSRF and all)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("GET", "/sign-in")
    response = conn.getresponse()
    html = response.read().decode()
    cookie = (response.getheader("Set-Cookie") or "").split(";")[0]
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html)
    if token is None:
        raise RuntimeError("no CSRF token on /sign-in")
    body = urlencode({"csrf_token": token.group(1), "email": email, "password": PASSWORD})
    headers = {"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"}
    conn.request("POST", "/sign-in", body, headers)
    response = conn.getresponse()
    response.read()
    if response.status != 302:
        raise RuntimeError(f"sign-in as {email} answered {response.status}")
    return (response.getheader("Set-Cookie") or "").split(";")[0] or cookie


@dataclass(frozen=True)
class Target:
    kind: str
    path: str
    headers: dict[str, str]


def targets(population: Population, port: int, cookies: list[str]) -> dict[str, list[Target]]:
    """The mixed load: search, opportunity pages, profile matches (signed in) and the partner API."""
    key = {"X-API-Key": population.api_key}
    search = [
        Target("search", f"/search?{urlencode({'q': q, **extra})}", {})
        for q in SEARCHES
        for extra in ({}, {"department": "DOJ"}, {"status": "posted"})
    ]
    pages = [Target("opportunity", f"/opportunities/{i}", {}) for i in population.opportunity_ids]
    matches = [
        Target("matches", f"/profiles/{profile_id}/matches", {"Cookie": cookies[n % len(cookies)]})
        for n, profile_id in enumerate(population.profile_ids[: len(cookies)])
    ]
    api = [Target("api", f"/api/v1/opportunities?{urlencode({'q': q})}", key) for q in SEARCHES] + [
        Target("api", f"/api/v1/opportunities/{i}", key) for i in population.opportunity_ids[:40]
    ]
    return {"search": search, "opportunity": pages, "matches": matches, "api": api}


def cookies_for(population: Population, port: int, users: int = 4) -> list[str]:
    """Sessions of the first ``users`` users, whose profiles the load asks matches for."""
    return [sign_in(port, email) for email in population.emails[:users]]


# --------------------------------------------------------------------------- after the run


@dataclass
class Verdict:
    """What the store and the mail server show after the run."""

    facts: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def wait_for_jobs(database_url: str, names: tuple[str, ...], timeout: float) -> dict[str, Any]:
    """Block until each named job has a finished run (or the timeout); returns the runs by name."""
    engine = create_engine(database_url)
    deadline = time.monotonic() + timeout
    runs: dict[str, Any] = {}
    try:
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                rows = conn.execute(
                    text(
                        "SELECT name, outcome, started_at, finished_at, detail FROM job_runs "
                        "WHERE finished_at IS NOT NULL ORDER BY id"
                    )
                ).all()
            runs = {row.name: row for row in rows if row.name in names}
            if len(runs) == len(names):
                break
            time.sleep(0.5)
    finally:
        engine.dispose()
    return runs


def verify(
    database_url: str, population: Population, messages: list[Any], api_answered: int, slack: int
) -> Verdict:
    """Check that nothing was lost or duplicated.

    ``slack`` allows for API requests still in flight when the load tool stopped (counted, not seen).
    """
    from app.models import (
        ApiKeyUsage,
        CrawlRun,
        EmailOutbox,
        JobRun,
        Opportunity,
    )
    from app.services.digests import DIGEST_KIND

    verdict = Verdict()
    engine = create_engine(database_url)
    with Session(engine) as session:
        jobs = {run.name: run for run in session.scalars(select(JobRun))}
        for name in ("crawl-incremental", "digests-daily"):
            job = jobs.get(name)
            if job is None or job.outcome != "succeeded":
                verdict.problems.append(
                    f"job {name}: {job.outcome if job else 'never ran'} ({job.detail if job else ''})"
                )
        verdict.facts["jobs"] = {n: (r.outcome, r.started_at, r.finished_at) for n, r in jobs.items()}

        runs = list(session.scalars(select(CrawlRun)))
        verdict.facts["crawl_runs"] = {
            r.source: (r.status, r.fetched, r.new, r.updated, r.unchanged, r.failed) for r in runs
        }
        for run in runs:
            accounted = run.new + run.updated + run.unchanged + run.failed
            if run.status != "succeeded":
                verdict.problems.append(f"crawl of {run.source}: {run.status} ({run.summary})")
            if run.fetched != accounted:
                verdict.problems.append(
                    f"crawl of {run.source}: fetched {run.fetched} but accounted for {accounted}"
                )
        stored = by_source(session)
        crawled = 0
        for source in {run.source for run in runs}:
            new = sum(run.new for run in runs if run.source == source)
            added = stored.get(source, 0) - population.stored_before.get(source, 0)
            crawled += added
            if added != new:
                verdict.problems.append(
                    f"{source}: the crawl reported {new} new opportunities, {added} were stored"
                )
        verdict.facts["crawled_opportunities_new"] = crawled
        if not runs or not any(run.fetched for run in runs):
            verdict.problems.append("the crawl fetched nothing")
        incomplete = session.scalar(
            select(func.count())
            .select_from(Opportunity)
            .where(Opportunity.content_hash.is_(None) | (Opportunity.title == ""))
        )
        if incomplete:
            verdict.problems.append(f"{incomplete} opportunities without their content hash or title")
        duplicates = session.execute(
            select(Opportunity.source, Opportunity.source_id, func.count())
            .group_by(Opportunity.source, Opportunity.source_id)
            .having(func.count() > 1)
        ).all()
        if duplicates:
            verdict.problems.append(f"duplicate opportunities: {duplicates[:5]}")

        outbox = list(session.scalars(select(EmailOutbox).where(EmailOutbox.kind == DIGEST_KIND)))
        verdict.facts["digests_in_outbox"] = len(outbox)
        unsent = [row.to_address for row in outbox if row.status != "sent"]
        if unsent:
            verdict.problems.append(f"{len(unsent)} digests not sent: {unsent[:5]}")
        received: dict[str, int] = {}
        for message in messages:
            received[str(message["To"])] = received.get(str(message["To"]), 0) + 1
        verdict.facts["emails_received"] = len(messages)
        for email in population.emails:
            if received.get(email, 0) != 1:
                verdict.problems.append(f"{email} received {received.get(email, 0)} digests, not 1")
        ids = [str(m["Message-ID"]) for m in messages]
        if len(set(ids)) != len(ids):
            verdict.problems.append("a Message-ID was delivered twice")

        counted = session.scalar(select(func.coalesce(func.sum(ApiKeyUsage.count), 0))) or 0
        verdict.facts["api_requests_answered"] = api_answered
        verdict.facts["api_usage_counted"] = counted
        if not api_answered <= counted <= api_answered + slack:
            verdict.problems.append(
                f"API usage counted {counted} requests; "
                f"the load tool completed {api_answered} (+{slack} in flight)"
            )
    engine.dispose()
    return verdict


class Load:
    """A small threaded load tool for runs where wrk is not wanted (the test suite).

    Each client keeps one keep-alive connection and walks the mixed targets in turn until stopped;
    statuses are counted per kind and per class (2xx … 5xx), connection failures separately.
    """

    def __init__(self, port: int, kinds: dict[str, list[Target]], clients: int) -> None:
        self.port = port
        self.kinds = [items for items in kinds.values() if items]
        self.clients = clients
        self.stop_event = threading.Event()
        self.lock = threading.Lock()
        self.statuses: dict[tuple[str, int], int] = {}
        self.failures: list[str] = []
        self.threads = [threading.Thread(target=self._client, args=(n,), daemon=True) for n in range(clients)]

    def _client(self, n: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        i = n
        while not self.stop_event.is_set():
            items = self.kinds[i % len(self.kinds)]  # the kinds in turn, each walking its own targets
            item = items[(i // len(self.kinds)) % len(items)]
            i += self.clients
            try:
                conn.request("GET", item.path, headers=item.headers)
                response = conn.getresponse()
                body = response.read()
                key = (item.kind, response.status // 100)
                if response.status >= 500:
                    with self.lock:
                        self.failures.append(f"{item.path}: {response.status} {body[:300]!r}")
            except (OSError, http.client.HTTPException) as exc:
                with self.lock:
                    self.failures.append(f"{item.path}: {exc!r}")
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
                continue
            with self.lock:
                self.statuses[key] = self.statuses.get(key, 0) + 1
        conn.close()

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def stop(self) -> None:
        self.stop_event.set()
        for thread in self.threads:
            thread.join(timeout=90)

    def count(self, kind: str | None = None, status_class: int | None = None) -> int:
        return sum(
            n
            for (k, c), n in self.statuses.items()
            if (kind is None or k == kind) and (status_class is None or c == status_class)
        )
