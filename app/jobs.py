"""Scheduled jobs, the scheduler process, and the commands that run a job once.

``flask --app wsgi scheduler`` runs APScheduler (3.11, BlockingScheduler) in its own process with the
jobs below. Any number of scheduler processes may run (one per host for availability): each
occurrence is claimed in ``job_runs`` and each job holds a lease in ``job_locks``
(``app.services.joblock``), so every occurrence runs once and no job runs twice at the same time.
Cron triggers are aligned on the clock, so all processes agree on the occurrence they fire.

Crawling (``app.services.crawling``) and re-indexing/ranking (``matching``) are other parts of the
product; the scheduler reaches them through the small registry below, so it works with whatever is
installed and records a job whose code is absent as skipped, saying what is missing.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib
import logging
import signal
import sys
import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import Any

import click
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from flask import Flask, current_app, has_app_context
from flask.cli import with_appcontext
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from app.db import db_session, get_db, is_disconnect, utcnow
from app.models import Frequency, JobOutcome, MatchDismissal, ProgramProfile
from app.services import digests, outbox
from app.services.joblock import JobSkipped, RunResult, run_exclusive
from app.services.smtp import SmtpSender, SmtpSettings

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------- registry


def optional(module: str, attribute: str) -> Any | None:
    """``module.attribute`` when that part of the product is installed, else None."""
    try:
        loaded = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and (module == exc.name or module.startswith(exc.name + ".")):
            return None
        raise
    return getattr(loaded, attribute, None)


class RankerMatcher:
    """The digest's view of ``matching.ranker.rank``: a profile's top matches and their reasons.

    Uses the ranker's default filters (open or forecasted, a week or more left, CVI only) and leaves
    out what the organization marked "not a fit" for the profile.
    """

    def __init__(self, rank: Callable[..., Any], profile_input: Any, filters: Any) -> None:
        self.rank = rank
        self.profile_input = profile_input
        self.filters = filters
        #: Shared by the rankings of one run (``prepare`` starts a run).
        self.cache: Any = None

    def matches(
        self, session: Session, profile: ProgramProfile, limit: int, explain: Collection[int] | None = None
    ) -> list[tuple[int, str]]:
        dismissed = session.scalars(
            select(MatchDismissal.opportunity_id).where(MatchDismissal.profile_id == profile.id)
        ).all()
        found = self.rank(
            session,
            self.profile_input.from_model(profile),
            filters=self.filters(exclude_ids=list(dismissed)),
            limit=limit,
            explain_only=explain,
            cache=self.cache,
        )
        return [(match.opportunity.id, str(match.explanation.reason)) for match in found]

    def prepare(self, session: Session, profiles: Sequence[ProgramProfile]) -> None:
        """Start of a run: a fresh ranking cache for it, and every profile's query vector ready (the one
        stored on the profile when its text is unchanged, else all the others embedded in one batch
        and stored)."""
        cache = optional("matching.ranker", "RankCache")
        self.cache = cache() if cache is not None else None
        embed_profiles = optional("matching.embeddings", "embed_profiles")
        if embed_profiles is None:
            return
        texts = {}
        for profile in profiles:
            try:
                texts[profile.id] = self.profile_input.from_model(profile).query_text()
            except ValueError:
                continue  # ranked (and refused, with its reason) one by one later
        embed_profiles(session, texts)


def profile_matcher() -> digests.ProfileMatcher | None:
    rank = optional("matching.ranker", "rank")
    filters = optional("matching.ranker", "RankFilters")
    profile_input = optional("matching.profile", "ProfileInput")
    if rank is None or filters is None or profile_input is None:
        return None
    return RankerMatcher(rank, profile_input, filters)


def keyword_index(config: Mapping[str, Any]) -> Any | None:
    """The Whoosh index for saved-search keywords, when the matcher is installed and the index can be
    searched; else None, and saved searches match in SQL (a missing index must not empty digests)."""
    get_index = optional("matching.keyword", "get_index")
    if get_index is None:
        return None
    index = get_index(config["INDEX_DIR"])
    return index if index.available() else None


def _required(module: str, attribute: str) -> Callable[..., Any]:
    found = optional(module, attribute)
    if found is None:
        raise JobSkipped(f"{module}.{attribute} is not installed in this deployment")
    return found  # type: ignore[no-any-return]


# --------------------------------------------------------------------------- jobs


def _sender(config: Mapping[str, Any]) -> SmtpSender:
    return SmtpSender(SmtpSettings.from_config(config))


def _describe(run: digests.DigestRun) -> str:
    text = (
        f"{run.period.key}: {run.users} users, {run.enqueued} digests queued, {run.empty} with nothing new, "
        f"{run.already} already built"
    )
    if run.delivery is not None:
        d = run.delivery
        text += f"; sent {d.sent}, retrying {d.retrying}, failed {d.failed}, cancelled {d.cancelled}"
    return text


def send_digests_job(app: Flask, frequency: Frequency) -> str:
    config = app.config
    run = digests.send_digests(
        db_session(),
        config,
        frequency,
        sender=_sender(config),
        matcher=profile_matcher(),
        keyword=keyword_index(config),
    )
    return _describe(run)


def deliver_outbox_job(app: Flask) -> str:
    report = outbox.deliver_due(
        db_session(),
        _sender(app.config),
        mail_from=app.config["MAIL_FROM"],
        policy=outbox.RetryPolicy.from_config(app.config),
        cancel_check=digests.cancel_if_unsubscribed,
    )
    r = report
    return f"sent {r.sent}, retrying {r.retrying}, failed {r.failed}, cancelled {r.cancelled}"


def crawl_job(app: Flask, mode: str) -> str:
    """Crawl every source: incremental (recent days only) or full (which also marks what vanished)."""
    run_crawl = _required("app.services.crawling", "run_crawl")
    since = int(app.config["SCHEDULER_CRAWL_SINCE_DAYS"]) if mode == "incremental" else None
    results = run_crawl(db_session(), get_db().session_factory, app.config, None, since_days=since)
    detail = "\n".join(outcome.summary() for _run_id, outcome in results)
    if results and all(outcome.status == "failed" for _run_id, outcome in results):
        raise RuntimeError(f"every source failed:\n{detail}")
    return detail


def reindex_job(app: Flask) -> str:
    reindex = _required("matching.sync", "reindex")
    report = reindex(db_session(), app.config["INDEX_DIR"])
    return (
        f"{report.indexed} indexed, {report.embedded} passages embedded ({report.reused} re-used), "
        f"{report.scored} scored, {report.cvi_eligible} CVI-eligible"
    )


# --------------------------------------------------------------------------- triggers


def cron(expression: str, timezone: str) -> CronTrigger:
    """A cron trigger from 5 fields (minute hour day month weekday) or 6 (seconds first).

    Weekdays are best written as names (mon-sun): APScheduler numbers them from Monday = 0.
    """
    fields = expression.split()
    if len(fields) == 5:
        return CronTrigger.from_crontab(expression, timezone=timezone)
    if len(fields) == 6:
        second, minute, hour, day, month, weekday = fields
        return CronTrigger(
            second=second,
            minute=minute,
            hour=hour,
            day=day,
            month=month,
            day_of_week=weekday,
            timezone=timezone,
        )
    raise ValueError(f"cron expression {expression!r} must have 5 or 6 fields")


def digest_trigger(config: Mapping[str, Any], weekly: bool) -> CronTrigger:
    """Daily (or on ``DIGEST_WEEKDAY``) at ``DIGEST_TIME`` (HH:MM or HH:MM:SS) in ``DIGEST_TIMEZONE``."""
    parts = str(config["DIGEST_TIME"]).split(":")
    if not 2 <= len(parts) <= 3 or not all(p.isdigit() for p in parts):
        raise ValueError(f"DIGEST_TIME must look like 07:00, not {config['DIGEST_TIME']!r}")
    hour, minute, second = (int(p) for p in [*parts, "0"][:3])
    return CronTrigger(
        day_of_week=config["DIGEST_WEEKDAY"] if weekly else "*",
        hour=hour,
        minute=minute,
        second=second,
        timezone=config["DIGEST_TIMEZONE"],
    )


@dataclass(frozen=True)
class JobSpec:
    name: str
    description: str
    run: Callable[[Flask], str | None]
    trigger: Callable[[Mapping[str, Any]], CronTrigger]


JOBS: dict[str, JobSpec] = {
    spec.name: spec
    for spec in (
        JobSpec(
            "crawl-incremental",
            "Fetch what changed at every source since the last crawl (hourly).",
            lambda app: crawl_job(app, "incremental"),
            lambda c: cron(c["SCHEDULER_CRAWL_CRON"], c["SCHEDULER_TIMEZONE"]),
        ),
        JobSpec(
            "crawl-reconcile",
            "Full crawl of every source; marks what vanished (nightly).",
            lambda app: crawl_job(app, "full"),
            lambda c: cron(c["SCHEDULER_RECONCILE_CRON"], c["SCHEDULER_TIMEZONE"]),
        ),
        JobSpec(
            "reindex",
            "Rebuild the keyword index and embed changed opportunities.",
            reindex_job,
            lambda c: cron(c["SCHEDULER_REINDEX_CRON"], c["SCHEDULER_TIMEZONE"]),
        ),
        JobSpec(
            "digests-daily",
            "Build and send the daily digests.",
            lambda app: send_digests_job(app, Frequency.DAILY),
            lambda c: digest_trigger(c, weekly=False),
        ),
        JobSpec(
            "digests-weekly",
            "Build and send the weekly digests.",
            lambda app: send_digests_job(app, Frequency.WEEKLY),
            lambda c: digest_trigger(c, weekly=True),
        ),
        JobSpec(
            "outbox",
            "Retry messages whose delivery failed for a transient reason.",
            deliver_outbox_job,
            lambda c: cron(c["SCHEDULER_OUTBOX_CRON"], c["SCHEDULER_TIMEZONE"]),
        ),
    )
}


def latest_fire_time(trigger: CronTrigger, now: dt.datetime, lookback: dt.timedelta) -> dt.datetime:
    """The occurrence a job firing at ``now`` belongs to: the trigger's last fire time at or before now.

    Every process computes the same value for the same occurrence, which is what the claim needs.
    """
    latest = None
    candidate = trigger.get_next_fire_time(None, now - lookback)
    while candidate is not None and candidate <= now:
        latest = candidate
        candidate = trigger.get_next_fire_time(candidate, candidate + dt.timedelta(microseconds=1))
    return (latest or now.replace(microsecond=0)).astimezone(dt.UTC)


def run_job(
    app: Flask, name: str, scheduled_for: dt.datetime | None = None, *, note: str | None = None
) -> RunResult:
    """Run one job under its lock, recording it in ``job_runs``."""
    spec = JOBS[name]
    # Reuse the caller's app context (a CLI command's): a second one would close its session on exit.
    same_app = has_app_context() and current_app._get_current_object() is app  # type: ignore[attr-defined]
    with contextlib.nullcontext() if same_app else app.app_context():
        try:
            return run_exclusive(
                get_db().session_factory,
                name,
                lambda: spec.run(app),
                ttl=dt.timedelta(seconds=app.config["SCHEDULER_LOCK_TTL_SECONDS"]),
                scheduled_for=scheduled_for,
                note=note,
                database_wait=float(app.config.get("DATABASE_RETRY_SECONDS", 30)),
            )
        finally:
            if same_app:
                # A job that failed mid-transaction (say, the database restarted) leaves the scoped
                # session unusable; the caller goes on with it (a new app context starts clean).
                get_db().session.rollback()


#: Set when the scheduler is stopping: a job waiting to be retried gives up at once.
_stopping = threading.Event()


def run_with_retries(
    app: Flask,
    name: str,
    scheduled_for: dt.datetime | None = None,
    *,
    wait: Callable[[float], bool] = _stopping.wait,
) -> list[RunResult]:
    """Run a scheduled occurrence; a failed run is run again ``SCHEDULER_RETRIES`` times at most,
    ``SCHEDULER_RETRY_SECONDS`` apart, each attempt recorded in ``job_runs`` with its outcome.

    Only the process that claimed the occurrence retries it (the retries are not occurrences of
    their own, so their rows have no ``scheduled_for``). Jobs are safe to repeat: digests are unique
    per user and period, crawls upsert. A database that could not even record the attempt (down at
    the start) counts as a failed attempt too, and the occurrence is still to be claimed.
    """
    retries = max(int(app.config.get("SCHEDULER_RETRIES", 0)), 0)
    pause = float(app.config.get("SCHEDULER_RETRY_SECONDS", 60))
    results: list[RunResult] = []
    claimed = False
    for attempt in range(retries + 1):
        note = None
        if attempt:
            occurrence = scheduled_for.isoformat() if scheduled_for else "this occurrence"
            note = f"retry {attempt} of {retries} of the run for {occurrence}"
            if wait(pause):
                log.info("job retry abandoned: the scheduler is stopping", extra={"job": name})
                break
        try:
            result = run_job(app, name, None if claimed else scheduled_for, note=note)
        except DBAPIError as exc:
            if not is_disconnect(exc):
                raise
            log.exception("job could not be recorded: database unavailable", extra={"job": name})
            results.append(RunResult(None, JobOutcome.FAILED, f"database unavailable: {exc}"))
            continue
        results.append(result)
        claimed = True
        if result.outcome != JobOutcome.FAILED:
            break
        if attempt < retries:
            log.warning(
                "job failed, will retry", extra={"job": name, "attempt": attempt + 1, "retries": retries}
            )
    return results


def _fire(app: Flask, name: str, trigger: CronTrigger) -> None:
    """What the scheduler calls: find the occurrence being fired, then run it if nobody else has."""
    grace = dt.timedelta(seconds=app.config["SCHEDULER_MISFIRE_GRACE_SECONDS"] + 60)
    run_with_retries(app, name, latest_fire_time(trigger, utcnow(), grace))


def selected_jobs(config: Mapping[str, Any], names: tuple[str, ...] = ()) -> list[str]:
    chosen = list(names) or list(config.get("SCHEDULER_JOBS") or []) or list(JOBS)
    unknown = [n for n in chosen if n not in JOBS]
    if unknown:
        raise ValueError(f"unknown job {', '.join(unknown)}; known jobs: {', '.join(JOBS)}")
    return chosen


def make_scheduler(app: Flask, names: list[str], *, blocking: bool = True) -> BaseScheduler:
    scheduler_class = BlockingScheduler if blocking else BackgroundScheduler
    scheduler: BaseScheduler = scheduler_class(
        timezone=dt.UTC,
        job_defaults={
            "coalesce": True,
            "max_instances": 1,
            "misfire_grace_time": app.config["SCHEDULER_MISFIRE_GRACE_SECONDS"],
        },
    )
    for name in names:
        trigger = JOBS[name].trigger(app.config)
        scheduler.add_job(_fire, trigger, args=[app, name, trigger], id=name, name=name)
    return scheduler


# --------------------------------------------------------------------------- commands


@click.command("scheduler")
@click.option(
    "--job", "jobs", multiple=True, help="Run only these jobs (repeatable). Default: SCHEDULER_JOBS or all."
)
@with_appcontext
def scheduler_command(jobs: tuple[str, ...]) -> None:
    """Run the job scheduler in this process until stopped (SIGTERM or Ctrl-C)."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    try:
        names = selected_jobs(app.config, jobs)
        scheduler = make_scheduler(app, names)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc

    def stop(_signum: int, _frame: FrameType | None) -> None:
        log.info("scheduler stopping")
        _stopping.set()
        scheduler.shutdown(wait=False)

    signal.signal(signal.SIGTERM, stop)
    log.info("scheduler started", extra={"jobs": names})
    for name in names:
        click.echo(f"scheduled {name}: {JOBS[name].trigger(app.config)}", err=True)
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        scheduler.shutdown(wait=False)


