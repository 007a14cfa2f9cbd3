"""Digests reach a real SMTP server once: content, both parts, headers, retries and failures."""

from __future__ import annotations

import datetime as dt
from typing import Any

import time_machine
from flask import Flask
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.models import EmailOutbox, Frequency, OutboxStatus
from app.services import digests, outbox
from app.services.smtp import SmtpSender, SmtpSettings
from tests.alerts.conftest import NOW, Recorder, add_opportunity, free_port, subscribe_search


def _send(session: Session, app: Flask, frequency: Frequency = Frequency.DAILY) -> digests.DigestRun:
    return digests.send_digests(
        session, app.config, frequency, sender=SmtpSender(SmtpSettings.from_config(app.config))
    )


def _deliver(session: Session, app: Flask) -> outbox.DeliveryReport:
    return outbox.deliver_due(
        session,
        SmtpSender(SmtpSettings.from_config(app.config)),
        mail_from=app.config["MAIL_FROM"],
        policy=outbox.RetryPolicy.from_config(app.config),
        cancel_check=digests.cancel_if_unsubscribed,
    )


def _setup(session: Session, make_user: Any) -> Any:
    user = make_user("writer@example.org")
    add_opportunity(session, at=NOW - dt.timedelta(days=10), title="Old outreach grant", id="old")
    add_opportunity(
        session,
        at=NOW - dt.timedelta(hours=3),
        id="new",
        title="Street outreach & <violence> interruption",
        close_date="2026-12-15",
        award_ceiling=750_000,
    )
    add_opportunity(
        session,
        at=NOW - dt.timedelta(hours=3),
        id="other",
        title="Rural broadband",
        description="Fiber to farms.",
    )
    subscribe_search(session, user, {"q": "outreach"})
    return user


def test_digest_arrives_with_both_parts_links_and_unsubscribe_headers(
    app: Flask, session: Session, make_user: Any, smtp: Recorder
) -> None:
    user = _setup(session, make_user)
    with time_machine.travel(NOW, tick=False):
        run = _send(session, app)
    assert (run.enqueued, run.delivery and run.delivery.sent) == (1, 1)
    [message] = smtp.to(user.email)
    assert message["Subject"] == "Your daily CVI funding digest: 1 new opportunity"
    assert message["From"] == app.config["MAIL_FROM"]
    assert message["Message-ID"].endswith("@cvi-funding-finder.invalid>")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    mailto, https = [part.strip(" <>") for part in message["List-Unsubscribe"].split(",")]
    assert mailto.startswith("mailto:alerts@cvi-funding-finder.invalid?subject=unsubscribe%20")
    assert https.startswith("http://testserver.local/alerts/unsubscribe/")
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "Street outreach & <violence> interruption" in text
    assert "Street outreach &amp; &lt;violence&gt; interruption" in html  # source text is escaped
    assert "Old outreach grant" not in text and "Rural broadband" not in text
    assert "closes Dec 15, 2026 (43 days left)" in text and "award ceiling $750,000" in text
    new_id = session.scalar(select(EmailOutbox.user_id))
    assert new_id == user.id
    assert (
        "http://testserver.local/opportunities/" in text
        and 'href="http://testserver.local/opportunities/' in html
    )
    assert https in text and https in html
    assert "<img" not in html and 'style="' in html


def test_second_run_in_the_same_period_sends_nothing(
    app: Flask, session: Session, make_user: Any, smtp: Recorder
) -> None:
    user = _setup(session, make_user)
    with time_machine.travel(NOW, tick=False):
        _send(session, app)
    # The same day, later: a restarted scheduler or a second process runs the digests again.
    with time_machine.travel(NOW + dt.timedelta(hours=5), tick=False):
        again = _send(session, app)
    assert again.already == 1 and again.enqueued == 0
    assert len(smtp.to(user.email)) == 1
    # Next day: nothing new since the last digest, so no email at all.
    with time_machine.travel(NOW + dt.timedelta(days=1), tick=False):
        next_day = _send(session, app)
    assert (next_day.empty, next_day.enqueued) == (1, 0)
    assert len(smtp.messages) == 1


