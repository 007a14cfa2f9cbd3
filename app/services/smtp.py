"""SMTP delivery for the outbox: one connection per batch, failures sorted into transient and permanent.

Kept apart from ``app/mail.py`` (transactional mail of the site) because the outbox needs to know
*how* a send failed: a 4xx reply, a refused connection or a timeout is worth retrying later; a 5xx
reply (bad address, message refused) will fail the same way every time and is recorded instead.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from types import TracebackType
from typing import Any

log = logging.getLogger(__name__)


class DeliveryError(Exception):
    """A message was not accepted; ``transient`` says whether trying again later may succeed."""

    def __init__(self, message: str, *, transient: bool, code: int | None = None) -> None:
        super().__init__(message)
        self.transient = transient
        self.code = code


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    timeout: float = 30.0

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> SmtpSettings:
        return cls(
            host=config["SMTP_HOST"],
            port=int(config["SMTP_PORT"]),
            username=config.get("SMTP_USERNAME"),
            password=config.get("SMTP_PASSWORD"),
            starttls=bool(config.get("SMTP_STARTTLS")),
            timeout=float(config.get("SMTP_TIMEOUT") or 30),
        )


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def classify(exc: BaseException) -> DeliveryError:
    """Turn whatever smtplib or the socket raised into a ``DeliveryError`` (transient or permanent)."""
    if isinstance(exc, DeliveryError):
        return exc
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _msg in exc.recipients.values()]
        detail = "; ".join(f"{rcpt}: {code} {_text(msg)}" for rcpt, (code, msg) in exc.recipients.items())
        transient = all(400 <= code < 500 for code in codes)
        return DeliveryError(
            f"recipient refused: {detail}", transient=transient, code=max(codes, default=None)
        )
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        # Wrong credentials are a configuration problem of ours, not of the message: keep retrying.
        return DeliveryError(
            f"SMTP authentication failed: {exc.smtp_code}", transient=True, code=exc.smtp_code
        )
    if isinstance(exc, smtplib.SMTPResponseException):
        code = int(exc.smtp_code)
        return DeliveryError(
            f"SMTP server replied {code} {_text(exc.smtp_error)}", transient=code < 500, code=code
        )
    if isinstance(exc, smtplib.SMTPServerDisconnected | OSError | smtplib.SMTPException):
        return DeliveryError(f"SMTP server unreachable: {type(exc).__name__}: {exc}", transient=True)
    return DeliveryError(f"{type(exc).__name__}: {exc}", transient=True)


class SmtpSender:
    """Sends messages over one lazily opened SMTP connection; reconnects after any failure."""

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        self._connection: smtplib.SMTP | None = None

    def __enter__(self) -> SmtpSender:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _connect(self) -> smtplib.SMTP:
        settings = self.settings
        connection = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
        try:
            connection.ehlo()
            if settings.starttls:
                connection.starttls(context=ssl.create_default_context())
                connection.ehlo()
            if settings.username:
                connection.login(settings.username, settings.password or "")
        except BaseException:
            connection.close()
            raise
        return connection

    def send(self, message: EmailMessage) -> None:
        """Hand one message to the server; returns only once the server accepted it (250 after DATA)."""
        try:
            if self._connection is None:
                self._connection = self._connect()
            self._connection.send_message(message)
        except Exception as exc:
            self.close()
            raise classify(exc) from exc

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            connection.quit()
        except (smtplib.SMTPException, OSError):
            connection.close()
