"""Operations: crawl runs and their errors, the email outbox, scheduler jobs, rate-limit counters."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Date, ForeignKey, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base, utcnow
from app.models.enums import CrawlStatus, JobOutcome, OutboxStatus


class CrawlRun(Base):
    """One run of one source: when, what it found, and how it ended."""

    __tablename__ = "crawl_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(60), index=True)
    mode: Mapped[str] = mapped_column(String(30), default="full")
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    finished_at: Mapped[dt.datetime | None] = mapped_column()
    status: Mapped[CrawlStatus] = mapped_column(String(20), default=CrawlStatus.RUNNING)
    fetched: Mapped[int] = mapped_column(Integer, default=0)
    new: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    vanished: Mapped[int] = mapped_column(Integer, default=0)
    summary: Mapped[str | None] = mapped_column(Text)
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    reparse_of_id: Mapped[int | None] = mapped_column(ForeignKey("crawl_runs.id", ondelete="SET NULL"))

    errors: Mapped[list[CrawlError]] = relationship(
        back_populates="run", order_by="CrawlError.id", cascade="all, delete-orphan"
    )
    payloads: Mapped[list[CrawlPayload]] = relationship(
        back_populates="run", order_by="CrawlPayload.id", cascade="all, delete-orphan"
    )


class CrawlError(Base):
    """A failure during a crawl, with the URL and a message a person can act on."""

    __tablename__ = "crawl_errors"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("crawl_runs.id", ondelete="CASCADE"), index=True)
    occurred_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    url: Mapped[str | None] = mapped_column(String(2000))
    kind: Mapped[str] = mapped_column(String(60))
    message: Mapped[str] = mapped_column(Text)
    record_id: Mapped[str | None] = mapped_column(String(200))

    run: Mapped[CrawlRun] = relationship(back_populates="errors")


class CrawlPayload(Base):
    """A raw response body of a run, compressed, so a parser fix can re-parse without re-fetching."""

    __tablename__ = "crawl_payloads"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("crawl_runs.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(String(2000))
    method: Mapped[str] = mapped_column(String(10), default="GET")
    request_body: Mapped[str | None] = mapped_column(Text)
    status_code: Mapped[int] = mapped_column(Integer)
    content_type: Mapped[str | None] = mapped_column(String(200))
    fetched_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    body_gz: Mapped[bytes] = mapped_column(LargeBinary)

    run: Mapped[CrawlRun] = relationship(back_populates="payloads")


class HttpCacheEntry(Base):
    """Validators of the last response per URL, for conditional GET across runs."""

    __tablename__ = "http_cache"
    __table_args__ = (UniqueConstraint("url"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    etag: Mapped[str | None] = mapped_column(String(500))
    last_modified: Mapped[str | None] = mapped_column(String(100))
    body_gz: Mapped[bytes | None] = mapped_column(LargeBinary)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class EmailOutbox(Base):
    """Every message is written here before it is sent: unique per user and period, so never twice."""

    __tablename__ = "email_outbox"
    __table_args__ = (UniqueConstraint("user_id", "kind", "period_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    to_address: Mapped[str] = mapped_column(String(320))
    kind: Mapped[str] = mapped_column(String(40))
    period_key: Mapped[str] = mapped_column(String(60))
    subject: Mapped[str] = mapped_column(String(500))
    body_text: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str | None] = mapped_column(Text)
    headers: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[OutboxStatus] = mapped_column(String(20), default=OutboxStatus.PENDING, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(Text)
    message_id: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[dt.datetime | None] = mapped_column()


class JobLock(Base):
    """A database lock per scheduled job, so two scheduler processes never run the same job at once."""

    __tablename__ = "job_locks"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(200))
    acquired_at: Mapped[dt.datetime | None] = mapped_column()
    expires_at: Mapped[dt.datetime | None] = mapped_column()


class JobRun(Base):
    """One run of a scheduled job with its outcome.

    ``scheduled_for`` is the occurrence a scheduler fired it for; unique with the name, so when
    several scheduler processes fire the same occurrence only one of them runs it (CLI runs leave it
    empty, and empty values never collide).
    """

    __tablename__ = "job_runs"
    __table_args__ = (UniqueConstraint("name", "scheduled_for"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), index=True)
    holder: Mapped[str | None] = mapped_column(String(200))
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    finished_at: Mapped[dt.datetime | None] = mapped_column()
    outcome: Mapped[JobOutcome] = mapped_column(String(20), default=JobOutcome.RUNNING)
    detail: Mapped[str | None] = mapped_column(Text)
    scheduled_for: Mapped[dt.datetime | None] = mapped_column()


class RateLimitCounter(Base):
    """Requests counted per bucket and window, shared by every worker process."""

    __tablename__ = "rate_limit_counters"
    __table_args__ = (UniqueConstraint("bucket", "window_start"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    bucket: Mapped[str] = mapped_column(String(200))
    window_start: Mapped[dt.datetime] = mapped_column()
    count: Mapped[int] = mapped_column(Integer, default=0)


class ApiKeyUsage(Base):
    """Requests per API key per day."""

    __tablename__ = "api_key_usage"
    __table_args__ = (UniqueConstraint("api_key_id", "day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    api_key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"))
    day: Mapped[dt.date] = mapped_column(Date)
    count: Mapped[int] = mapped_column(Integer, default=0)
