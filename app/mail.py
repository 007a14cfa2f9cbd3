"""Transactional email (sign-up invites, password resets) over plain SMTP.

Digests go through the outbox (alerts); these one-off messages are sent at once because the person
is waiting for them. Configuration: SMTP_HOST, SMTP_PORT, SMTP_STARTTLS, SMTP_USERNAME,
SMTP_PASSWORD, SMTP_TIMEOUT, MAIL_FROM.
"""

from __future__ import annotations

import logging
import smtplib
from collections.abc import Mapping
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

log = logging.getLogger(__name__)


class MailError(RuntimeError):
    """The message could not be handed to the SMTP server."""


def build_message(
    config: Mapping[str, Any],
    to: str,
    subject: str,
    text: str,
    html: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> EmailMessage:
    """A plain-text message with an optional HTML alternative."""
    message = EmailMessage()
    message["From"] = config["MAIL_FROM"]
    message["To"] = to
    # Names people typed (an organization, a colleague) go into subjects: one line, so no header injection.
    message["Subject"] = " ".join(subject.split())
    sender = str(config["MAIL_FROM"]).rsplit("@", 1)[-1].strip(">") or "localhost"
    message["Message-ID"] = make_msgid(domain=sender)
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(text)
    if html is not None:
        message.add_alternative(html, subtype="html")
    return message


def send_email(
    config: Mapping[str, Any],
    to: str,
    subject: str,
    text: str,
    html: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> str:
    """Send one message and return its Message-ID; raises MailError when the server refuses it."""
    message = build_message(config, to, subject, text, html, headers)
    try:
        with smtplib.SMTP(
            config["SMTP_HOST"], int(config["SMTP_PORT"]), timeout=float(config.get("SMTP_TIMEOUT", 30))
        ) as smtp:
            if config.get("SMTP_STARTTLS"):
                smtp.starttls()
            if config.get("SMTP_USERNAME"):
                smtp.login(config["SMTP_USERNAME"], config.get("SMTP_PASSWORD") or "")
            smtp.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        log.warning("email not sent", extra={"to_domain": to.rsplit("@", 1)[-1], "error": str(exc)})
        raise MailError(f"the mail server did not accept the message: {exc}") from exc
    log.info("email sent", extra={"subject": subject, "to_domain": to.rsplit("@", 1)[-1]})
    return str(message["Message-ID"])
