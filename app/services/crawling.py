"""Crawl runs against the store: run rows, errors, raw-payload archive, batches, merging, vanishing.

``crawlers`` fetch and parse; this module is the store side of a run:

* every run is a ``crawl_runs`` row with counts and status; each error is a ``crawl_errors`` row with
  the URL and a message; every response body is kept gzip-compressed in ``crawl_payloads`` (bookkeeping
  goes through its own session and commits at once, so a rolled-back batch never loses it);
* a run holds a lease in ``job_locks`` (``crawl-run:<id>``) while it runs; a run left ``running``
  whose lease is gone (its process died, or could not reach the database to record its end within
  ``DATABASE_RETRY_SECONDS``) is marked failed, as abandoned, by the next run of any source;
* the bookkeeping waits for a restarting database (``app.db.retry_on_disconnect``); a batch whose
  connection dies is rolled back whole (no half-written opportunity) and recorded as not stored;
* ``StoreSink.write`` stores one batch in one transaction (``upsert_many`` + merge), then commits;
  a bulk load's batches arrive staged by its parser worker (``app.services.bulk_load``);
* agency records (OJP, DOL ETA, ED, SAMHSA) are merged into the Grants.gov record of the same
  opportunity number: the Grants.gov row stays the one exported, gaps in it are filled from the
  agency record (second deadline, agency page, forecast dates …) and ``field_sources`` names where
  each filled field came from; the agency row is kept, linked by ``merged_into_id``.
"""

from __future__ import annotations

import datetime as dt
import gzip
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, and_, func, select
from sqlalchemy.orm import Session, sessionmaker

from app.db import retry_on_disconnect, utcnow
from app.models import (
    CrawlError,
    CrawlPayload,
    CrawlRun,
    CrawlStatus,
    HttpCacheEntry,
    JobLock,
    Opportunity,
)
from app.services import bulk_load, joblock
from app.services.opportunities import COLUMN_FOR_FIELD, DEFER_SYNC_KEY, upsert_many
from crawlers.codes import DEPARTMENT_AGENCY_CODES
from crawlers.http import ArchivedPayload, CachedValidators, Fetcher, HttpClient, HttpSettings, ReplayClient
from crawlers.normalize import CONTENT_FIELDS, NormalizedOpportunity
from crawlers.registry import AGENCY_SOURCES, EXTRACT, PRIMARY_SOURCE, SOURCES
from crawlers.runner import (
    BatchCounts,
    CrawlContext,
    CrawlIssue,
    CrawlSettings,
    ListingSnapshot,
    SourceOutcome,
    SourceSpec,
    Staged,
    run_source,
)

log = logging.getLogger(__name__)

CORE = tuple(DEPARTMENT_AGENCY_CODES)
SOURCE_URL_KEYS = (
    "GRANTS_GOV_API_URL",
    "GRANTS_GOV_EXTRACT_URL",
    "OJP_FUNDING_URL",
    "DOL_ETA_URL",
    "ED_FORECAST_URL",
    "SAMHSA_NOFO_URL",
)
#: A merged record always takes these from the agency when it has them.
AGENCY_OWNED_FIELDS = ("agency_url", "second_close_date", "second_close_date_label")
#: Never copied from an agency record onto the Grants.gov one.
NOT_MERGED = ("number", "agency", "status", "doc_type", "url", "version")


def http_settings(config: Mapping[str, Any]) -> HttpSettings:
    return HttpSettings(
        contact=str(config.get("CRAWL_CONTACT") or "ops@cvi-funding-finder.invalid"),
        timeout=float(config.get("CRAWL_TIMEOUT", 30.0)),
        deadline=float(config.get("CRAWL_REQUEST_DEADLINE", 120.0)) or None,
        max_retries=int(config.get("CRAWL_MAX_RETRIES", 4)),
        backoff_base=float(config.get("CRAWL_BACKOFF", 1.0)),
        max_retry_after=float(config.get("CRAWL_MAX_RETRY_AFTER", 300.0)),
        min_interval=float(config.get("CRAWL_MIN_INTERVAL", 1.0)),
        respect_robots=bool(config.get("CRAWL_RESPECT_ROBOTS", True)),
    )


