"""What an organization keeps: program profiles, saved searches, tracking and alert subscriptions."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Date, ForeignKey, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base, JSONType, utcnow
from app.models.enums import Frequency, OrgType, PipelineStage, SubscriptionKind


class ProgramProfile(Base):
    """A CVI program described the way the matcher reads it (contract in DESIGN.md)."""

    __tablename__ = "program_profiles"

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int | None] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    external_id: Mapped[str | None] = mapped_column(String(120), index=True)
    name: Mapped[str] = mapped_column(String(300))
    org_type: Mapped[OrgType] = mapped_column(String(60))
    city: Mapped[str | None] = mapped_column(String(120))
    state: Mapped[str | None] = mapped_column(String(2))
    program_description: Mapped[str] = mapped_column(Text)
    focus_areas: Mapped[list[str]] = mapped_column(default=list)
    populations: Mapped[list[str]] = mapped_column(default=list)
    funding_need: Mapped[str | None] = mapped_column(Text)
    budget_range: Mapped[str | None] = mapped_column(String(120))
    is_sample: Mapped[bool] = mapped_column(default=False)
    #: The embedding of the profile's query text, and the model and text hash it was made from
    #: (``matching.embeddings.embed_profiles``): a stale key means the profile changed since.
    query_vector: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    query_vector_key: Mapped[str | None] = mapped_column(String(64))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    dismissals: Mapped[list[MatchDismissal]] = relationship(
        back_populates="profile", cascade="all, delete-orphan"
    )

    def to_contract(self) -> dict[str, Any]:
        """The profile in the DESIGN.md JSON contract."""
        return {
            "id": self.external_id or str(self.id),
            "name": self.name,
            "org_type": str(self.org_type),
            "city": self.city,
            "state": self.state,
            "program_description": self.program_description,
            "focus_areas": list(self.focus_areas or []),
            "populations": list(self.populations or []),
            "funding_need": self.funding_need,
            "budget_range": self.budget_range,
        }


class MatchDismissal(Base):
    """A match the organization marked "not a fit", with the reason, so it stops appearing."""

    __tablename__ = "match_dismissals"
    __table_args__ = (UniqueConstraint("profile_id", "opportunity_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    profile_id: Mapped[int] = mapped_column(ForeignKey("program_profiles.id", ondelete="CASCADE"))
    opportunity_id: Mapped[int] = mapped_column(
        ForeignKey("opportunities.id", ondelete="CASCADE"), index=True
    )
    reason: Mapped[str] = mapped_column(Text)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    profile: Mapped[ProgramProfile] = relationship(back_populates="dismissals")


class SavedSearch(Base):
    """A search (query string with its filters) a user keeps and may subscribe to."""

    __tablename__ = "saved_searches"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    query: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class TrackedOpportunity(Base):
    """An opportunity in an organization's pipeline."""

    __tablename__ = "tracked_opportunities"
    __table_args__ = (UniqueConstraint("organization_id", "opportunity_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    opportunity_id: Mapped[int] = mapped_column(
        ForeignKey("opportunities.id", ondelete="CASCADE"), index=True
    )
    stage: Mapped[PipelineStage] = mapped_column(String(30), default=PipelineStage.INTERESTED)
    notes: Mapped[str] = mapped_column(Text, default="")
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    internal_deadline: Mapped[dt.date | None] = mapped_column(Date)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class AlertSubscription(Base):
    """A user's subscription to new matches or changes, with how often and how far ahead to remind."""

    __tablename__ = "alert_subscriptions"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[SubscriptionKind] = mapped_column(String(30))
    saved_search_id: Mapped[int | None] = mapped_column(ForeignKey("saved_searches.id", ondelete="CASCADE"))
    profile_id: Mapped[int | None] = mapped_column(ForeignKey("program_profiles.id", ondelete="CASCADE"))
    frequency: Mapped[Frequency] = mapped_column(String(10), default=Frequency.WEEKLY)
    reminder_days: Mapped[list[int]] = mapped_column(JSONType, default=lambda: [30, 14, 7, 2])
    active: Mapped[bool] = mapped_column(default=True)
    last_digest_at: Mapped[dt.datetime | None] = mapped_column()
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    unsubscribed_at: Mapped[dt.datetime | None] = mapped_column()