@click.command("run-job")
@click.argument("name", type=click.Choice(list(JOBS)))
@with_appcontext
def run_job_command(name: str) -> None:
    """Run one scheduled job now (under its lock, recorded in job_runs). Exit 1 if it failed, 3 if skipped."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    result = run_job(app, name)
    click.echo(f"{name}: {result.outcome}" + (f" — {result.detail.splitlines()[0]}" if result.detail else ""))
    if result.outcome == JobOutcome.FAILED:
        sys.exit(1)
    if result.outcome == JobOutcome.SKIPPED:
        sys.exit(3)


@click.command("send-digests")
@click.option("--dry-run", is_flag=True, help="Build and print the digests; send and record nothing.")
@click.option("--user", "user_email", default=None, help="Only this user's digest (email address).")
@click.option("--period", type=click.Choice([f.value for f in Frequency]), default=Frequency.DAILY.value)
@with_appcontext
def send_digests_command(dry_run: bool, user_email: str | None, period: str) -> None:
    """Build this period's digests into the outbox and deliver them. Safe to repeat: nobody gets two."""
    config = current_app.config
    session = db_session()
    run = digests.send_digests(
        session,
        config,
        Frequency(period),
        sender=None if dry_run else _sender(config),
        dry_run=dry_run,
        user_email=user_email,
        matcher=profile_matcher(),
        keyword=keyword_index(config),
    )
    if dry_run:
        for digest in run.digests:
            click.echo(f"--- to {digest.email}: {digest.subject}")
            if user_email:
                click.echo(digest.body_text)
        click.echo(
            f"dry run, {run.period.key}: {run.built} digests would be sent, {run.empty} with nothing new"
        )
        return
    click.echo(_describe(run))
    if run.delivery is not None and run.delivery.failed:
        sys.exit(1)


def init_app(app: Flask) -> None:
    for command in (scheduler_command, run_job_command, send_digests_command):
        app.cli.add_command(command)
