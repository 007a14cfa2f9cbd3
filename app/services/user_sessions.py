"""Signed-in sessions kept on the server, so signing out really ends them.

Flask's session is a signed cookie: on its own, a copy of it would stay valid after sign-out. Each
sign-in therefore makes a random token (256 bits), puts it in the cookie and stores only its SHA-256
here; a request is signed in only while its token's row is neither revoked nor expired.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from app.db import utcnow
from app.models import User, UserSession


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def start(session: Session, user_id: int, *, max_age_hours: float, now: dt.datetime | None = None) -> str:
    """A new session token for the user (the caller commits); the user's expired rows are dropped."""
    now = now or utcnow()
    session.execute(delete(UserSession).where(UserSession.user_id == user_id, UserSession.expires_at <= now))
    token = secrets.token_urlsafe(32)
    session.add(
        UserSession(
            user_id=user_id,
            token_hash=_digest(token),
            created_at=now,
            expires_at=now + dt.timedelta(hours=max_age_hours),
        )
    )
    session.flush()
    return token


def user_for(session: Session, user_id: int, token: str, *, now: dt.datetime | None = None) -> User | None:
    """The active user whose live session this token is, else None."""
    if not token or len(token) > 100:
        return None
    return session.scalar(
        select(User)
        .join(UserSession, UserSession.user_id == User.id)
        .where(
            User.id == user_id,
            User.active.is_(True),
            UserSession.token_hash == _digest(token),
            UserSession.revoked_at.is_(None),
            UserSession.expires_at > (now or utcnow()),
        )
    )


def revoke(session: Session, token: str, *, now: dt.datetime | None = None) -> None:
    """End one session (sign-out)."""
    session.execute(
        update(UserSession)
        .where(UserSession.token_hash == _digest(token), UserSession.revoked_at.is_(None))
        .values(revoked_at=now or utcnow())
    )


def revoke_all(session: Session, user_id: int, *, now: dt.datetime | None = None) -> int:
    """End every session of a user (password reset, deactivation); returns how many were live."""
    result = session.execute(
        update(UserSession)
        .where(UserSession.user_id == user_id, UserSession.revoked_at.is_(None))
        .values(revoked_at=now or utcnow())
    )
    return int(getattr(result, "rowcount", 0) or 0)
