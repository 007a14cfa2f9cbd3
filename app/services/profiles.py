"""An organization's program profiles (DESIGN.md contract) and the matches it marked "not a fit"."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import MatchDismissal, Opportunity, ProgramProfile, User
from matching.profile import MatchingError, ProfileInput

log = logging.getLogger(__name__)


class ProfileError(ValueError):
    """A user-facing problem with a profile or a dismissal."""


def for_organization(session: Session, organization_id: int) -> list[ProgramProfile]:
    return list(
        session.scalars(
            select(ProgramProfile)
            .where(ProgramProfile.organization_id == organization_id)
            .order_by(ProgramProfile.name, ProgramProfile.id)
        )
    )


def get(session: Session, organization_id: int, profile_id: int) -> ProgramProfile | None:
    """The profile if it belongs to the organization (others' profiles do not exist for you)."""
    profile = session.get(ProgramProfile, profile_id)
    return profile if profile is not None and profile.organization_id == organization_id else None


def validate(data: dict[str, Any]) -> ProfileInput:
    """The profile contract check the matcher uses; raises ProfileError with field messages."""
    try:
        return ProfileInput.parse(data)
    except MatchingError as exc:
        raise ProfileError(str(exc)) from exc


def _apply(profile: ProgramProfile, valid: ProfileInput) -> None:
    profile.name = (valid.name or "").strip() or "Program"
    profile.org_type = valid.org_type
    profile.city = valid.city or None
    profile.state = valid.state.upper() if valid.state else None
    profile.program_description = valid.program_description
    profile.focus_areas = list(valid.focus_areas)
    profile.populations = list(valid.populations)
    profile.funding_need = valid.funding_need
    profile.budget_range = valid.budget_range or None


def create(session: Session, organization_id: int, user: User, data: dict[str, Any]) -> ProgramProfile:
    valid = validate(data)
    profile = ProgramProfile(
        organization_id=organization_id,
        created_by_id=user.id,
        name="",
        org_type=valid.org_type,
        program_description="",
    )
    _apply(profile, valid)
    session.add(profile)
    session.flush()
    log.info("profile created", extra={"profile_id": profile.id, "organization_id": organization_id})
    return profile


def update(session: Session, profile: ProgramProfile, data: dict[str, Any]) -> ProgramProfile:
    _apply(profile, validate(data))
    return profile


def delete(session: Session, profile: ProgramProfile) -> None:
    session.delete(profile)
    log.info("profile deleted", extra={"profile_id": profile.id})


def dismissed_ids(session: Session, profile_id: int) -> set[int]:
    return set(
        session.scalars(select(MatchDismissal.opportunity_id).where(MatchDismissal.profile_id == profile_id))
    )


def dismiss(
    session: Session, profile: ProgramProfile, opportunity_id: int, reason: str, user: User
) -> MatchDismissal:
    """Mark a match "not a fit" with its reason; marking again updates the reason."""
    reason = reason.strip()
    if not reason:
        raise ProfileError("Say why it is not a fit.")
    if session.get(Opportunity, opportunity_id) is None:
        raise ProfileError("That opportunity does not exist.")
    existing = session.scalar(
        select(MatchDismissal).where(
            MatchDismissal.profile_id == profile.id, MatchDismissal.opportunity_id == opportunity_id
        )
    )
    if existing is not None:
        existing.reason = reason
        existing.user_id = user.id
        return existing
    dismissal = MatchDismissal(
        profile_id=profile.id, opportunity_id=opportunity_id, reason=reason, user_id=user.id
    )
    session.add(dismissal)
    session.flush()
    return dismissal


def dismissals(session: Session, profile_id: int) -> list[tuple[MatchDismissal, Opportunity, User | None]]:
    rows = session.execute(
        select(MatchDismissal, Opportunity, User)
        .join(Opportunity, Opportunity.id == MatchDismissal.opportunity_id)
        .outerjoin(User, User.id == MatchDismissal.user_id)
        .where(MatchDismissal.profile_id == profile_id)
        .order_by(MatchDismissal.created_at.desc(), MatchDismissal.id.desc())
    ).all()
    return [(d, o, u) for d, o, u in rows]


def undo_dismissal(session: Session, profile: ProgramProfile, dismissal_id: int) -> bool:
    dismissal = session.get(MatchDismissal, dismissal_id)
    if dismissal is None or dismissal.profile_id != profile.id:
        return False
    session.delete(dismissal)
    return True
