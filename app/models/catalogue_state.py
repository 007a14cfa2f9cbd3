"""The catalogue version: one counter bumped in the same transaction as any catalogue change.

Cached API answers (ETags, per-worker bodies) and per-version memos key on it, so "has anything
changed?" costs one primary-key read instead of re-running a search. Any write through a
``Session`` to a catalogue table bumps it: ORM changes (seen in ``before_flush``) and core
INSERT/UPDATE/DELETE statements (seen in ``do_orm_execute``), including bulk paths in services
and matching. The bump itself runs at ``before_commit``, so a rolled-back change bumps nothing.
Statements that only move bookkeeping columns (``last_seen``, ``source_hash``) opt out with
``execution_options(catalogue_neutral=True)``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Integer, event, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, ORMExecuteState, Session, UOWTransaction, mapped_column

from app.db import Base, utcnow

#: Tables whose content any catalogue page or API listing shows.
CATALOGUE_TABLES = frozenset(
    {
        "opportunities",
        "opportunity_codes",
        "opportunity_versions",
        "curations",
        "cvi_programs",
        "agencies",
        "assistance_listings",
    }
)
NEUTRAL_OPTION = "catalogue_neutral"
_DIRTY = "catalogue_changed"
_BUMPED = "catalogue_bumped"
STATE_ID = 1
#: How many catalogue changes this process has committed (lets per-process memos of the version
#: notice this process's own changes at once).
_committed_here = {"changes": 0}


class CatalogueState(Base):
    """Single row (id 1): the catalogue version and when it last moved."""

    __tablename__ = "catalogue_state"

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(Integer, default=0)
    changed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


def read_version(session: Session) -> tuple[int, dt.datetime | None]:
    """(version, changed_at) — one primary-key read; (0, None) before the first change."""
    row = session.execute(
        select(CatalogueState.version, CatalogueState.changed_at).where(CatalogueState.id == STATE_ID)
    ).first()
    if row is None:
        return 0, None
    return int(row[0]), row[1]


def changes_committed_here() -> int:
    """How many catalogue-changing commits this process has made so far."""
    return _committed_here["changes"]


def mark_changed(session: Session) -> None:
    """Bump the version when ``session`` commits (for writes that bypass the Session, e.g. raw SQL)."""
    session.info[_DIRTY] = True


def bump(session: Session) -> None:
    """Move the version on now, inside the session's transaction (an upsert: the row may be absent)."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    now = utcnow()
    statement = insert(CatalogueState).values(id=STATE_ID, version=1, changed_at=now)
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["id"], set_={"version": CatalogueState.version + 1, "changed_at": now}
        )
    )


def _statement_table(state: ORMExecuteState) -> str | None:
    table = getattr(state.statement, "table", None)
    return getattr(table, "name", None)


@event.listens_for(Session, "do_orm_execute")
def _watch_statements(state: ORMExecuteState) -> None:
    if state.is_select or not (state.is_insert or state.is_update or state.is_delete):
        return
    if state.execution_options.get(NEUTRAL_OPTION) or state.statement.get_execution_options().get(
        NEUTRAL_OPTION
    ):
        return
    if _statement_table(state) in CATALOGUE_TABLES:
        state.session.info[_DIRTY] = True


@event.listens_for(Session, "before_flush")
def _watch_flush(session: Session, _flush: UOWTransaction, _instances: Any) -> None:
    if session.info.get(_DIRTY):
        return
    for obj in (*session.new, *session.dirty, *session.deleted):
        table = getattr(obj, "__tablename__", None)
        if table in CATALOGUE_TABLES and (obj not in session.dirty or session.is_modified(obj)):
            session.info[_DIRTY] = True
            return


@event.listens_for(Session, "before_commit")
def _bump_on_commit(session: Session) -> None:
    session.flush()
    if session.info.pop(_DIRTY, False):
        bump(session)
        session.info[_BUMPED] = True


@event.listens_for(Session, "after_commit")
def _count_commit(session: Session) -> None:
    if session.info.pop(_BUMPED, False):
        _committed_here["changes"] += 1


@event.listens_for(Session, "after_soft_rollback")
def _forget(session: Session, previous: Any) -> None:
    if getattr(previous, "parent", None) is None:  # the whole transaction, not a savepoint
        session.info.pop(_DIRTY, None)
        session.info.pop(_BUMPED, None)
