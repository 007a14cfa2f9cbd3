"""Scheduler and email operations for admins: job history, locks and the email outbox."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.db import utcnow
from app.models import EmailOutbox, JobLock, JobRun, OutboxStatus, User
from app.services import audit
from app.services.paging import Paged, paged


class OpsError(ValueError):
    """An operation that cannot be done, with a message for the admin."""


def job_runs(session: Session, *, name: str = "", page: int = 1, per_page: int = 50) -> Paged[JobRun]:
    query = select(JobRun)
    if name:
        query = query.where(JobRun.name == name)
    return paged(session, query.order_by(JobRun.started_at.desc(), JobRun.id.desc()), page, per_page)


def job_locks(session: Session) -> list[JobLock]:
    return list(session.scalars(select(JobLock).order_by(JobLock.name)))


def outbox(session: Session, *, status: str = "", page: int = 1, per_page: int = 50) -> Paged[EmailOutbox]:
    query = select(EmailOutbox)
    if status:
        try:
            query = query.where(EmailOutbox.status == OutboxStatus(status))
        except ValueError:
            raise OpsError(f"'{status}' is not an outbox status") from None
    return paged(
        session, query.order_by(EmailOutbox.created_at.desc(), EmailOutbox.id.desc()), page, per_page
    )


def outbox_counts(session: Session) -> dict[str, int]:
    rows = session.execute(select(EmailOutbox.status, func.count()).group_by(EmailOutbox.status)).all()
    counts = {str(status): 0 for status in OutboxStatus}
    counts.update({str(status): int(n) for status, n in rows})
    return counts


def retry_email(session: Session, actor: User, message_id: int) -> EmailOutbox:
    """Send a failed message again: it goes back to pending for the next delivery run."""
    message = session.get(EmailOutbox, message_id)
    if message is None:
        raise OpsError(f"there is no message #{message_id}")
    if message.status != OutboxStatus.FAILED:
        raise OpsError(f"message #{message_id} is {message.status}; only failed messages can be retried")
    message.status = OutboxStatus.PENDING
    message.next_attempt_at = utcnow()
    audit.record(
        session, actor, "retry email", "email", message.id, field="status", old="failed", new="pending"
    )
    return message
