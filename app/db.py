"""The store: one declarative base, one engine and one scoped session per app.

Plain SQLAlchemy 2 (no Flask-SQLAlchemy) so services, crawlers' sinks and the evaluation tool
use the same ``Session`` outside a request as inside one.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, current_app
from sqlalchemy import JSON, DateTime, Engine, MetaData, create_engine, event
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Session, scoped_session, sessionmaker
from sqlalchemy.types import TypeDecorator

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Pooled connections older than this are replaced (firewalls and proxies drop idle connections).
POOL_RECYCLE_SECONDS = 1800

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timestamps stored as UTC and always handed back timezone-aware (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


JSONType = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dt.datetime: UTCDateTime(), dict[str, Any]: JSONType, list[str]: JSONType}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine; SQLite gets foreign keys, WAL and a busy timeout so workers can share it.

    Every checkout pings the connection first (``pool_pre_ping``), so after the database server
    restarts, the pool's dead connections are replaced at the next checkout instead of failing the
    request or job that drew them; connections are also recycled after ``POOL_RECYCLE_SECONDS``.
    """
    if url.startswith("sqlite"):
        kwargs.setdefault("connect_args", {"timeout": 30})
    else:
        kwargs.setdefault("pool_pre_ping", True)
        kwargs.setdefault("pool_recycle", POOL_RECYCLE_SECONDS)
    engine = create_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

    return engine


def is_disconnect(exc: BaseException) -> bool:
    """Whether ``exc`` means the database went away (restart, refused connection), not a bad statement."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, OperationalError)


def retry_on_disconnect(
    session: Session,
    work: Callable[[], T],
    *,
    seconds: float,
    what: str,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run ``work`` (which must commit what it writes), again while the database is unreachable.

    For bookkeeping that must not be lost to a database restart, such as "this message was sent" or
    "this crawl ended": the work is retried with backoff for up to ``seconds`` after a lost or refused
    connection (the session is rolled back first, so ``work`` must set everything it writes). Any
    other error, or a database still down after ``seconds``, is raised (the session rolled back).
    """
    deadline = time.monotonic() + seconds
    delay = 0.05
    while True:
        try:
            return work()
        except DBAPIError as exc:
            if not is_disconnect(exc):
                raise
            session.rollback()  # the transaction died with its connection; the session stays usable
            if time.monotonic() + delay > deadline:
                raise
            log.warning(
                "database unavailable, retrying",
                extra={"work": what, "retry_in": delay, "error": str(exc)[:300]},
            )
            sleep(delay)
            delay = min(delay * 2, 2.0)


class Database:
    """The engine and session factory bound to one app."""

    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)
        self.session_factory = sessionmaker(self.engine, expire_on_commit=False)
        self.session = scoped_session(self.session_factory)


def init_app(app: Flask) -> None:
    database = Database(app.config["DATABASE_URL"])
    app.extensions["database"] = database

    @app.teardown_appcontext
    def _remove_session(_exc: BaseException | None) -> None:
        database.session.remove()


def get_db() -> Database:
    return current_app.extensions["database"]  # type: ignore[no-any-return]


def db_session() -> Session:
    """The current app's scoped session (one per thread/request)."""
    return get_db().session()
