"""Audit of admin actions on users, organizations and API keys (catalogue edits live in ``curations``)."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db import utcnow
from app.models import AuditEvent, User
from app.services.paging import Paged, paged

log = logging.getLogger(__name__)


def _json(value: Any) -> Any:
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    return value


def record(
    session: Session,
    actor: User,
    action: str,
    target_type: str,
    target_id: int | None,
    *,
    field: str | None = None,
    old: Any = None,
    new: Any = None,
    note: str | None = None,
) -> AuditEvent:
    event = AuditEvent(
        actor_id=actor.id,
        action=action,
        target_type=target_type,
        target_id=target_id,
        field=field,
        old_value=_json(old),
        new_value=_json(new),
        note=(note or "").strip()[:4000] or None,
        created_at=utcnow(),
    )
    session.add(event)
    log.info(
        "admin action",
        extra={"actor_id": actor.id, "action": action, "target_type": target_type, "target_id": target_id},
    )
    return event


def events(
    session: Session,
    *,
    actor_id: int | None = None,
    target_type: str | None = None,
    target_id: int | None = None,
    page: int = 1,
    per_page: int = 50,
) -> Paged[AuditEvent]:
    """Account and API key events, newest first, optionally filtered."""
    query = select(AuditEvent)
    if actor_id is not None:
        query = query.where(AuditEvent.actor_id == actor_id)
    if target_type:
        query = query.where(AuditEvent.target_type == target_type)
    if target_id is not None:
        query = query.where(AuditEvent.target_id == target_id)
    query = query.order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc())
    return paged(session, query, page, per_page)


def user_labels(session: Session, ids: set[int | None]) -> dict[int, str]:
    """Email (or name) of each user id, for audit pages."""
    wanted = [i for i in ids if i is not None]
    if not wanted:
        return {}
    return {user.id: user.email for user in session.scalars(select(User).where(User.id.in_(wanted)))}
