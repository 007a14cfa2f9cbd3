"""Organizations and their members: sign-up, invitations by signed link, and roles."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Organization, OrgType, Role, User
from app.services.accounts import AccountError, create_user, find_user, normalize_email

log = logging.getLogger(__name__)

INVITE_MAX_AGE_SECONDS = 7 * 24 * 60 * 60


def sign_up(
    session: Session,
    *,
    email: str,
    password: str,
    name: str | None,
    organization_name: str,
    org_type: OrgType | None = None,
) -> User:
    """A new grant writer and their organization; raises AccountError on a taken email."""
    organization = Organization(name=organization_name.strip(), org_type=org_type)
    session.add(organization)
    user = create_user(session, email, password, name=name, organization=organization)
    log.info("signed up", extra={"user_id": user.id, "organization_id": organization.id})
    return user


def members(session: Session, organization_id: int) -> list[User]:
    return list(
        session.scalars(select(User).where(User.organization_id == organization_id).order_by(User.email))
    )


def member(session: Session, organization_id: int, user_id: int) -> User | None:
    user = session.get(User, user_id)
    return user if user is not None and user.organization_id == organization_id else None


@dataclass(frozen=True)
class Invite:
    organization: Organization
    email: str
    invited_by_id: int | None


def _serializer(secret_key: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key, salt="organization-invite")


def invite_token(secret_key: str, organization: Organization, email: str, invited_by: User) -> str:
    """A signed link token naming the organization and the invited email."""
    email = normalize_email(email)
    return _serializer(secret_key).dumps({"org": organization.id, "email": email, "by": invited_by.id})


def read_invite(
    session: Session, secret_key: str, token: str, *, max_age: int = INVITE_MAX_AGE_SECONDS
) -> Invite:
    """Decode an invite; raises AccountError when it is expired, forged or its organization is gone."""
    try:
        data = _serializer(secret_key).loads(token, max_age=max_age)
    except SignatureExpired as exc:
        raise AccountError("This invitation has expired. Ask your colleague to send a new one.") from exc
    except BadSignature as exc:
        raise AccountError("This invitation link is not valid.") from exc
    organization = session.get(Organization, int(data.get("org", 0))) if isinstance(data, dict) else None
    if organization is None:
        raise AccountError("The organization of this invitation no longer exists.")
    return Invite(organization, str(data["email"]), data.get("by"))


def accept_invite(
    session: Session,
    invite: Invite,
    *,
    current: User | None,
    password: str | None = None,
    name: str | None = None,
) -> User:
    """Join the invited organization: the signed-in user whose email was invited, or a new account."""
    existing = find_user(session, invite.email)
    if existing is not None:
        if current is None or current.id != existing.id:
            raise AccountError(f"Sign in as {invite.email} to accept this invitation.")
        existing.organization = invite.organization
        log.info(
            "joined organization", extra={"user_id": existing.id, "organization_id": invite.organization.id}
        )
        return existing
    if current is not None:
        raise AccountError(f"This invitation is for {invite.email}. Sign out to accept it as that person.")
    if not password:
        raise AccountError("Choose a password to create your account.")
    user = create_user(session, invite.email, password, name=name, organization=invite.organization)
    log.info("accepted invitation", extra={"user_id": user.id, "organization_id": invite.organization.id})
    return user


def set_role(session: Session, organization_id: int, user_id: int, role: Role, *, by: User) -> User:
    """Change a colleague's role; only admins may, and never their own (no lock-out by accident)."""
    if not by.is_admin:
        raise AccountError("Only an administrator can change roles.")
    target = member(session, organization_id, user_id)
    if target is None:
        raise AccountError("That person is not a member of your organization.")
    if target.id == by.id:
        raise AccountError("You cannot change your own role.")
    target.role = role
    log.info("role changed", extra={"user_id": target.id, "role": str(role), "by": by.id})
    return target


def remove_member(session: Session, organization_id: int, user_id: int, *, by: User) -> User:
    if not by.is_admin:
        raise AccountError("Only an administrator can remove members.")
    target = member(session, organization_id, user_id)
    if target is None or target.id == by.id:
        raise AccountError("You can remove colleagues, not yourself.")
    target.organization_id = None
    return target
