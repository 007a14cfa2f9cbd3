"""The email outbox: every message is stored before it is sent, and sent at most once per claim.

A message is a row of ``email_outbox``, unique per (user, kind, period): building the same digest
twice (a second run, a second scheduler, a restart) finds the row and adds nothing.

Delivery claims one row at a time with a guarded ``UPDATE … WHERE status IN (pending, retrying)``
that only one process can win; the claim sets a lease (``next_attempt_at`` = now + lease). After the
SMTP server accepts the message the row is marked ``sent``.

Crash semantics — **at-least-once, made idempotent by Message-ID**. A process can die between the
server's acceptance and the ``sent`` commit; nobody can then know whether the message went out. A
row left in ``sending`` after its lease expired is therefore sent again, with the *same* Message-ID
and Date (both stored on the row), so a receiving system that deduplicates by Message-ID (Gmail does,
so do most mailbox stores and list tools) shows it once. We chose this over at-most-once because a
lost deadline reminder costs a grant; a duplicate costs a glance. The window is a single UPDATE wide,
and the lease (``OUTBOX_SENDING_LEASE_SECONDS``, longer than the SMTP timeout) keeps a live but slow
sender from being overtaken. A database restart inside that window does not widen it: the outcome of
a send is written again until the database is back (``DATABASE_RETRY_SECONDS``), so a message the
server accepted is recorded ``sent`` and never sent again.

Transient failures (4xx, refused connection, timeout) go back to ``retrying`` with exponential
backoff; permanent ones (5xx) and messages that ran out of attempts are ``failed`` with the reason.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any, Protocol

from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.db import retry_on_disconnect, utcnow
from app.models import EmailOutbox, OutboxStatus
from app.services.smtp import DeliveryError

log = logging.getLogger(__name__)


class Sender(Protocol):
    def send(self, message: EmailMessage) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 10
    base_seconds: float = 60.0
    max_seconds: float = 6 * 3600.0
    lease_seconds: float = 900.0
    #: How long recording a send's outcome waits for a restarting database.
    database_wait_seconds: float = 30.0

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> RetryPolicy:
        return cls(
            max_attempts=int(config["OUTBOX_MAX_ATTEMPTS"]),
            base_seconds=float(config["OUTBOX_RETRY_BASE_SECONDS"]),
            max_seconds=float(config["OUTBOX_RETRY_MAX_SECONDS"]),
            lease_seconds=float(config["OUTBOX_SENDING_LEASE_SECONDS"]),
            database_wait_seconds=float(config.get("DATABASE_RETRY_SECONDS", 30)),
        )

    def backoff(self, attempts: int) -> dt.timedelta:
        """Wait before attempt ``attempts + 1``: base, 2 x base, 4 x base … capped at ``max_seconds``."""
        return dt.timedelta(seconds=min(self.base_seconds * 2 ** max(attempts - 1, 0), self.max_seconds))


@dataclass
class DeliveryReport:
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    cancelled: int = 0


def message_domain(mail_from: str) -> str:
    """The domain for Message-IDs: the sender's, so they are globally unique and recognisably ours."""
    address = mail_from.rsplit("<", 1)[-1].rstrip(">").strip()
    return address.rsplit("@", 1)[-1] or "localhost"


def enqueue(
    session: Session,
    *,
    user_id: int | None,
    to_address: str,
    kind: str,
    period_key: str,
    subject: str,
    body_text: str,
    body_html: str | None,
    headers: Mapping[str, str],
    mail_from: str,
    now: dt.datetime | None = None,
) -> EmailOutbox | None:
    """Store a message to send; ``None`` when this user already has one for this kind and period.

    Runs in a savepoint so a duplicate (another process got there first) leaves the caller's
    transaction usable. The caller commits.
    """
    row = EmailOutbox(
        user_id=user_id,
        to_address=to_address,
        kind=kind,
        period_key=period_key,
        subject=subject,
        body_text=body_text,
        body_html=body_html,
        headers=dict(headers),
        status=OutboxStatus.PENDING,
        attempts=0,
        message_id=make_msgid(idstring=uuid.uuid4().hex, domain=message_domain(mail_from)),
        created_at=now or utcnow(),
    )
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        return None
    return row


def exists(session: Session, user_id: int, kind: str, period_key: str) -> bool:
    return (
        session.scalar(
            select(EmailOutbox.id).where(
                EmailOutbox.user_id == user_id, EmailOutbox.kind == kind, EmailOutbox.period_key == period_key
            )
        )
        is not None
    )


def compose(row: EmailOutbox, mail_from: str) -> EmailMessage:
    """The message as it goes on the wire; identical on every attempt (same Message-ID and Date)."""
    message = EmailMessage()
    message["From"] = mail_from
    message["To"] = row.to_address
    message["Subject"] = row.subject
    message["Date"] = format_datetime(row.created_at)
    message["Message-ID"] = row.message_id or make_msgid(domain=message_domain(mail_from))
    for name, value in (row.headers or {}).items():
        message[name] = value
    message.set_content(row.body_text)
    if row.body_html:
        message.add_alternative(row.body_html, subtype="html")
    return message