def test_smtp_down_is_retried_with_backoff_and_sent_exactly_once(
    app: Flask, session: Session, make_user: Any, smtp: Recorder
) -> None:
    user = _setup(session, make_user)
    up_port = app.config["SMTP_PORT"]
    app.config["SMTP_PORT"] = free_port()  # nothing listens there: connection refused
    with time_machine.travel(NOW, tick=False):
        run = _send(session, app)
    assert run.delivery is not None and run.delivery.retrying == 1
    row = session.scalars(select(EmailOutbox)).one()
    session.refresh(row)
    assert row.status == OutboxStatus.RETRYING and row.attempts == 1
    assert row.next_attempt_at == NOW + dt.timedelta(seconds=60)
    assert "unreachable" in (row.last_error or "")

    with time_machine.travel(NOW + dt.timedelta(seconds=61), tick=False):
        second = _deliver(session, app)  # still down: the wait doubles
    session.refresh(row)
    assert second.retrying == 1 and row.attempts == 2
    assert row.next_attempt_at == NOW + dt.timedelta(seconds=61 + 120)

    app.config["SMTP_PORT"] = up_port
    with time_machine.travel(NOW + dt.timedelta(seconds=100), tick=False):
        early = _deliver(session, app)  # not due yet: nothing is sent
    assert early.sent == 0 and smtp.messages == []
    with time_machine.travel(NOW + dt.timedelta(seconds=200), tick=False):
        back = _deliver(session, app)
        again = _deliver(session, app)
    session.refresh(row)
    assert (back.sent, again.sent) == (1, 0)
    assert row.status == OutboxStatus.SENT and row.sent_at == NOW + dt.timedelta(seconds=200)
    assert len(smtp.to(user.email)) == 1


def test_4xx_reply_is_retried_and_5xx_reply_is_recorded_as_failed(
    app: Flask, session: Session, make_user: Any, smtp: Recorder
) -> None:
    _setup(session, make_user)
    smtp.reply = "451 4.3.0 Mailbox temporarily unavailable"
    with time_machine.travel(NOW, tick=False):
        run = _send(session, app)
    row = session.scalars(select(EmailOutbox)).one()
    session.refresh(row)
    assert run.delivery is not None and run.delivery.retrying == 1
    assert row.status == OutboxStatus.RETRYING and "451" in (row.last_error or "")

    smtp.reply = "550 5.1.1 No such user here"
    with time_machine.travel(NOW + dt.timedelta(minutes=2), tick=False):
        report = _deliver(session, app)
    session.refresh(row)
    assert report.failed == 1
    assert row.status == OutboxStatus.FAILED and "550" in (row.last_error or "")
    with time_machine.travel(NOW + dt.timedelta(days=2), tick=False):
        assert _deliver(session, app).sent == 0  # a permanent failure is never retried
    assert smtp.messages == []


def test_transient_failures_give_up_after_the_configured_attempts(
    app: Flask, session: Session, make_user: Any, smtp: Recorder
) -> None:
    _setup(session, make_user)
    app.config["OUTBOX_MAX_ATTEMPTS"] = 2
    smtp.reply = "421 4.7.0 Try again later"
    with time_machine.travel(NOW, tick=False):
        _send(session, app)
    with time_machine.travel(NOW + dt.timedelta(hours=1), tick=False):
        _deliver(session, app)
    row = session.scalars(select(EmailOutbox)).one()
    session.refresh(row)
    assert row.status == OutboxStatus.FAILED and row.attempts == 2
    assert (row.last_error or "").startswith("gave up after 2 attempts")


