"""Fixtures for site tests: a real SMTP server wired into the app, and a small catalogue."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from tests.site.helpers import Mailbox, add_catalogue, smtp_server


@pytest.fixture
def mailbox(app: Flask) -> Iterator[Mailbox]:
    with smtp_server() as box:
        app.config.update(SMTP_HOST=box.host, SMTP_PORT=box.port, SMTP_STARTTLS=False, SMTP_TIMEOUT=5)
        yield box


@pytest.fixture
def catalogue(session: Session) -> dict[str, int]:
    return add_catalogue(session)


@pytest.fixture(autouse=True)
def _fresh_login_per_request(app: Flask) -> Iterator[None]:
    """Tests hold an app context open (the ``session`` fixture), which Flask reuses for requests, so
    Flask-Login's user and Flask-WTF's token cached in ``g`` would leak between requests and clients."""
    from flask import g, request_started

    def forget(sender: Flask, **_extra: object) -> None:
        g.pop("_login_user", None)
        g.pop("csrf_token", None)

    request_started.connect(forget, app)
    yield
    request_started.disconnect(forget, app)
