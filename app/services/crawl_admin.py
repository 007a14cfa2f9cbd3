"""Crawl operations for admins: runs with counts and errors, archived payloads, and "run a source now"."""

from __future__ import annotations

import gzip
import logging
import os
import subprocess
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import CrawlPayload, CrawlRun
from app.services.paging import Paged, paged
from crawlers.registry import SOURCES

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent.parent


class CrawlAdminError(ValueError):
    """A crawl operation that cannot be done, with a message for the admin."""


def runs(session: Session, *, source: str = "", page: int = 1, per_page: int = 25) -> Paged[CrawlRun]:
    query = select(CrawlRun)
    if source:
        query = query.where(CrawlRun.source == source)
    return paged(session, query.order_by(CrawlRun.started_at.desc(), CrawlRun.id.desc()), page, per_page)


def crawlable() -> list[str]:
    """The sources the crawlers can run now."""
    return list(SOURCES)


def sources(session: Session) -> list[str]:
    """Every source the crawlers know, plus any that ran before (for filtering the run list)."""
    return sorted(set(SOURCES) | set(session.scalars(select(CrawlRun.source).distinct())))


def last_runs(session: Session) -> list[CrawlRun]:
    """The latest run of every source."""
    latest = select(CrawlRun.source, func.max(CrawlRun.id).label("id")).group_by(CrawlRun.source).subquery()
    query = select(CrawlRun).join(latest, latest.c.id == CrawlRun.id).order_by(CrawlRun.source)
    return list(session.scalars(query))


@dataclass(frozen=True)
class PayloadFile:
    """An archived response, decompressed, as a download (never rendered as HTML)."""

    body: bytes
    mimetype: str
    filename: str


def payload(session: Session, payload_id: int) -> PayloadFile | None:
    item = session.get(CrawlPayload, payload_id)
    if item is None:
        return None
    try:
        body = gzip.decompress(item.body_gz)
    except (OSError, EOFError, zlib.error):
        # Stored uncompressed by an older archiver: hand it over as it is.
        body = item.body_gz
    is_json = "json" in (item.content_type or "").lower()
    return PayloadFile(
        body=body,
        mimetype="application/json" if is_json else "text/plain",
        filename=f"crawl-{item.run_id}-payload-{item.id}.{'json' if is_json else 'txt'}",
    )


def crawl_command(source: str) -> list[str]:
    """The crawlers' own command (``services.crawling.run_crawl`` behind ``flask crawl``)."""
    return [sys.executable, "-m", "flask", "--app", "wsgi", "crawl", "--source", source]


def start_crawl(source: str, database_url: str) -> int:
    """Start a crawl of one source in its own process and return at once; returns the process id.

    A separate process (not a thread of this web worker) so the crawl survives the request, never
    blocks a gunicorn worker, and writes its own ``crawl_runs`` row like a scheduled crawl.
    """
    source = source.strip()
    if source not in SOURCES:
        raise CrawlAdminError(f"choose one of the sources: {', '.join(SOURCES)}")
    env = dict(os.environ, DATABASE_URL=database_url)
    process = subprocess.Popen(
        crawl_command(source),
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    log.info("crawl started by an admin", extra={"source": source, "pid": process.pid})
    return process.pid
