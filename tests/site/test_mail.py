"""Transactional mail over a real SMTP server on loopback."""

from __future__ import annotations

import pytest

from app.mail import MailError, send_email
from tests.site.helpers import body, free_port, smtp_server


def config(port: int) -> dict[str, object]:
    return {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": port, "SMTP_TIMEOUT": 5, "SMTP_STARTTLS": False,
            "SMTP_USERNAME": None, "MAIL_FROM": "CVI Funding Finder <alerts@example.org>"}  # fmt: skip


def test_send_text_and_html_with_headers() -> None:
    with smtp_server() as box:
        message_id = send_email(config(box.port), "a@example.org", "Hello", "Plain words", "<p>Rich</p>",
                                {"List-Unsubscribe": "<https://example.org/u>"})  # fmt: skip
        received = box.wait_for(1)[0]
    assert received["Subject"] == "Hello" and received["Message-ID"] == message_id
    assert received["List-Unsubscribe"] == "<https://example.org/u>"
    assert received.is_multipart() and "Plain words" in body(received)


def test_unreachable_server_raises_mail_error() -> None:
    with pytest.raises(MailError, match="did not accept"):
        send_email(config(free_port()), "a@example.org", "Hello", "text")