class DbValidatorCache:
    """Conditional-GET validators in the ``http_cache`` table (body kept gzip-compressed)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, url: str) -> CachedValidators | None:
        entry = self.session.scalar(select(HttpCacheEntry).where(HttpCacheEntry.url == url[:2000]))
        self.session.commit()  # hold no connection across the request that follows
        if entry is None:
            return None
        body = gzip.decompress(entry.body_gz) if entry.body_gz is not None else None
        return CachedValidators(entry.etag, entry.last_modified, body)

    def put(self, url: str, etag: str | None, last_modified: str | None, body: bytes) -> None:
        entry = self.session.scalar(select(HttpCacheEntry).where(HttpCacheEntry.url == url[:2000]))
        if entry is None:
            entry = HttpCacheEntry(url=url[:2000])
            self.session.add(entry)
        entry.etag = etag[:500] if etag else None
        entry.last_modified = last_modified[:100] if last_modified else None
        entry.body_gz = gzip.compress(body, 6)
        entry.updated_at = utcnow()
        self.session.commit()


def lease_name(run_id: int) -> str:
    """The ``job_locks`` row a crawl run holds while it runs."""
    return f"crawl-run:{run_id}"


ABANDONED = (
    "abandoned: the process running it stopped, or lost the database, before recording how the run "
    "ended; batches it stored are kept whole, and the next run of the source covers the rest"
)


def mark_abandoned(session: Session, now: dt.datetime | None = None) -> list[int]:
    """Mark failed every run left ``running`` whose lease is gone or expired; returns their ids."""
    now = now or utcnow()
    running = list(session.scalars(select(CrawlRun).where(CrawlRun.status == CrawlStatus.RUNNING)))
    if not running:
        session.commit()
        return []
    leases = {
        lock.name: lock
        for lock in session.scalars(
            select(JobLock).where(JobLock.name.in_([lease_name(run.id) for run in running]))
        )
    }
    abandoned = []
    for run in running:
        lease = leases.get(lease_name(run.id))
        if lease is not None and lease.holder is not None and lease.expires_at and lease.expires_at >= now:
            continue  # alive: its process renews the lease
        run.status = CrawlStatus.FAILED
        run.finished_at = now
        run.summary = f"{run.source}: failed — {ABANDONED}"
        session.add(CrawlError(run_id=run.id, occurred_at=now, kind="abandoned", message=ABANDONED))
        if lease is not None:
            session.delete(lease)
        abandoned.append(run.id)
        log.warning("crawl run abandoned", extra={"run_id": run.id, "source": run.source})
    session.commit()
    return abandoned


class RunRecorder:
    """The ``crawl_runs`` row of one source run, its lease, its errors and its archived payloads.

    Each write commits at once and is retried while the database is unreachable (for up to
    ``database_wait`` seconds), so a database restart neither loses an error nor leaves the run
    ``running``.
    """

    def __init__(
        self,
        session: Session,
        source: str,
        *,
        mode: str,
        params: dict[str, Any],
        reparse_of_id: int | None = None,
        lease_ttl: dt.timedelta = dt.timedelta(minutes=5),
        database_wait: float = 30.0,
    ) -> None:
        self.session = session
        self.holder = joblock.make_holder()
        self.lease_ttl = lease_ttl
        self.database_wait = database_wait
        self.run = CrawlRun(
            source=source,
            mode=mode,
            params=params,
            started_at=utcnow(),
            status=CrawlStatus.RUNNING,
            reparse_of_id=reparse_of_id,
        )
        session.add(self.run)
        session.flush()
        self._run_id = self.run.id
        # The run row and its lease are committed together: no moment where it looks abandoned.
        joblock.acquire(session, self.lease, self.holder, lease_ttl)

    @property
    def run_id(self) -> int:
        return self._run_id

    @property
    def lease(self) -> str:
        return lease_name(self._run_id)

    def _write(self, what: str, work: Callable[[], None]) -> None:
        retry_on_disconnect(
            self.session, work, seconds=self.database_wait, what=f"crawl run {self._run_id} {what}"
        )

    def archive(self, payload: ArchivedPayload) -> None:
        fetched_at = utcnow()

        def write() -> None:
            self.session.add(
                CrawlPayload(
                    run_id=self._run_id,
                    url=payload.url[:2000],
                    method=payload.method,
                    request_body=payload.request_body,
                    status_code=payload.status,
                    content_type=(payload.content_type or "")[:200] or None,
                    fetched_at=fetched_at,
                    body_gz=gzip.compress(payload.body, 6),
                )
            )
            self.session.commit()

        self._write("payload", write)

    def record_issue(self, issue: CrawlIssue) -> None:
        occurred_at = utcnow()

        def write() -> None:
            self.session.add(
                CrawlError(
                    run_id=self._run_id,
                    occurred_at=occurred_at,
                    url=issue.url[:2000] if issue.url else None,
                    kind=issue.kind[:60],
                    message=issue.message,
                    record_id=issue.record_id[:200] if issue.record_id else None,
                )
            )
            self.session.commit()

        self._write("error", write)

    def finish(self, outcome: SourceOutcome) -> None:
        finished_at = utcnow()

        def write() -> None:
            run = self.run
            run.finished_at = finished_at
            run.status = CrawlStatus(outcome.status)
            run.fetched = outcome.fetched
            run.new = outcome.new
            run.updated = outcome.updated
            run.unchanged = outcome.unchanged
            run.failed = outcome.failed
            run.vanished = outcome.vanished
            run.summary = outcome.summary()
            self.session.commit()
            joblock.forget(self.session, self.lease, self.holder)

        self._write("outcome", write)


# ---------------------------------------------------------------------------------------------
# Merging agency records with the Grants.gov record of the same opportunity number.
# ---------------------------------------------------------------------------------------------


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == []


def record_from_row(row: Opportunity) -> NormalizedOpportunity:
    """The stored opportunity as a record again (its content only; the store's own fields stay)."""
    data: dict[str, Any] = dict(row.extra or {})
    for name in CONTENT_FIELDS:
        data[name] = getattr(row, COLUMN_FOR_FIELD.get(name, name))
    data.update(id=row.source_id, source=row.source, status=str(row.status))
    return NormalizedOpportunity.model_validate(data)


def merge_into(
    primary: NormalizedOpportunity,
    agency_records: Sequence[NormalizedOpportunity],
    previous_sources: Mapping[str, Any] | None = None,
) -> tuple[NormalizedOpportunity, dict[str, str]]:
    """The primary record with what only the agency records have; and which field came from where.

    Gaps (empty fields) are filled; ``AGENCY_OWNED_FIELDS`` and fields an agency filled before
    (``previous_sources``) follow the agency's current value.
    """
    previous = dict(previous_sources or {})
    values = primary.model_dump()
    sources: dict[str, str] = {}
    for agency in agency_records:
        for name in CONTENT_FIELDS:
            if name in NOT_MERGED:
                continue
            value = getattr(agency, name)
            if _empty(value):
                continue
            owned = name in AGENCY_OWNED_FIELDS or previous.get(name) == agency.source
            if (owned and name not in sources) or (_empty(values.get(name)) and name not in sources):
                values[name] = value
                sources[name] = agency.source
    values.update(primary.extra_fields())
    merged = NormalizedOpportunity.model_validate(values)
    merged.source_hash = primary.source_hash if not sources else None
    return merged, sources


def _agency_rows_by_number(session: Session, numbers: Iterable[str]) -> dict[str, list[Opportunity]]:
    found: dict[str, list[Opportunity]] = {}
    wanted = sorted({n for n in numbers if n})
    for start in range(0, len(wanted), 500):
        rows = session.scalars(
            select(Opportunity)
            .where(
                Opportunity.number.in_(wanted[start : start + 500]), Opportunity.source.in_(AGENCY_SOURCES)
            )
            .order_by(Opportunity.id)
        )
        for row in rows:
            found.setdefault(row.number or "", []).append(row)
    return found


def _primary_rows_by_number(session: Session, numbers: Iterable[str]) -> dict[str, Opportunity]:
    found: dict[str, Opportunity] = {}
    wanted = sorted({n for n in numbers if n})
    for start in range(0, len(wanted), 500):
        rows = session.scalars(
            select(Opportunity)
            .where(
                Opportunity.number.in_(wanted[start : start + 500]),
                Opportunity.source == PRIMARY_SOURCE,
                Opportunity.merged_into_id.is_(None),
            )
            .order_by(Opportunity.id)
        )
        for row in rows:
            found[row.number or ""] = row  # the newest Grants.gov row of a number wins
    return found


def _link(session: Session, primary_id: int, agency_ids: list[int], sources: dict[str, str]) -> None:
    """Point the agency rows at the Grants.gov row and name the sources of the fields they filled."""
    for agency_id in agency_ids:
        agency = session.get(Opportunity, agency_id)
        if agency is not None and agency.merged_into_id != primary_id:
            agency.merged_into_id = primary_id
    primary = session.get(Opportunity, primary_id)
    if primary is not None and (primary.field_sources or {}) != sources:
        primary.field_sources = dict(sources)
    session.flush()


# ---------------------------------------------------------------------------------------------
# The sink: one batch, one transaction.
# ---------------------------------------------------------------------------------------------


@dataclass
class StoreSink:
    session: Session
    recorder: RunRecorder
    spec: SourceSpec
    scope_core: bool = True
    started_at: dt.datetime = field(default_factory=utcnow)
    #: A bulk load's snapshot of the source; with it the sink counts and vanishes from what the
    #: snapshot held and the run did not see, instead of scanning the table.
    snapshot: bulk_load.Snapshot | None = None
    seen_store_ids: set[int] = field(default_factory=set)

    def _scope(self) -> ColumnElement[bool] | None:
        if self.spec.vanish_scope == "core" and self.scope_core:
            return Opportunity.department.in_(CORE)
        return None

    def _scope_departments(self) -> tuple[str, ...] | None:
        return CORE if self.spec.vanish_scope == "core" and self.scope_core else None

    def active_count(self) -> int:
        if self.snapshot is not None:
            return len(self.snapshot.active_ids(self._scope_departments()))
        condition = and_(Opportunity.source == self.spec.record_source, Opportunity.vanished_at.is_(None))
        scope = self._scope()
        if scope is not None:
            condition = and_(condition, scope)
        count = self.session.scalar(select(func.count()).select_from(Opportunity).where(condition)) or 0
        self.session.commit()
        return int(count)

    def record_issue(self, issue: CrawlIssue) -> None:
        self.recorder.record_issue(issue)

    def write(
        self,
        records: Sequence[NormalizedOpportunity],
        seen_ids: Sequence[str],
        staged: Sequence[Staged] = (),
    ) -> BatchCounts:
        now = utcnow()
        session = self.session
        try:
            counts = self._write(records, seen_ids, now, staged)
            session.commit()
        except Exception:
            session.rollback()
            raise
        return counts

    def _write(
        self,
        records: Sequence[NormalizedOpportunity],
        seen_ids: Sequence[str],
        now: dt.datetime,
        staged: Sequence[Staged] = (),
    ) -> BatchCounts:
        session = self.session
        run_id = self.recorder.run_id
        counts = BatchCounts()
        if staged:
            # Staged rows first: a record seen twice in one file is then compared with its insert.
            rows = [part for part in staged if isinstance(part, bulk_load.StagedRows)]
            if len(rows) != len(staged):
                raise TypeError("a bulk load's batches are staged by app.services.bulk_load")
            written = bulk_load.write_staged(session, rows, now)
            counts.new, counts.unchanged = written.new, written.unchanged
            self.seen_store_ids.update(written.seen_ids)
            records = [*written.records, *records]
        if self.snapshot is not None:
            self.seen_store_ids.update(self.snapshot.store_ids([*(r.id for r in records), *seen_ids]))
        if self.spec.record_source == PRIMARY_SOURCE:
            records, links = self._enrich_primary(records)
        else:
            links = {}
        if records:
            result = upsert_many(session, records, crawl_run_id=run_id, now=now)
            self.seen_store_ids.update(result.new_ids)
            counts.new += result.new
            counts.updated += result.updated
            counts.unchanged += result.unchanged
        if seen_ids:
            counts.unchanged += touch_seen(session, self.spec.record_source, seen_ids, now)
        if links:
            primary_ids = dict(
                session.execute(
                    select(Opportunity.source_id, Opportunity.id).where(
                        Opportunity.source == PRIMARY_SOURCE, Opportunity.source_id.in_(list(links))
                    )
                ).all()
            )
            for source_id, (agency_ids, sources) in links.items():
                if source_id in primary_ids:
                    _link(session, primary_ids[source_id], agency_ids, sources)
        if self.spec.record_source in AGENCY_SOURCES and records:
            self._merge_agency(records, now, run_id)
        return counts

    def _enrich_primary(
        self, records: Sequence[NormalizedOpportunity]
    ) -> tuple[list[NormalizedOpportunity], dict[str, tuple[list[int], dict[str, str]]]]:
        agency_rows = _agency_rows_by_number(self.session, (r.number or "" for r in records))
        if not agency_rows:
            return list(records), {}
        enriched: list[NormalizedOpportunity] = []
        links: dict[str, tuple[list[int], dict[str, str]]] = {}
        for record in records:
            rows = agency_rows.get(record.number or "")
            if not rows:
                enriched.append(record)
                continue
            merged, sources = merge_into(record, [record_from_row(r) for r in rows])
            enriched.append(merged)
            links[record.id] = ([r.id for r in rows], sources)
        return enriched, links

    def _merge_agency(self, records: Sequence[NormalizedOpportunity], now: dt.datetime, run_id: int) -> None:
        session = self.session
        numbers = {r.number for r in records if r.number}
        primaries = _primary_rows_by_number(session, numbers)
        if not primaries:
            return
        agency_rows = _agency_rows_by_number(session, primaries)
        for number, primary in primaries.items():
            rows = agency_rows.get(number) or []
            if not rows:
                continue
            merged, sources = merge_into(
                record_from_row(primary), [record_from_row(r) for r in rows], primary.field_sources
            )
            merged.source_hash = None
            upsert_many(session, [merged], crawl_run_id=run_id, now=now)
            _link(session, primary.id, [r.id for r in rows], sources)
            log.info(
                "agency record merged",
                extra={"number": number, "primary_id": primary.id, "fields": sorted(sources)},
            )

    def vanish(self) -> int:
        from app.services.opportunities import mark_vanished

        among = None
        if self.snapshot is not None:
            seen = self.seen_store_ids
            among = [i for i in self.snapshot.active_ids(self._scope_departments()) if i not in seen]
        try:
            count = mark_vanished(
                self.session,
                self.spec.record_source,
                self.started_at,
                crawl_run_id=self.recorder.run_id,
                scope=self._scope(),
                among=among,
            )
            self.session.commit()
        except Exception:
            self.session.rollback()
            raise
        return count


def touch_seen(session: Session, source: str, source_ids: Sequence[str], now: dt.datetime) -> int:
    """Move ``last_seen`` of listed, unchanged records (not vanished ones: those need a rewrite).

    One statement per batch on PostgreSQL (a join with ``unnest(array)``, so the unique index is
    probed per id even before the table has statistics), one ``executemany`` over the
    unique (source, source_id) index on SQLite: a nightly extract touches ~43,000 rows, and
    compiling 900-parameter ``IN`` lists through the ORM cost more than the updates themselves.
    """
    ids = list(dict.fromkeys(source_ids))
    if not ids:
        return 0
    connection = session.connection()
    dialect = connection.dialect
    process = Opportunity.__table__.c.last_seen.type._cached_bind_processor(dialect)
    stamp = process(now) if process else now
    if dialect.name == "postgresql":
        result = connection.exec_driver_sql(
            "UPDATE opportunities AS o SET last_seen = %(stamp)s "
            "FROM unnest(%(ids)s::varchar[]) AS seen(source_id) "
            "WHERE o.source = %(source)s AND o.source_id = seen.source_id AND o.vanished_at IS NULL",
            {"stamp": stamp, "source": source, "ids": ids},
        )
        return int(result.rowcount or 0)
    touched = 0
    for start in range(0, len(ids), 5000):
        result = connection.exec_driver_sql(
            "UPDATE opportunities SET last_seen = ? "
            "WHERE source = ? AND source_id = ? AND vanished_at IS NULL",
            [(stamp, source, source_id) for source_id in ids[start : start + 5000]],
        )
        touched += int(result.rowcount or 0)
    return touched


def listing_lookup(session: Session) -> Callable[[str, Sequence[str]], Mapping[str, ListingSnapshot]]:
    def lookup(source: str, ids: Sequence[str]) -> Mapping[str, ListingSnapshot]:
        found: dict[str, ListingSnapshot] = {}
        wanted = list(ids)
        for start in range(0, len(wanted), 500):
            rows = session.execute(
                select(
                    Opportunity.source_id,
                    Opportunity.number,
                    Opportunity.title,
                    Opportunity.status,
                    Opportunity.doc_type,
                    Opportunity.post_date,
                    Opportunity.close_date,
                ).where(
                    Opportunity.source == source,
                    Opportunity.source_id.in_(wanted[start : start + 500]),
                    Opportunity.vanished_at.is_(None),
                )
            ).all()
            for source_id, number, title, status, doc_type, post, close in rows:
                found[source_id] = ListingSnapshot(number, title, str(status), doc_type, post, close)
        session.commit()
        return found

    return lookup


def hash_lookup(session: Session) -> Callable[[str], Mapping[str, str]]:
    def known(source: str) -> Mapping[str, str]:
        rows = session.execute(
            select(Opportunity.source_id, Opportunity.source_hash).where(
                Opportunity.source == source,
                Opportunity.source_hash.is_not(None),
                Opportunity.vanished_at.is_(None),
            )
        ).all()
        session.commit()
        return {source_id: digest for source_id, digest in rows if digest}

    return known


# ---------------------------------------------------------------------------------------------
# Entry points used by the CLI and the scheduler.
# ---------------------------------------------------------------------------------------------

HttpFactory = Callable[[Mapping[str, Any], RunRecorder, Session], Fetcher]
Progress = Callable[[SourceOutcome], None]


def default_http(config: Mapping[str, Any], recorder: RunRecorder, log_session: Session) -> Fetcher:
    return HttpClient(http_settings(config), cache=DbValidatorCache(log_session), archive=recorder.archive)


def _settings(config: Mapping[str, Any], **values: Any) -> CrawlSettings:
    settings = CrawlSettings(
        urls={key: str(config.get(key) or "") for key in SOURCE_URL_KEYS},
        archive_dir=Path(str(config.get("CRAWL_ARCHIVE_DIR") or "instance/crawl-archive")),
        page_size=int(config.get("CRAWL_PAGE_SIZE", 100)),
        today=dt.date.today(),
    )
    for key, value in values.items():
        setattr(settings, key, value)
    return settings


def _run_one(
    spec: SourceSpec,
    data_session: Session,
    session_factory: sessionmaker[Session],
    config: Mapping[str, Any],
    settings: CrawlSettings,
    *,
    mode: str,
    params: dict[str, Any],
    http_factory: HttpFactory | None,
    progress: Progress | None,
    reparse_of: CrawlRun | None = None,
    batch_size: int = 200,
    bulk: bool = False,
) -> tuple[int | None, SourceOutcome]:
    """Run one source with its own ``crawl_runs`` row; ``bulk`` leaves matching's re-index of what
    changed to the next ``reindex`` (``DEFER_SYNC_KEY``) instead of doing it after every batch."""
    log_session = session_factory()
    recorder: RunRecorder | None = None
    if bulk:
        data_session.info[DEFER_SYNC_KEY] = True
    try:
        mark_abandoned(log_session)
        recorder = RunRecorder(
            log_session,
            spec.name,
            mode=mode,
            params=params,
            reparse_of_id=reparse_of.id if reparse_of else None,
            lease_ttl=dt.timedelta(seconds=float(config.get("SCHEDULER_LOCK_TTL_SECONDS", 300))),
            database_wait=float(config.get("DATABASE_RETRY_SECONDS", 30)),
        )
        if reparse_of is not None:
            http: Fetcher = ReplayClient(load_payloads(log_session, reparse_of.id))
        else:
            http = (http_factory or default_http)(config, recorder, log_session)
        sink = StoreSink(data_session, recorder, spec, scope_core=not settings.all_agencies)
        ctx = CrawlContext(
            http=http,
            settings=settings,
            lookup=listing_lookup(data_session) if reparse_of is None else (lambda _s, _i: {}),
            known_hashes=hash_lookup(data_session) if reparse_of is None else (lambda _s: {}),
        )
        if bulk:
            merge_sources = AGENCY_SOURCES if spec.record_source == PRIMARY_SOURCE else ()
            stager, snapshot = bulk_load.stager_for(data_session, spec.record_source, merge_sources)
            ctx.stage = stager
            ctx.known_hashes = lambda _source: snapshot.known_hashes()
            sink.snapshot = snapshot
        with joblock.Heartbeat(session_factory, recorder.lease, recorder.holder, recorder.lease_ttl):
            outcome = run_source(spec, ctx, sink, batch_size=batch_size, progress=progress)
        recorder.finish(outcome)
        return recorder.run_id, outcome
    except Exception as exc:
        log.exception("crawl run could not be completed", extra={"source": spec.name})
        data_session.rollback()
        log_session.rollback()
        outcome = SourceOutcome(spec.name, status="failed")
        outcome.issues.append(CrawlIssue("crash", f"{type(exc).__name__}: {exc}"))
        if recorder is not None:
            try:
                recorder.record_issue(outcome.issues[0])
                recorder.finish(outcome)
            except Exception:
                # Left ``running``; once its lease expires the next run marks it abandoned.
                log.exception("crawl run outcome not recorded", extra={"run_id": recorder.run_id})
                log_session.rollback()
        return (recorder.run_id if recorder else None), outcome
    finally:
        data_session.info.pop(DEFER_SYNC_KEY, None)
        log_session.close()


def run_crawl(
    data_session: Session,
    session_factory: sessionmaker[Session],
    config: Mapping[str, Any],
    names: Sequence[str] | None = None,
    *,
    since_days: int | None = None,
    include_closed: bool = False,
    http_factory: HttpFactory | None = None,
    progress: Progress | None = None,
) -> list[tuple[int | None, SourceOutcome]]:
    """Crawl the named sources (all when none), one after another; one failing never stops the rest."""
    chosen = list(names or SOURCES)
    unknown = [n for n in chosen if n not in SOURCES]
    if unknown:
        raise ValueError(f"unknown source(s): {', '.join(unknown)}; known: {', '.join(SOURCES)}")
    results = []
    for name in chosen:
        spec = SOURCES[name]
        settings = _settings(config, since_days=since_days, include_closed=include_closed)
        params = {"since_days": since_days, "include_closed": include_closed}
        mode = "incremental" if since_days is not None else "full"
        results.append(
            _run_one(
                spec,
                data_session,
                session_factory,
                config,
                settings,
                mode=mode,
                params=params,
                http_factory=http_factory,
                progress=progress,
                batch_size=int(config.get("CRAWL_BATCH_SIZE", 100)),
            )
        )
    return results


def ingest_extract(
    data_session: Session,
    session_factory: sessionmaker[Session],
    config: Mapping[str, Any],
    path: str,
    *,
    all_agencies: bool = False,
    http_factory: HttpFactory | None = None,
    progress: Progress | None = None,
) -> tuple[int | None, SourceOutcome]:
    """Load a Grants.gov XML extract (.zip, .xml or URL) into the store."""
    settings = _settings(config, extract_path=path, all_agencies=all_agencies)
    return _run_one(
        EXTRACT,
        data_session,
        session_factory,
        config,
        settings,
        mode="full",
        params={"path": path, "all_agencies": all_agencies},
        http_factory=http_factory,
        progress=progress,
        batch_size=int(config.get("EXTRACT_BATCH_SIZE", 1000)),
        bulk=True,
    )


def load_payloads(session: Session, run_id: int) -> list[ArchivedPayload]:
    payloads = []
    for row in session.scalars(
        select(CrawlPayload).where(CrawlPayload.run_id == run_id).order_by(CrawlPayload.id)
    ):
        payloads.append(
            ArchivedPayload(
                url=row.url,
                method=row.method,
                request_body=row.request_body,
                status=row.status_code,
                content_type=row.content_type,
                body=gzip.decompress(row.body_gz),
            )
        )
    return payloads


def reparse_run(
    data_session: Session,
    session_factory: sessionmaker[Session],
    config: Mapping[str, Any],
    run_id: int,
    *,
    progress: Progress | None = None,
) -> tuple[int | None, SourceOutcome]:
    """Parse the archived payloads of run ``run_id`` again with today's parsers (no network)."""
    with session_factory() as lookup_session:
        original = lookup_session.get(CrawlRun, run_id)
        if original is None:
            raise ValueError(f"no crawl run {run_id}")
        lookup_session.expunge(original)
    params = dict(original.params or {})
    if original.source == EXTRACT.name:
        path = str(params.get("path") or "")
        settings = _settings(
            config, extract_path=path, all_agencies=bool(params.get("all_agencies")), reparse=True
        )
        return _run_one(
            EXTRACT,
            data_session,
            session_factory,
            config,
            settings,
            mode="reparse",
            params={**params, "reparse_of": run_id},
            http_factory=lambda *_: ReplayClient([]),
            progress=progress,
            batch_size=int(config.get("EXTRACT_BATCH_SIZE", 1000)),
            bulk=True,
        )
    spec = SOURCES.get(original.source)
    if spec is None:
        raise ValueError(f"run {run_id} is of unknown source {original.source!r}")
    settings = _settings(
        config,
        since_days=params.get("since_days"),
        include_closed=bool(params.get("include_closed")),
        reparse=True,
    )
    return _run_one(
        spec,
        data_session,
        session_factory,
        config,
        settings,
        mode="reparse",
        params={**params, "reparse_of": run_id},
        http_factory=None,
        progress=progress,
        reparse_of=original,
    )
