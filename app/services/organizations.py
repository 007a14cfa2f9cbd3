"""Organizations and their members: sign-up, invitations by signed email link, and roles.

An invitation is a row; its emailed link is a signed token naming the row, so the link works once,
until it expires (seven days), and can be withdrawn.
"""

from __future__ import annotations

import datetime as dt
import logging

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.db import utcnow
from app.models import Invitation, Organization, OrgType, Role, User
from app.services.accounts import AccountError, create_user, find_user, normalize_email

log = logging.getLogger(__name__)

INVITE_MAX_AGE_SECONDS = 7 * 24 * 60 * 60


class NotInOrganization(AccountError):
    """The person or invitation named is not your organization's (to you, it does not exist)."""


class AdminOnly(AccountError):
    """Only an administrator may do this."""


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


def _serializer(secret_key: str) -> URLSafeSerializer:
    return URLSafeSerializer(secret_key, salt="organization-invite")


def invite(
    session: Session,
    organization: Organization,
    email: str,
    invited_by: User,
    *,
    now: dt.datetime | None = None,
) -> Invitation:
    """Record an invitation (the caller commits and mails ``invite_token``)."""
    now = now or utcnow()
    invitation = Invitation(
        organization=organization,
        email=normalize_email(email),
        invited_by_id=invited_by.id,
        created_at=now,
        expires_at=now + dt.timedelta(seconds=INVITE_MAX_AGE_SECONDS),
    )
    session.add(invitation)
    session.flush()
    log.info("invited", extra={"invitation_id": invitation.id, "organization_id": organization.id})
    return invitation


def invite_token(secret_key: str, invitation: Invitation) -> str:
    """The signed link token naming an invitation (its state lives in the store, so it works once)."""
    return str(_serializer(secret_key).dumps({"invitation": invitation.id}))


def read_invite(
    session: Session, secret_key: str, token: str, *, now: dt.datetime | None = None
) -> Invitation:
    """The invitation a link names; raises AccountError when it is forged, used, withdrawn or expired."""
    try:
        data = _serializer(secret_key).loads(token)
    except BadSignature as exc:
        raise AccountError("This invitation link is not valid.") from exc
    raw_id = data.get("invitation") if isinstance(data, dict) else None
    invitation = session.get(Invitation, raw_id) if isinstance(raw_id, int) else None
    if invitation is None:
        raise AccountError("This invitation link is not valid.")
    if invitation.accepted_at is not None:
        raise AccountError("This invitation has already been used.")
    if invitation.revoked_at is not None:
        raise AccountError("This invitation was withdrawn. Ask your colleague to send a new one.")
    if invitation.expires_at <= (now or utcnow()):
        raise AccountError("This invitation has expired. Ask your colleague to send a new one.")
    return invitation


def accept_invite(
    session: Session,
    invite: Invitation,
    *,
    current: User | None,
    password: str | None = None,
    name: str | None = None,
    now: dt.datetime | None = None,
) -> User:
    """Join the invited organization: the signed-in user whose email was invited, or a new account."""
    existing = find_user(session, invite.email)
    if existing is not None:
        if current is None or current.id != existing.id:
            raise AccountError(f"Sign in as {invite.email} to accept this invitation.")
        existing.organization = invite.organization
        user = existing
    else:
        if current is not None:
            raise AccountError(
                f"This invitation is for {invite.email}. Sign out to accept it as that person."
            )
        if not password:
            raise AccountError("Choose a password to create your account.")
        user = create_user(session, invite.email, password, name=name, organization=invite.organization)
    now = now or utcnow()
    invite.accepted_at = now
    invite.accepted_by_id = user.id
    _withdraw_pending(session, invite.organization_id, invite.email, now)
    log.info("accepted invitation", extra={"user_id": user.id, "organization_id": invite.organization_id})
    return user


def pending_invitations(
    session: Session, organization_id: int, *, now: dt.datetime | None = None
) -> list[Invitation]:
    return list(
        session.scalars(
            select(Invitation)
            .where(
                Invitation.organization_id == organization_id,
                Invitation.accepted_at.is_(None),
                Invitation.revoked_at.is_(None),
                Invitation.expires_at > (now or utcnow()),
            )
            .order_by(Invitation.created_at.desc(), Invitation.id.desc())
        )
    )


def withdraw_invitation(session: Session, organization_id: int, invitation_id: int) -> Invitation:
    """Withdraw one of the organization's pending invitations (others' do not exist for you)."""
    invitation = session.get(Invitation, invitation_id)
    if invitation is None or invitation.organization_id != organization_id:
        raise NotInOrganization("Your organization has no invitation with that number.")
    if invitation.accepted_at is not None or invitation.revoked_at is not None:
        raise AccountError("That invitation is no longer pending.")
    invitation.revoked_at = utcnow()
    return invitation


def _withdraw_pending(session: Session, organization_id: int, email: str, now: dt.datetime) -> None:
    """No other link for the same person stays usable (a removed member cannot walk back in)."""
    pending = session.scalars(
        select(Invitation).where(
            Invitation.organization_id == organization_id,
            func.lower(Invitation.email) == email.lower(),
            Invitation.accepted_at.is_(None),
            Invitation.revoked_at.is_(None),
        )
    )
    for invitation in pending:
        invitation.revoked_at = now


def set_role(session: Session, organization_id: int, user_id: int, role: Role, *, by: User) -> User:
    """Change a colleague's role; only admins may, and never their own (no lock-out by accident)."""
    if not by.is_admin:
        raise AdminOnly("Only an administrator can change roles.")
    target = member(session, organization_id, user_id)
    if target is None:
        raise NotInOrganization("That person is not a member of your organization.")
    if target.id == by.id:
        raise AccountError("You cannot change your own role.")
    target.role = role
    log.info("role changed", extra={"user_id": target.id, "role": str(role), "by": by.id})
    return target


def remove_member(session: Session, organization_id: int, user_id: int, *, by: User) -> User:
    if not by.is_admin:
        raise AdminOnly("Only an administrator can remove members.")
    target = member(session, organization_id, user_id)
    if target is None:
        raise NotInOrganization("That person is not a member of your organization.")
    if target.id == by.id:
        raise AccountError("You can remove colleagues, not yourself.")
    target.organization_id = None
    _withdraw_pending(session, organization_id, target.email, utcnow())
    return target
