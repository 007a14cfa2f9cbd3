"""Helpers for site tests: CSRF tokens from real pages, a catalogue, and a real SMTP server."""

from __future__ import annotations

import datetime as dt
import re
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import update
from sqlalchemy.orm import Session

from app.models import Opportunity
from app.services.opportunities import upsert_many
from tests.factories import record

CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"|name="csrf_token" value="([^"]+)"')


def csrf_token(client: FlaskClient, url: str) -> str:
    """The CSRF token of the form on ``url`` (as a browser would read it)."""
    html = client.get(url).get_data(as_text=True)
    match = CSRF.search(html)
    assert match, f"no CSRF token on {url}"
    return match.group(1) or match.group(2)


def post(
    client: FlaskClient, url: str, data: dict[str, Any] | None = None, *, form_page: str | None = None
) -> Any:
    """POST with the token of ``form_page`` (default: the page itself)."""
    token = csrf_token(client, form_page or url)
    return client.post(url, data={"csrf_token": token, **(data or {})})


def add_catalogue(session: Session, today: dt.date | None = None) -> dict[str, int]:
    """Four opportunities (three CVI-eligible) around ``today``; returns store ids by source id."""
    today = today or dt.date.today()
    soon = (today + dt.timedelta(days=20)).isoformat()
    later = (today + dt.timedelta(days=75)).isoformat()
    upsert_many(
        session,
        [
            record(
                id="cvi",
                number="O-BJA-2026-1",
                title="Community violence intervention and prevention initiative",
                close_date=soon,
                post_date=(today - dt.timedelta(days=5)).isoformat(),
                award_floor=250_000,
                description_html="<p>Street <b>outreach</b></p><script>alert(1)</script>"
                '<a href="javascript:alert(2)">x</a><img src=x onerror=alert(3)>',
            ),
            record(
                id="dol",
                number="FOA-ETA-26-01",
                agency="DOL",
                sub_agency="DOL-ETA",
                agency_name="Employment and Training Administration",
                title="Reentry employment for young adults",
                aln=["17.270"],
                eligibility_codes=["12"],
                categories=["ELT"],
                close_date=later,
                award_ceiling=4_000_000,
                description="Jobs and mentoring for young adults returning from incarceration.",
            ),
            record(
                id="ed",
                number="ED-26-3",
                agency="ED",
                sub_agency="ED",
                title="Full-service community schools",
                aln=["84.215J"],
                status="forecasted",
                close_date=None,
                award_ceiling=500_000,
                description="Schools that partner with community organizations for violence prevention.",
            ),
            record(
                id="nasa",
                number="NASA-1",
                agency="NASA",
                sub_agency="NASA",
                title="Heliophysics research",
                description="Solar wind studies.",
                eligibility_codes=["20"],
            ),
        ],
    )
    session.commit()
    session.execute(update(Opportunity).where(Opportunity.source_id != "nasa").values(cvi_eligible=True))
    session.commit()
    return {o.source_id: o.id for o in session.query(Opportunity)}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Mailbox:
    host: str
    port: int
    messages: list[Message] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def wait_for(self, count: int = 1, timeout: float = 5.0) -> list[Message]:
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.messages) >= count:
                    return list(self.messages)
            time.sleep(0.02)
        raise AssertionError(f"expected {count} message(s), got {len(self.messages)}")


@contextmanager
def smtp_server() -> Iterator[Mailbox]:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 that keeps what it receives."""
    from aiosmtpd.controller import Controller

    mailbox = Mailbox("127.0.0.1", free_port())

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            with mailbox.lock:
                mailbox.messages.append(message_from_bytes(envelope.content))
            return "250 OK"

    controller = Controller(Handler(), hostname=mailbox.host, port=mailbox.port)
    controller.start()
    try:
        yield mailbox
    finally:
        controller.stop()


def body(message: Message) -> str:
    if message.is_multipart():
        part = message.get_payload(0)
        assert isinstance(part, Message)
        return str(part.get_payload(decode=True).decode())  # type: ignore[union-attr]
    payload = message.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode()


LINK = re.compile(r"http://testserver\.local(/\S+)")


def link_in(message: Message) -> str:
    match = LINK.search(body(message))
    assert match, body(message)
    return match.group(1)
