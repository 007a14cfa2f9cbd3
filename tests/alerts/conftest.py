"""Fixtures for alerts: a real SMTP server on loopback, opportunities and subscriptions."""

from __future__ import annotations

import asyncio
import datetime as dt
import email
import itertools
import re
import socket
import threading
from collections.abc import Iterator
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from app.models import (
    AlertSubscription,
    Frequency,
    Opportunity,
    SavedSearch,
    SubscriptionKind,
    TrackedOpportunity,
)
from app.services.opportunities import upsert
from tests.factories import record

NOW = dt.datetime(2026, 11, 2, 12, 0, tzinfo=dt.UTC)  # a Monday
_ids = itertools.count(1)


def free_port() -> int:
    """A port nobody listens on right now (aiosmtpd cannot pick one itself)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Recorder:
    """An aiosmtpd handler that keeps every accepted message.

    ``reply`` makes it refuse messages with that SMTP reply instead; ``hold_after`` makes it stop
    answering (no 250) once that many messages were accepted, announcing it on ``holding``.
    """

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.reply: str | None = None
        self.hold_after: int | None = None
        self.holding = threading.Event()
        self.release = threading.Event()
        self.port = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.reply is not None:
            return self.reply
        if self.hold_after is not None and len(self.messages) >= self.hold_after:
            self.holding.set()
            while not self.release.is_set():
                await asyncio.sleep(0.02)
            return "421 4.3.0 shutting down"
        message = email.message_from_bytes(envelope.content, policy=default_policy)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        return "250 2.0.0 OK"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if m["To"] == address]


@pytest.fixture
def smtp(app: Flask) -> Iterator[Recorder]:
    recorder = Recorder()
    recorder.port = free_port()
    controller = Controller(recorder, hostname="127.0.0.1", port=recorder.port)
    controller.start()
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=recorder.port, SMTP_TIMEOUT=5)
    try:
        yield recorder
    finally:
        recorder.release.set()
        controller.stop()


def add_opportunity(
    session: Session, *, at: dt.datetime = NOW, cvi: bool = True, **fields: Any
) -> Opportunity:
    """Upsert a record as a crawl would at ``at`` (so first_seen and versions carry that time).

    The CVI flag is set as an admin override so the classifier cannot change what a test relies on.
    """
    fields.setdefault("id", f"opp-{next(_ids)}")
    fields.setdefault("number", f"O-TEST-{fields['id']}")
    upsert(session, record(**fields), now=at)
    session.flush()
    opportunity = session.query(Opportunity).filter_by(source="test", source_id=fields["id"]).one()
    # An admin's decision, so the CVI classifier re-scoring after the commit keeps it.
    opportunity.cvi_override = cvi
    opportunity.cvi_eligible = cvi
    session.commit()
    return opportunity


def subscribe_search(
    session: Session,
    user: Any,
    query: dict[str, Any],
    *,
    frequency: Frequency = Frequency.DAILY,
    created_at: dt.datetime = NOW - dt.timedelta(days=3),
    last_digest_at: dt.datetime | None = NOW - dt.timedelta(days=1),
    name: str = "Street outreach",
) -> AlertSubscription:
    saved = SavedSearch(user_id=user.id, name=name, query=query, created_at=created_at)
    session.add(saved)
    session.flush()
    subscription = AlertSubscription(
        user_id=user.id,
        kind=SubscriptionKind.SAVED_SEARCH,
        saved_search_id=saved.id,
        frequency=frequency,
        created_at=created_at,
        last_digest_at=last_digest_at,
    )
    session.add(subscription)
    session.commit()
    return subscription


def subscribe_tracked(
    session: Session,
    user: Any,
    opportunities: list[Opportunity],
    *,
    frequency: Frequency = Frequency.DAILY,
    reminder_days: list[int] | None = None,
    last_digest_at: dt.datetime | None = NOW - dt.timedelta(days=1),
) -> AlertSubscription:
    for opportunity in opportunities:
        session.add(TrackedOpportunity(organization_id=user.organization_id, opportunity_id=opportunity.id))
    subscription = AlertSubscription(
        user_id=user.id,
        kind=SubscriptionKind.TRACKED,
        frequency=frequency,
        reminder_days=reminder_days if reminder_days is not None else [30, 14, 7, 2],
        created_at=NOW - dt.timedelta(days=30),
        last_digest_at=last_digest_at,
    )
    session.add(subscription)
    session.commit()
    return subscription


def csrf_token(client: FlaskClient, path: str) -> str:
    page = client.get(path)
    assert page.status_code == 200, page.data[:500]
    found = re.search(rb'name="csrf_token" type="hidden" value="([^"]+)"', page.data)
    assert found, "no CSRF token on the page"
    return found.group(1).decode()
