"""Users and organizations for admins: list, change role, deactivate or reactivate, all audited."""

from __future__ import annotations

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, selectinload

from app.models import Organization, Role, User
from app.services import audit
from app.services.paging import Paged, paged


class UserAdminError(ValueError):
    """An account change that cannot be made, with a message for the admin."""


def users(session: Session, *, q: str = "", page: int = 1, per_page: int = 50) -> Paged[User]:
    query = select(User).options(selectinload(User.organization))
    if q.strip():
        like = f"%{q.strip().lower()}%"
        query = query.where(or_(func.lower(User.email).like(like), func.lower(User.name).like(like)))
    return paged(session, query.order_by(User.email), page, per_page)


def organizations(session: Session) -> list[tuple[Organization, int]]:
    members = func.count(User.id)
    query = (
        select(Organization, members)
        .outerjoin(User, User.organization_id == Organization.id)
        .group_by(Organization.id)
        .order_by(Organization.name)
    )
    return [(org, int(n)) for org, n in session.execute(query).all()]


def _user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise UserAdminError(f"there is no user #{user_id}")
    return user


def set_role(session: Session, actor: User, user_id: int, role: str, note: str | None) -> User:
    user = _user(session, user_id)
    try:
        new_role = Role(role)
    except ValueError:
        raise UserAdminError("the role must be member or admin") from None
    if user.id == actor.id and new_role != Role.ADMIN:
        raise UserAdminError("you cannot remove your own admin role; ask another admin")
    if user.role == new_role:
        raise UserAdminError(f"{user.email} is already {new_role}")
    old = str(user.role)
    user.role = new_role
    audit.record(
        session, actor, "change role", "user", user.id, field="role", old=old, new=str(new_role), note=note
    )
    return user


def set_active(session: Session, actor: User, user_id: int, active: bool, note: str | None) -> User:
    user = _user(session, user_id)
    if user.id == actor.id and not active:
        raise UserAdminError("you cannot deactivate your own account")
    if user.active == active:
        raise UserAdminError(f"{user.email} is already {'active' if active else 'deactivated'}")
    user.active = active
    action = "reactivate user" if active else "deactivate user"
    audit.record(
        session, actor, action, "user", user.id, field="active", old=not active, new=active, note=note
    )
    return user
