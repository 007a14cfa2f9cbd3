"""Signed tokens for links that work without signing in: unsubscribe links and calendar feeds.

Both are signed with ``SECRET_KEY`` (itsdangerous) under their own salt, so one can never be used as
the other. They do not expire: an unsubscribe link in an old email must keep working (RFC 8058), and
a calendar URL lives in someone's Outlook. A calendar token carries the user's token version, so
regenerating the URL (bumping the version) revokes every older one.
"""

from __future__ import annotations

from itsdangerous import BadSignature, URLSafeSerializer

UNSUBSCRIBE_SALT = "cvi.alerts.unsubscribe"
CALENDAR_SALT = "cvi.alerts.calendar"


class TokenError(ValueError):
    """The token was altered, truncated or signed with another key."""


def _serializer(secret: str, salt: str) -> URLSafeSerializer:
    return URLSafeSerializer(secret, salt=salt)


def _ints(secret: str, salt: str, token: str, count: int) -> list[int]:
    if not token or len(token) > 300:
        raise TokenError("This link is not valid.")
    try:
        value = _serializer(secret, salt).loads(token)
    except BadSignature as exc:
        raise TokenError("This link is not valid: its signature does not match.") from exc
    if not isinstance(value, list) or len(value) != count or not all(isinstance(v, int) for v in value):
        raise TokenError("This link is not valid.")
    return value


def unsubscribe_token(secret: str, user_id: int) -> str:
    return str(_serializer(secret, UNSUBSCRIBE_SALT).dumps([user_id]))


def read_unsubscribe_token(secret: str, token: str) -> int:
    """The user id an unsubscribe token was made for; ``TokenError`` when it was tampered with."""
    return _ints(secret, UNSUBSCRIBE_SALT, token, 1)[0]


def calendar_token(secret: str, user_id: int, version: int) -> str:
    return str(_serializer(secret, CALENDAR_SALT).dumps([user_id, version]))


def read_calendar_token(secret: str, token: str) -> tuple[int, int]:
    """(user id, token version) of a calendar token; ``TokenError`` when it was tampered with."""
    user_id, version = _ints(secret, CALENDAR_SALT, token, 2)
    return user_id, version
