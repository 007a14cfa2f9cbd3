"""Run one source: pull its records, hand them to a sink in batches, and judge how the run went.

Flask-free: the store is behind the ``Sink`` protocol (``app.services.crawling`` implements it).
The rules that keep the catalogue safe live here:

* a source that raises (fetch failure, API error, layout change) is recorded and stops only itself;
* each batch is written by the sink in its own transaction; a batch that fails is rolled back and
  recorded, and the next batch still runs;
* zero records where the store holds active records for the source is an error, not a mass vanish;
  a full run that shrinks to under a fifth of what the store holds is written but nothing vanishes;
* records are marked vanished only after a full run that finished without any error.

A bulk source (the XML extract) may also yield ``Staged`` batches: records its parser worker already
turned into what the sink writes (``CrawlContext.stage``), so that tens of thousands of records never
cross the process boundary as objects. They are batched and written like records.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from crawlers.http import Fetcher, FetchError
from crawlers.normalize import NormalizedOpportunity

log = logging.getLogger(__name__)

BATCH_SIZE = 200
#: A full run shrinking below this share of the active records the store holds is suspicious.
SHRINK_RATIO = 0.2
SHRINK_MIN_ACTIVE = 50


class SourceError(Exception):
    """A source answered, but not with what we can use (API error code, unexpected document)."""

    kind = "source"

    def __init__(self, url: str | None, message: str) -> None:
        super().__init__(message)
        self.url = url
        self.message = message


class LayoutChanged(SourceError):
    """A page no longer has the structure its parser expects."""

    kind = "layout"


@dataclass
class ListingSnapshot:
    """The listing fields the store holds for a record, to tell whether a listing entry changed."""

    number: str | None
    title: str | None
    status: str | None
    doc_type: str | None
    post_date: dt.date | None
    close_date: dt.date | None


@dataclass
class CrawlIssue:
    kind: str
    message: str
    url: str | None = None
    record_id: str | None = None


@dataclass
class CrawlSettings:
    urls: dict[str, str] = field(default_factory=dict)
    since_days: int | None = None
    include_closed: bool = False
    today: dt.date = field(default_factory=dt.date.today)
    extract_path: str | None = None
    all_agencies: bool = False
    archive_dir: Path | None = None
    reparse: bool = False
    page_size: int = 100


class Staged(Protocol):
    """Records made ready for the store where they were parsed (opaque to the runner)."""

    @property
    def written(self) -> int:
        """Records it holds to be written (inserted, compared or re-hashed)."""
        ...

    @property
    def seen(self) -> int:
        """Records it only marks seen (unchanged)."""
        ...


#: The store side's staging step for bulk sources: (records, ids seen unchanged) → a ``Staged``.
#: Pure computation (no database), so it runs in the parser worker.
Stager = Callable[[list[NormalizedOpportunity], list[str]], Staged]

ListingLookup = Callable[[str, Sequence[str]], Mapping[str, ListingSnapshot]]
HashLookup = Callable[[str], Mapping[str, str]]


def _no_listing(_source: str, _ids: Sequence[str]) -> Mapping[str, ListingSnapshot]:
    return {}


def _no_hashes(_source: str) -> Mapping[str, str]:
    return {}


@dataclass
class CrawlContext:
    """What a source module gets: an HTTP client, settings, store lookups and a place to report."""

    http: Fetcher
    settings: CrawlSettings
    lookup: ListingLookup = _no_listing
    known_hashes: HashLookup = _no_hashes
    on_issue: Callable[[CrawlIssue], None] | None = None
    #: Set by the store side for bulk loads (see ``Stager``); sources that can use it yield ``Staged``.
    stage: Stager | None = None
    #: Set False by a source when its run did not cover everything (incremental, a page failed).
    complete: bool = True
    fetched: int = 0
    failed: int = 0
    issues: list[CrawlIssue] = field(default_factory=list)
    seen: list[str] = field(default_factory=list)

    def error(
        self,
        kind: str,
        message: str,
        *,
        url: str | None = None,
        record_id: str | None = None,
        record_failed: bool = True,
    ) -> None:
        """Report a problem that did not stop the source (one record, one page)."""
        issue = CrawlIssue(kind, message, url, record_id)
        self.issues.append(issue)
        if record_failed:
            self.failed += 1
        log.warning(
            "crawl issue", extra={"kind": kind, "url": url, "record_id": record_id, "detail": message}
        )
        if self.on_issue:
            self.on_issue(issue)

    def mark_seen(self, source_id: str) -> None:
        """A listed record that needs no rewrite (its listing is unchanged): only its last_seen moves."""
        self.seen.append(source_id)


SourceFn = Callable[[CrawlContext], Iterator[NormalizedOpportunity | Staged]]


@dataclass(frozen=True)
class SourceSpec:
    name: str
    #: The ``source`` its records are stored under.
    record_source: str
    crawl: SourceFn
    #: Whether a run with these settings covers everything the source lists (may mark vanished).
    is_full: Callable[[CrawlSettings], bool] = lambda settings: settings.since_days is None
    #: Limits vanish marking to part of the record source (e.g. the four departments).
    vanish_scope: str | None = None


@dataclass
class BatchCounts:
    new: int = 0
    updated: int = 0
    unchanged: int = 0


class Sink(Protocol):
    """The store side of a run (implemented by ``app.services.crawling``)."""

    def write(
        self,
        records: Sequence[NormalizedOpportunity],
        seen_ids: Sequence[str],
        staged: Sequence[Staged] = (),
    ) -> BatchCounts:
        """Write one batch in one transaction (commit), or roll it back and raise."""
        ...

    def active_count(self) -> int: ...

    def vanish(self) -> int:
        """Mark what this run did not see as vanished; returns how many."""
        ...

    def record_issue(self, issue: CrawlIssue) -> None: ...


@dataclass
class SourceOutcome:
    name: str
    status: str = "running"
    fetched: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    vanished: int = 0
    issues: list[CrawlIssue] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> str:
        text = (
            f"{self.name}: {self.status} — {self.fetched} fetched, {self.new} new, {self.updated} updated, "
            f"{self.unchanged} unchanged, {self.failed} failed, {self.vanished} vanished"
        )
        if self.issues:
            text += f", {len(self.issues)} error(s): {self.issues[0].message}"
        return text


def run_source(
    spec: SourceSpec,
    ctx: CrawlContext,
    sink: Sink,
    *,
    batch_size: int = BATCH_SIZE,
    progress: Callable[[SourceOutcome], None] | None = None,
) -> SourceOutcome:
    """Crawl one source into the sink; never raises for a source failure (it is recorded)."""
    started = time.perf_counter()
    outcome = SourceOutcome(spec.name)
    ctx.on_issue = sink.record_issue
    active_before = sink.active_count()
    batch: list[NormalizedOpportunity] = []
    staged: list[Staged] = []
    staged_written = staged_seen = 0
    fatal: CrawlIssue | None = None
    produced = 0
    seen_total = 0

    def flush() -> None:
        nonlocal batch, seen_total, staged, staged_written, staged_seen
        seen = list(ctx.seen)
        if not batch and not seen and not staged:
            return
        records, batch = batch, []
        ready, staged, written = staged, [], staged_written
        staged_written = staged_seen = 0
        ctx.seen.clear()
        seen_total += len(seen)
        try:
            counts = sink.write(records, seen, ready)
        except Exception as exc:
            ctx.complete = False
            ctx.error(
                "store",
                f"batch of {len(records) + written} records not stored, rolled back: "
                f"{type(exc).__name__}: {exc}",
                record_failed=False,
            )
            ctx.failed += len(records) + written
            log.exception("crawl batch failed", extra={"source": spec.name})
            return
        outcome.new += counts.new
        outcome.updated += counts.updated
        outcome.unchanged += counts.unchanged
        if progress:
            outcome.fetched = ctx.fetched
            outcome.failed = ctx.failed
            progress(outcome)

    try:
        for item in spec.crawl(ctx):
            if isinstance(item, NormalizedOpportunity):
                batch.append(item)
                produced += 1
            else:
                staged.append(item)
                staged_written += item.written
                staged_seen += item.seen
                produced += item.written + item.seen
            if (
                len(batch) + staged_written >= batch_size
                or len(ctx.seen) + staged_seen >= batch_size * 10
            ):
                flush()
        flush()
    except (FetchError, SourceError) as exc:
        fatal = CrawlIssue(exc.kind, exc.message, exc.url)
    except Exception as exc:
        log.exception("crawler crashed", extra={"source": spec.name})
        fatal = CrawlIssue("crash", f"{type(exc).__name__}: {exc}")
    if fatal is not None:
        ctx.complete = False
        flush()  # records parsed before the failure are whole; keep them
        ctx.issues.append(fatal)
        sink.record_issue(fatal)
        log.warning("crawl source failed", extra={"source": spec.name, "detail": fatal.message})

    produced += seen_total
    total_seen = outcome.new + outcome.updated + outcome.unchanged
    guard: CrawlIssue | None = None
    if fatal is None and produced == 0 and active_before > 0:
        guard = CrawlIssue(
            "empty_result",
            f"{spec.name} returned no opportunities while the store holds {active_before} active ones from "
            "it; the page layout or the API may have changed. Nothing was marked vanished.",
        )
    elif (
        fatal is None
        and spec.is_full(ctx.settings)
        and active_before >= SHRINK_MIN_ACTIVE
        and total_seen < active_before * SHRINK_RATIO
    ):
        guard = CrawlIssue(
            "shrunk",
            f"{spec.name} listed {total_seen} opportunities where the store holds {active_before}; "
            "not marking the rest vanished.",
        )
    if guard is not None:
        ctx.issues.append(guard)
        sink.record_issue(guard)

    outcome.fetched = ctx.fetched
    outcome.failed = ctx.failed
    outcome.issues = list(ctx.issues)
    if not ctx.issues and ctx.complete and spec.is_full(ctx.settings) and not ctx.settings.reparse:
        outcome.vanished = sink.vanish()

    if (fatal is not None and total_seen == 0) or (guard is not None and guard.kind == "empty_result"):
        outcome.status = "failed"
    elif ctx.issues:
        outcome.status = "partial"
    else:
        outcome.status = "succeeded"
    outcome.seconds = time.perf_counter() - started
    log.info(
        "crawl source finished",
        extra={
            "source": spec.name,
            "status": outcome.status,
            "fetched": outcome.fetched,
            "new": outcome.new,
            "updated": outcome.updated,
            "unchanged": outcome.unchanged,
            "failed": outcome.failed,
            "vanished": outcome.vanished,
            "errors": len(outcome.issues),
            "seconds": round(outcome.seconds, 2),
        },
    )
    return outcome
