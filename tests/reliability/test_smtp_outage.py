"""The SMTP server refuses, disappears, then recovers: every user still gets exactly one digest.

``tests/alerts/test_delivery.py`` covers one message against a refusing or absent server. Here it is
the service as the scheduler runs it (the ``digests-daily`` and ``outbox`` jobs) with several users:
a server refusing every transaction (421 at MAIL FROM) across runs, a server down altogether and
started again on its port, a server that stops accepting half-way through a batch, and one
recipient refused for good (550) among others. Time is frozen and moved, never slept.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import time_machine
from aiosmtpd.controller import Controller
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.jobs import run_job
from app.models import EmailOutbox, JobOutcome, OutboxStatus
from tests.alerts.conftest import NOW, Recorder, add_opportunity, free_port, subscribe_search


class FlakyServer(Recorder):
    """The alerts recorder, which can also refuse every transaction (``refuse_mail``), a recipient
    (``refuse_rcpt``), or every message once ``accept_only`` were accepted; counts what was tried."""

    def __init__(self) -> None:
        super().__init__()
        self.refuse_mail: str | None = None
        self.refuse_rcpt: dict[str, str] = {}
        self.accept_only: int | None = None
        self.tries: Counter[str] = Counter()
        self.controller: Controller | None = None

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        self.tries["MAIL"] += 1
        if self.refuse_mail is not None:
            return self.refuse_mail
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        self.tries[address] += 1
        if address in self.refuse_rcpt:
            return self.refuse_rcpt[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.accept_only is not None and len(self.messages) >= self.accept_only:
            return "421 4.3.2 System shutting down"
        return await super().handle_DATA(server, session, envelope)

    def start(self) -> None:
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture
def smtp(app: Flask) -> Iterator[FlakyServer]:
    server = FlakyServer()
    server.port = free_port()
    server.start()
    app.config.update(
        SMTP_HOST="127.0.0.1", SMTP_PORT=server.port, SMTP_TIMEOUT=5, OUTBOX_RETRY_BASE_SECONDS=60
    )
    try:
        yield server
    finally:
        server.release.set()
        server.stop()


def _writers(session: Session, make_user: Any, count: int) -> list[Any]:
    users = [make_user(f"writer{n}@example.org") for n in range(count)]
    add_opportunity(session, at=NOW - dt.timedelta(hours=3), title="Street outreach workers")
    for user in users:
        subscribe_search(session, user, {"q": "outreach"})
    return users


def _job(app: Flask, name: str, at: dt.datetime) -> str:
    with time_machine.travel(at, tick=False):
        result = run_job(app, name)
    assert result.outcome == JobOutcome.SUCCEEDED, result.detail
    return str(result.detail)


def _rows(session: Session) -> list[EmailOutbox]:
    session.expire_all()
    return list(session.scalars(select(EmailOutbox).order_by(EmailOutbox.id)))


def _statuses(session: Session) -> Counter[str]:
    return Counter(str(row.status) for row in _rows(session))


def _each_got_one(smtp: FlakyServer, users: list[Any]) -> None:
    assert sorted(str(m["To"]) for m in smtp.messages) == sorted(u.email for u in users)
    assert len({m["Message-ID"] for m in smtp.messages}) == len(users)


def test_refusing_server_then_recovery_across_scheduler_runs(
    app: Flask, session: Session, make_user: Any, smtp: FlakyServer
) -> None:
    users = _writers(session, make_user, 3)
    smtp.refuse_mail = "421 4.3.2 System not accepting network messages"

    detail = _job(app, "digests-daily", NOW)
    assert "3 digests queued" in detail and "sent 0, retrying 3" in detail
    assert all(row.attempts == 1 and "421" in (row.last_error or "") for row in _rows(session))
    assert {row.next_attempt_at for row in _rows(session)} == {NOW + dt.timedelta(seconds=60)}

    # The outbox job fires before anything is due: no connection attempt at all.
    assert _job(app, "outbox", NOW + dt.timedelta(seconds=30)).startswith("sent 0, retrying 0")
    assert smtp.tries["MAIL"] == 3
    # Due, still refused: the wait doubles.
    assert "retrying 3" in _job(app, "outbox", NOW + dt.timedelta(seconds=61))
    assert {row.next_attempt_at for row in _rows(session)} == {NOW + dt.timedelta(seconds=61 + 120)}
    assert smtp.tries["MAIL"] == 6 and smtp.messages == []

    smtp.refuse_mail = None  # the server recovers
    assert _job(app, "outbox", NOW + dt.timedelta(seconds=181)).startswith("sent 3,")
    assert _job(app, "outbox", NOW + dt.timedelta(minutes=30)).startswith("sent 0,")
    # The scheduler builds the digests again later the same day: already built, nothing resent.
    assert "0 digests queued" in _job(app, "digests-daily", NOW + dt.timedelta(hours=2))
    assert _statuses(session) == {"sent": 3}
    assert {row.attempts for row in _rows(session)} == {3}
    _each_got_one(smtp, users)


def test_server_down_entirely_then_back_on_its_port_sends_each_once(
    app: Flask, session: Session, make_user: Any, smtp: FlakyServer
) -> None:
    users = _writers(session, make_user, 2)
    smtp.stop()  # nothing listens: connection refused

    assert "retrying 2" in _job(app, "digests-daily", NOW)
    assert all("unreachable" in (row.last_error or "") for row in _rows(session))
    assert "retrying 2" in _job(app, "outbox", NOW + dt.timedelta(seconds=61))
    assert {row.attempts for row in _rows(session)} == {2}

    smtp.start()  # back on the same port
    assert _job(app, "outbox", NOW + dt.timedelta(seconds=180)).startswith("sent 0,")  # not yet due
    assert _job(app, "outbox", NOW + dt.timedelta(seconds=181)).startswith("sent 2,")
    assert _job(app, "outbox", NOW + dt.timedelta(hours=1)).startswith("sent 0,")
    assert _statuses(session) == {"sent": 2}
    _each_got_one(smtp, users)


def test_server_failing_half_way_through_a_batch_resends_only_the_rest(
    app: Flask, session: Session, make_user: Any, smtp: FlakyServer
) -> None:
    users = _writers(session, make_user, 4)
    smtp.accept_only = 2  # two accepted, then "shutting down" for every message

    assert "sent 2, retrying 2" in _job(app, "digests-daily", NOW)
    smtp.accept_only = None
    assert _job(app, "outbox", NOW + dt.timedelta(seconds=61)).startswith("sent 2,")
    assert _statuses(session) == {"sent": 4}
    _each_got_one(smtp, users)


def test_a_recipient_refused_for_good_is_failed_and_never_retried(
    app: Flask, session: Session, make_user: Any, smtp: FlakyServer
) -> None:
    users = _writers(session, make_user, 3)
    gone = users[1].email
    smtp.refuse_rcpt[gone] = "550 5.1.1 No such user here"

    assert "sent 2, retrying 0, failed 1" in _job(app, "digests-daily", NOW)
    failed = [row for row in _rows(session) if row.status == OutboxStatus.FAILED]
    assert [row.to_address for row in failed] == [gone]
    assert "550" in (failed[0].last_error or "") and failed[0].next_attempt_at is None
    for later in (dt.timedelta(minutes=5), dt.timedelta(hours=6), dt.timedelta(days=1)):
        assert _job(app, "outbox", NOW + later).startswith("sent 0, retrying 0, failed 0")
    assert smtp.tries[gone] == 1
    _each_got_one(smtp, [u for u in users if u.email != gone])
