"""The Flask side of signing in and out: a fresh session cookie bound to a server-side session row.

Views call ``begin`` after the credentials were checked and ``end`` to sign out; the user loader in
``app.extensions`` calls ``load`` on every request.
"""

from __future__ import annotations

from flask import current_app, session
from flask_login import login_user, logout_user

from app.db import db_session
from app.models import User
from app.services import user_sessions

#: The key of the session token in Flask's session cookie.
TOKEN_KEY = "sid"  # noqa: S105 - a key name, not a secret


def begin(user: User) -> None:
    """Sign ``user`` in on this browser with a new session (the old cookie's content is dropped)."""
    token = user_sessions.start(
        db_session(), user.id, max_age_hours=float(current_app.config["SESSION_MAX_AGE_HOURS"])
    )
    db_session().commit()
    session.clear()
    login_user(user)
    session[TOKEN_KEY] = token


def end() -> None:
    """Sign out: the server forgets the session, so a copy of the cookie no longer signs anyone in."""
    token = session.get(TOKEN_KEY)
    if isinstance(token, str):
        user_sessions.revoke(db_session(), token)
        db_session().commit()
    logout_user()
    session.clear()


def load(user_id: str) -> User | None:
    """The signed-in user of this request, if its session is live."""
    token = session.get(TOKEN_KEY)
    if not user_id.isdigit() or not isinstance(token, str):
        return None
    return user_sessions.user_for(db_session(), int(user_id), token)
