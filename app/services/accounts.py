"""Users and organizations: creation and password checks (hashes only, never plain text).

Passwords are hashed with Argon2id (OWASP's first recommended setting: 19 MiB, 2 passes, 1 lane).
Hashes made with other parameters, or by Werkzeug's scrypt/pbkdf2 before Argon2 was used, still
verify and are re-hashed with the current parameters at the next successful sign-in.
"""

from __future__ import annotations

import functools
import re

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash

from app.models import Organization, Role, User

EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
#: ASVS 2.1.1: at least 12 characters; 2.1.2: 64 allowed, more than 128 refused.
MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 128
HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
#: Verified when an email has no account, so a sign-in takes as long whether or not it exists.
_DUMMY_HASH = HASHER.hash("no account has this password")


class AccountError(ValueError):
    """A user-facing problem with account data."""


def normalize_email(email: str) -> str:
    email = email.strip().lower()
    if not EMAIL_PATTERN.match(email):
        raise AccountError(f"'{email}' is not an email address")
    return email


@functools.cache
def _common_passwords() -> frozenset[str]:
    """The most common passwords of the breach corpora that zxcvbn ships, long enough to be allowed."""
    from zxcvbn.frequency_lists import FREQUENCY_LISTS  # type: ignore[import-untyped]

    return frozenset(p for p in FREQUENCY_LISTS["passwords"] if len(p) >= MIN_PASSWORD_LENGTH)


def check_password_rules(password: str, email: str | None = None) -> None:
    """Length and breached-password checks only (ASVS 2.1.9: no composition rules)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise AccountError(f"a password can have at most {MAX_PASSWORD_LENGTH} characters")
    lowered = password.lower()
    if lowered in _common_passwords() or len(set(lowered)) < 3:
        raise AccountError("that password is one of the most common ones; choose another")
    if email and lowered == email.strip().lower():
        raise AccountError("a password cannot be your email address")


def hash_password(password: str) -> str:
    return HASHER.hash(password)


def find_user(session: Session, email: str) -> User | None:
    return session.scalar(select(User).where(func.lower(User.email) == email.strip().lower()))


def create_user(
    session: Session,
    email: str,
    password: str,
    *,
    role: Role = Role.MEMBER,
    name: str | None = None,
    organization: Organization | None = None,
) -> User:
    """Create a user with a hashed password; raises AccountError on a taken email or weak password."""
    email = normalize_email(email)
    check_password_rules(password, email)
    if find_user(session, email) is not None:
        raise AccountError(f"an account for {email} already exists")
    user = User(
        email=email,
        name=name,
        password_hash=hash_password(password),
        role=role,
        organization=organization,
    )
    session.add(user)
    session.flush()
    return user


def set_password(user: User, password: str) -> None:
    check_password_rules(password, user.email)
    user.password_hash = hash_password(password)


def verify_password(user: User | None, password: str) -> bool:
    """Check a password; with no user, a dummy hash is verified so the time taken is the same."""
    stored = user.password_hash if user is not None else _DUMMY_HASH
    if not stored.startswith("$argon2"):
        return check_password_hash(stored, password)  # a Werkzeug hash from before Argon2
    try:
        return bool(HASHER.verify(stored, password)) and user is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(user: User) -> bool:
    """Whether the stored hash was made with another algorithm or other parameters than today's."""
    return not user.password_hash.startswith("$argon2") or HASHER.check_needs_rehash(user.password_hash)