def test_a_row_stuck_in_sending_is_resent_after_its_lease_with_the_same_message_id(
    app: Flask, session: Session, make_user: Any, smtp: Recorder
) -> None:
    user = _setup(session, make_user)
    with time_machine.travel(NOW, tick=False):
        builder = digests.builder_from_config(session, app.config)
        digests.build_digests(session, builder, Frequency.DAILY)
        # A sender claims the row and dies before recording the outcome.
        claimed = outbox.claim_next(session, NOW, outbox.RetryPolicy.from_config(app.config))
        assert claimed is not None
        assert outbox.claim_next(session, NOW, outbox.RetryPolicy.from_config(app.config)) is None
        assert _deliver(session, app).sent == 0  # within the lease: left to its (maybe slow) owner
    lease = app.config["OUTBOX_SENDING_LEASE_SECONDS"]
    with time_machine.travel(NOW + dt.timedelta(seconds=lease + 1), tick=False):
        assert _deliver(session, app).sent == 1
    [message] = smtp.to(user.email)
    assert message["Message-ID"] == claimed.message_id
    row = session.get(EmailOutbox, claimed.id, populate_existing=True)
    assert row is not None and row.status == OutboxStatus.SENT and row.attempts == 2


def test_a_digest_is_not_sent_after_its_recipient_unsubscribed(
    app: Flask, session: Session, make_user: Any, smtp: Recorder
) -> None:
    user = _setup(session, make_user)
    with time_machine.travel(NOW, tick=False):
        builder = digests.builder_from_config(session, app.config)
        digests.build_digests(session, builder, Frequency.DAILY)
        from app.services.subscriptions import unsubscribe_all

        unsubscribe_all(session, user.id)
        session.commit()
        report = _deliver(session, app)
    assert report.cancelled == 1 and smtp.messages == []
    row = session.scalars(select(EmailOutbox)).one()
    session.refresh(row)
    assert row.status == OutboxStatus.FAILED and "unsubscribed" in (row.last_error or "")


def test_outbox_is_unique_per_user_kind_and_period(app: Flask, session: Session, make_user: Any) -> None:
    user = make_user()
    values: dict[str, Any] = {
        "user_id": user.id,
        "to_address": user.email,
        "kind": "digest",
        "period_key": "daily:2026-11-02",
        "subject": "s",
        "body_text": "t",
        "body_html": None,
        "headers": {},
        "mail_from": app.config["MAIL_FROM"],
    }
    assert outbox.enqueue(session, **values) is not None
    session.commit()
    assert outbox.enqueue(session, **values) is None
    assert outbox.enqueue(session, **{**values, "period_key": "daily:2026-11-03"}) is not None
    session.commit()
    session.execute(update(EmailOutbox).values(status=OutboxStatus.SENT))
    assert (
        session.scalar(select(EmailOutbox.id).where(EmailOutbox.period_key == "daily:2026-11-02")) is not None
    )
    assert len(session.scalars(select(EmailOutbox)).all()) == 2


def test_send_digests_command_dry_run_prints_and_records_nothing(
    app: Flask, session: Session, make_user: Any, cli: Any, smtp: Recorder
) -> None:
    user = _setup(session, make_user)
    make_user("someone-else@example.org")
    with time_machine.travel(NOW, tick=False):
        result = cli.invoke(args=["send-digests", "--dry-run", "--user", user.email])
    assert result.exit_code == 0, result.output
    assert f"--- to {user.email}: Your daily CVI funding digest: 1 new opportunity" in result.output
    assert "Street outreach & <violence> interruption" in result.output
    assert "dry run, daily:2026-11-02: 1 digests would be sent" in result.output
    assert session.scalars(select(EmailOutbox)).all() == [] and smtp.messages == []
    with time_machine.travel(NOW, tick=False):
        sent = cli.invoke(args=["send-digests", "--period", "daily"])
    assert sent.exit_code == 0 and "1 digests queued" in sent.output and "sent 1" in sent.output
    assert len(smtp.to(user.email)) == 1
