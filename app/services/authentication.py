"""Signing in and resetting a password: rate limits, lock-out and signed, expiring reset links.

Sign-in attempts are counted per IP address and email in the shared rate-limit table (so every
worker sees them), and an account is locked for a while after repeated wrong passwords.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy.orm import Session

from app.db import utcnow
from app.models import User
from app.services import ratelimit
from app.services.accounts import (
    AccountError,
    find_user,
    hash_password,
    needs_rehash,
    set_password,
    verify_password,
)

log = logging.getLogger(__name__)

#: Attempts per IP address and email in one window.
SIGN_IN_LIMIT = 5
SIGN_IN_WINDOW_SECONDS = 15 * 60
#: Consecutive wrong passwords before the account is locked, and for how long.
LOCK_AFTER = 10
LOCK_MINUTES = 15
RESET_MAX_AGE_SECONDS = 60 * 60


@dataclass(frozen=True)
class SignInOutcome:
    user: User | None
    message: str | None = None
    limited: bool = False


def _minutes(seconds: int) -> str:
    minutes = max(1, -(-seconds // 60))
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def sign_in(
    session: Session, email: str, password: str, ip: str, *, now: dt.datetime | None = None
) -> SignInOutcome:
    """Check a sign-in; the caller commits (the attempt counts either way)."""
    now = now or utcnow()
    email = email.strip().lower()
    decision = ratelimit.hit(
        session,
        f"sign-in:{ip}:{email}",
        limit=SIGN_IN_LIMIT,
        window_seconds=SIGN_IN_WINDOW_SECONDS,
        now=now,
    )
    if not decision.allowed:
        log.warning("sign-in rate limited", extra={"ip": ip})
        return SignInOutcome(
            None,
            f"Too many sign-in attempts. For your security, try again in {_minutes(decision.retry_after)}.",
            limited=True,
        )
    user = find_user(session, email)
    if user is not None and user.locked_until is not None and user.locked_until > now:
        seconds = int((user.locked_until - now).total_seconds())
        return SignInOutcome(
            None,
            "This account is locked after too many wrong passwords. "
            f"Try again in {_minutes(seconds)}, or reset your password.",
            limited=True,
        )
    # Verified even for an unknown email (against a dummy hash), so timing does not reveal accounts.
    if not verify_password(user, password) or user is None or not user.active:
        if user is not None:
            user.failed_sign_ins = (user.failed_sign_ins or 0) + 1
            if user.failed_sign_ins >= LOCK_AFTER:
                user.locked_until = now + dt.timedelta(minutes=LOCK_MINUTES)
                user.failed_sign_ins = 0
                log.warning("account locked", extra={"user_id": user.id})
        return SignInOutcome(None, "That email and password do not match an account.")
    user.failed_sign_ins = 0
    user.locked_until = None
    user.last_sign_in_at = now
    if needs_rehash(user):
        user.password_hash = hash_password(password)
        log.info("password re-hashed with the current parameters", extra={"user_id": user.id})
    log.info("signed in", extra={"user_id": user.id})
    return SignInOutcome(user)


def _serializer(secret_key: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key, salt="password-reset")


def _fingerprint(user: User) -> str:
    """Changes when the password changes, so a reset link works only once."""
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[:16]


def reset_token(secret_key: str, user: User) -> str:
    return _serializer(secret_key).dumps({"user": user.id, "fp": _fingerprint(user)})


def user_for_reset(
    session: Session, secret_key: str, token: str, *, max_age: int = RESET_MAX_AGE_SECONDS
) -> User:
    """The user a reset link belongs to; raises AccountError when it is expired, used or forged."""
    try:
        data = _serializer(secret_key).loads(token, max_age=max_age)
    except SignatureExpired as exc:
        raise AccountError("This reset link has expired. Ask for a new one.") from exc
    except BadSignature as exc:
        raise AccountError("This reset link is not valid. Ask for a new one.") from exc
    user = session.get(User, int(data.get("user", 0))) if isinstance(data, dict) else None
    if user is None or data.get("fp") != _fingerprint(user):
        raise AccountError("This reset link has already been used. Ask for a new one.")
    return user


def reset_password(session: Session, secret_key: str, token: str, password: str) -> User:
    user = user_for_reset(session, secret_key, token)
    set_password(user, password)
    user.failed_sign_ins = 0
    user.locked_until = None
    log.info("password reset", extra={"user_id": user.id})
    return user
