"""An organization with one of everything it owns, made through the services the site uses.

Every text a person types (organization, names, profile, saved search, tracking notes, dismissal
reason) is built from ``text``, so a test can look for a marker on pages or plant hostile markup.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flask import Flask
from sqlalchemy.orm import Session

from app.models import Organization, OrgType, PipelineStage, Role, User
from app.services import (
    alert_tokens,
    authentication,
    organizations,
    profiles,
    saved_searches,
    subscriptions,
    tracking,
)
from app.services.accounts import create_user

PASSWORD = "correct horse battery"


@dataclass
class World:
    """One organization's people, objects and link tokens, by the URL argument that names them."""

    organization_id: int
    lead: User
    colleague: User
    ids: dict[str, int] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    profile_ids: list[int] = field(default_factory=list)
    saved_ids: list[int] = field(default_factory=list)

    @property
    def user_ids(self) -> list[int]:
        return [self.lead.id, self.colleague.id]


def build(
    app: Flask, session: Session, label: str, text: str, opportunity_ids: list[int], *, admin: bool = False
) -> World:
    """``label`` keeps emails unique; ``text`` goes into every user-entered field."""
    org = Organization(name=f"{text} organization", org_type=OrgType.NONPROFIT, city=text[:120])
    session.add(org)
    lead = create_user(
        session, f"{label}-lead@{label}.example.org", PASSWORD, name=f"{text} lead", organization=org,
        role=Role.ADMIN if admin else Role.MEMBER,
    )  # fmt: skip
    colleague = create_user(
        session, f"{label}-colleague@{label}.example.org", PASSWORD, name=text, organization=org
    )
    profile = profiles.create(
        session,
        org.id,
        lead,
        {
            "name": f"{text} program",
            "org_type": "nonprofit",
            "city": text[:120],
            "program_description": f"Street outreach and violence intervention for young adults. {text}",
            "focus_areas": f"street outreach, {text}",
            "populations": f"young adults, {text}",
            "funding_need": f"Outreach workers. {text}",
            "budget_range": text[:120],
        },
    )
    dismissal = profiles.dismiss(session, profile, opportunity_ids[-1], f"{text} reason", lead)
    saved = saved_searches.save(session, lead, f"{text} search", "q=violence&department=DOJ")
    tracked = tracking.track(session, org.id, opportunity_ids[0], lead)
    tracking.update(
        session, tracked, stage=PipelineStage.PREPARING, owner_id=colleague.id, internal_deadline=None,
        notes=f"{text} notes",
    )  # fmt: skip
    tracking.track(session, org.id, opportunity_ids[1], colleague)
    subscription = subscriptions.subscribe(session, lead, f"profile:{profile.id}", "daily")
    subscriptions.subscribe(session, lead, f"search:{saved.id}", "weekly")
    subscriptions.subscribe(session, lead, "tracked", "daily")
    invitation = organizations.invite(session, org, f"{label}-invitee@{label}.example.org", lead)
    version = subscriptions.calendar_version(session, lead.id)
    session.commit()
    secret = app.config["SECRET_KEY"]
    return World(
        organization_id=org.id,
        lead=lead,
        colleague=colleague,
        ids={
            "profile_id": profile.id,
            "dismissal_id": dismissal.id,
            "saved_id": saved.id,
            "tracked_id": tracked.id,
            "subscription_id": subscription.id,
            "invitation_id": invitation.id,
            "user_id": colleague.id,
        },
        tokens={
            "calendar": alert_tokens.calendar_token(secret, lead.id, version),
            "unsubscribe": alert_tokens.unsubscribe_token(secret, lead.id),
            "reset": authentication.reset_token(secret, lead),
            "invite": organizations.invite_token(secret, invitation),
        },
        profile_ids=[profile.id],
        saved_ids=[saved.id],
    )


def forged_tokens(victim: World) -> dict[str, str]:
    """The victim's link payloads signed with a key that is not the site's (what an attacker can make)."""
    forger = "not-the-site-key"
    return {
        "calendar": alert_tokens.calendar_token(forger, victim.lead.id, 1),
        "unsubscribe": alert_tokens.unsubscribe_token(forger, victim.lead.id),
        "reset": authentication.reset_token(forger, victim.lead),
        "invite": _forged_invite(forger, victim.ids["invitation_id"]),
    }


def _forged_invite(secret: str, invitation_id: int) -> str:
    from itsdangerous import URLSafeSerializer

    return str(URLSafeSerializer(secret, salt="organization-invite").dumps({"invitation": invitation_id}))


def as_dict(world: World) -> dict[str, Any]:
    return {"organization_id": world.organization_id, **world.ids}
