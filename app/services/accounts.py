"""Users and organizations: creation and password checks (hashes only, never plain text)."""

from __future__ import annotations

import re

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from app.models import Organization, Role, User

EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MIN_PASSWORD_LENGTH = 10


class AccountError(ValueError):
    """A user-facing problem with account data."""


def normalize_email(email: str) -> str:
    email = email.strip().lower()
    if not EMAIL_PATTERN.match(email):
        raise AccountError(f"'{email}' is not an email address")
    return email


def check_password_rules(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")


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
    check_password_rules(password)
    if find_user(session, email) is not None:
        raise AccountError(f"an account for {email} already exists")
    user = User(
        email=email,
        name=name,
        password_hash=generate_password_hash(password),
        role=role,
        organization=organization,
    )
    session.add(user)
    session.flush()
    return user


def set_password(user: User, password: str) -> None:
    check_password_rules(password)
    user.password_hash = generate_password_hash(password)


def verify_password(user: User, password: str) -> bool:
    return check_password_hash(user.password_hash, password)