def _due(now: dt.datetime) -> ColumnElement[bool]:
    """Rows that may be claimed: waiting and due, or stuck in ``sending`` past their lease."""
    return or_(
        and_(
            EmailOutbox.status.in_([OutboxStatus.PENDING, OutboxStatus.RETRYING]),
            or_(EmailOutbox.next_attempt_at.is_(None), EmailOutbox.next_attempt_at <= now),
        ),
        and_(EmailOutbox.status == OutboxStatus.SENDING, EmailOutbox.next_attempt_at <= now),
    )


def claim_next(
    session: Session, now: dt.datetime, policy: RetryPolicy, ids: list[int] | None = None
) -> EmailOutbox | None:
    """Atomically take the next due row (pending/retrying → sending); ``None`` when nothing is due."""
    while True:
        statement = select(EmailOutbox.id).where(_due(now)).order_by(EmailOutbox.id).limit(1)
        if ids is not None:
            statement = statement.where(EmailOutbox.id.in_(ids))
        candidate = session.scalar(statement)
        if candidate is None:
            session.commit()
            return None
        result = session.execute(
            update(EmailOutbox)
            .where(EmailOutbox.id == candidate, _due(now))
            .values(
                status=OutboxStatus.SENDING,
                attempts=EmailOutbox.attempts + 1,
                next_attempt_at=now + dt.timedelta(seconds=policy.lease_seconds),
            )
            .execution_options(synchronize_session=False)
        )
        session.commit()
        if getattr(result, "rowcount", 0) == 1:
            return session.execute(
                select(EmailOutbox)
                .where(EmailOutbox.id == candidate)
                .execution_options(populate_existing=True)
            ).scalar_one()
        # Another process claimed it between our SELECT and UPDATE: look for the next one.


def _finish(session: Session, row: EmailOutbox, policy: RetryPolicy, **values: Any) -> bool:
    """Record the outcome of our claim, only if the claim is still ours (same attempt number).

    Retried while the database is unreachable: after a send, losing this write would send again.
    """
    row_id, attempts = row.id, row.attempts

    def write() -> bool:
        result = session.execute(
            update(EmailOutbox)
            .where(
                EmailOutbox.id == row_id,
                EmailOutbox.status == OutboxStatus.SENDING,
                EmailOutbox.attempts == attempts,
            )
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        session.commit()
        return getattr(result, "rowcount", 0) == 1

    return retry_on_disconnect(
        session, write, seconds=policy.database_wait_seconds, what=f"outbox {row_id} {values.get('status')}"
    )


CancelCheck = Callable[[Session, EmailOutbox], str | None]


def deliver_due(
    session: Session,
    sender: Sender,
    *,
    mail_from: str,
    policy: RetryPolicy,
    now: Callable[[], dt.datetime] = utcnow,
    cancel_check: CancelCheck | None = None,
    limit: int | None = None,
    ids: list[int] | None = None,
) -> DeliveryReport:
    """Send every due message (or ``limit`` of them); each outcome is committed before the next send.

    ``cancel_check`` may return a reason not to send (the recipient unsubscribed since the message
    was built); such rows end ``failed`` with that reason and are never sent.
    """
    report = DeliveryReport()
    try:
        while limit is None or report.sent + report.retrying + report.failed + report.cancelled < limit:
            row = claim_next(session, now(), policy, ids)
            if row is None:
                break
            reason = cancel_check(session, row) if cancel_check else None
            if reason is not None:
                _finish(
                    session, row, policy, status=OutboxStatus.FAILED, next_attempt_at=None, last_error=reason
                )
                report.cancelled += 1
                log.info("email cancelled", extra={"outbox_id": row.id, "reason": reason})
                continue
            try:
                sender.send(compose(row, mail_from))
            except DeliveryError as exc:
                _record_failure(session, row, exc, policy, now(), report)
                continue
            _finish(
                session,
                row,
                policy,
                status=OutboxStatus.SENT,
                sent_at=now(),
                next_attempt_at=None,
                last_error=None,
            )
            report.sent += 1
            log.info(
                "email sent",
                extra={
                    "outbox_id": row.id,
                    "kind": row.kind,
                    "period": row.period_key,
                    "attempt": row.attempts,
                },
            )
    finally:
        sender.close()
    return report


def _record_failure(
    session: Session,
    row: EmailOutbox,
    exc: DeliveryError,
    policy: RetryPolicy,
    now: dt.datetime,
    report: DeliveryReport,
) -> None:
    error = str(exc)[:2000]
    if exc.transient and row.attempts < policy.max_attempts:
        retry_at = now + policy.backoff(row.attempts)
        _finish(
            session, row, policy, status=OutboxStatus.RETRYING, next_attempt_at=retry_at, last_error=error
        )
        report.retrying += 1
        log.warning(
            "email delivery failed, will retry",
            extra={
                "outbox_id": row.id,
                "attempt": row.attempts,
                "retry_at": retry_at.isoformat(),
                "error": error,
            },
        )
        return
    if exc.transient:
        error = f"gave up after {row.attempts} attempts: {error}"
    _finish(session, row, policy, status=OutboxStatus.FAILED, next_attempt_at=None, last_error=error)
    report.failed += 1
    log.error("email delivery failed for good", extra={"outbox_id": row.id, "error": error})
