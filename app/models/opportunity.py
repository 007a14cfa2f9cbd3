"""Opportunities, their history, the codes search filters on, and curation (admin overrides)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    event,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base, JSONType, utcnow
from app.models.enums import CurationAction, OpportunityStatus


class Opportunity(Base):
    """A funding opportunity: the source's values, plus what the store and the admins add.

    Fields named in ``curated_fields`` were set by an admin and are never overwritten by a crawl.
    A record that disappears from its source gets ``vanished_at``; nothing is ever deleted.
    """

    __tablename__ = "opportunities"
    __table_args__ = (
        UniqueConstraint("source", "source_id"),
        Index("ix_opportunities_status_close_date", "status", "close_date"),
        # The matcher's filter (CVI-eligible, open or forecasted): reads the few hundred rows it
        # returns instead of every CVI-eligible or every open row.
        Index("ix_opportunities_cvi_status_close", "cvi_eligible", "status", "close_date"),
        # Room on each page for the nightly last_seen updates to happen in place (migration 0010).
        {"postgresql_with": {"fillfactor": 50}},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(500))
    source_id: Mapped[str] = mapped_column(String(200))
    number: Mapped[str | None] = mapped_column(String(200), index=True)
    #: ``number`` upper-cased and trimmed, for exact lookups by index (set with ``number``).
    number_key: Mapped[str | None] = mapped_column(String(200), index=True)
    title: Mapped[str] = mapped_column(String(1000))
    department: Mapped[str] = mapped_column(String(40), index=True)
    sub_agency: Mapped[str | None] = mapped_column(String(200))
    agency_name: Mapped[str | None] = mapped_column(String(500))
    agency_id: Mapped[int | None] = mapped_column(ForeignKey("agencies.id"), index=True)
    status: Mapped[OpportunityStatus] = mapped_column(String(20), index=True)
    doc_type: Mapped[str | None] = mapped_column(String(20))
    post_date: Mapped[dt.date | None] = mapped_column(Date, index=True)
    close_date: Mapped[dt.date | None] = mapped_column(Date, index=True)
    close_date_note: Mapped[str | None] = mapped_column(Text)
    second_close_date: Mapped[dt.date | None] = mapped_column(Date)
    second_close_date_label: Mapped[str | None] = mapped_column(String(200))
    archive_date: Mapped[dt.date | None] = mapped_column(Date)
    forecast_post_date: Mapped[dt.date | None] = mapped_column(Date)
    forecast_award_date: Mapped[dt.date | None] = mapped_column(Date)
    fiscal_year: Mapped[int | None] = mapped_column(Integer)
    award_floor: Mapped[int | None] = mapped_column(BigInteger)
    award_ceiling: Mapped[int | None] = mapped_column(BigInteger, index=True)
    total_funding: Mapped[int | None] = mapped_column(BigInteger)
    expected_awards: Mapped[int | None] = mapped_column(Integer)
    cost_sharing: Mapped[bool | None] = mapped_column(Boolean)
    eligible_applicants: Mapped[str | None] = mapped_column(Text)
    eligibility_codes: Mapped[list[str]] = mapped_column(default=list)
    funding_instruments: Mapped[list[str]] = mapped_column(default=list)
    categories: Mapped[list[str]] = mapped_column(default=list)
    aln: Mapped[list[str]] = mapped_column(default=list)
    opportunity_category: Mapped[str | None] = mapped_column(String(10))
    description: Mapped[str] = mapped_column(Text)
    description_html: Mapped[str | None] = mapped_column(Text)
    url: Mapped[str | None] = mapped_column(String(1000))
    agency_url: Mapped[str | None] = mapped_column(String(1000))
    contact: Mapped[str | None] = mapped_column(Text)
    version: Mapped[str | None] = mapped_column(String(40))
    extra: Mapped[dict[str, Any]] = mapped_column(default=dict)
    field_sources: Mapped[dict[str, Any]] = mapped_column(default=dict)
    content_hash: Mapped[str] = mapped_column(String(64))
    #: Fingerprint of the raw source record last stored (see NormalizedOpportunity.source_hash).
    source_hash: Mapped[str | None] = mapped_column(String(64))
    first_seen: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_seen: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    vanished_at: Mapped[dt.datetime | None] = mapped_column()

    # Matching results (written by the matcher) and curation (written by admins).
    cvi_score: Mapped[float | None] = mapped_column(Float)
    #: The classifier's evidence before ``cvi_score`` is capped at 1 (``matching.cvi.MAX_EVIDENCE`` at
    #: most): how strongly the listing is CVI money, which the ranker weighs.
    cvi_evidence: Mapped[float | None] = mapped_column(Float)
    cvi_reasons: Mapped[list[str]] = mapped_column(default=list)
    cvi_classified: Mapped[bool | None] = mapped_column(Boolean)
    cvi_override: Mapped[bool | None] = mapped_column(Boolean)
    cvi_eligible: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    curated_fields: Mapped[list[str]] = mapped_column(default=list)
    focus_tags: Mapped[list[str]] = mapped_column(default=list)
    featured: Mapped[bool] = mapped_column(Boolean, default=False)
    hidden: Mapped[bool] = mapped_column(Boolean, default=False)
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("opportunities.id"), index=True)
    reviewed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    reviewed_at: Mapped[dt.datetime | None] = mapped_column()

    versions: Mapped[list[OpportunityVersion]] = relationship(
        back_populates="opportunity", order_by="OpportunityVersion.id", cascade="all"
    )
    codes: Mapped[list[OpportunityCode]] = relationship(cascade="all, delete-orphan")

    def effective_cvi(self) -> bool:
        """An admin's decision wins over the classifier."""
        if self.cvi_override is not None:
            return self.cvi_override
        return bool(self.cvi_classified)


def number_key(number: str | None) -> str | None:
    """The lookup form of an opportunity number: trimmed (and of quotes) and upper-cased."""
    if number is None:
        return None
    key = number.strip().strip('"').strip().upper()
    return key or None


@event.listens_for(Opportunity.number, "set")
def _set_number_key(target: Opportunity, value: str | None, _old: Any, _initiator: Any) -> None:
    target.number_key = number_key(value)


class OpportunityCode(Base):
    """One code of an opportunity, in a table so search can filter and count facets with indexes.

    ``kind`` is ``aln``, ``eligibility``, ``instrument`` or ``category``.
    """

    __tablename__ = "opportunity_codes"
    __table_args__ = (
        UniqueConstraint("opportunity_id", "kind", "code"),
        Index("ix_opportunity_codes_kind_code", "kind", "code"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    opportunity_id: Mapped[int] = mapped_column(ForeignKey("opportunities.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20))
    code: Mapped[str] = mapped_column(String(40))


class OpportunityVersion(Base):
    """What changed on an opportunity and when: ``changes`` maps field → {old, new}."""

    __tablename__ = "opportunity_versions"

    id: Mapped[int] = mapped_column(primary_key=True)
    opportunity_id: Mapped[int] = mapped_column(
        ForeignKey("opportunities.id", ondelete="CASCADE"), index=True
    )
    changed_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    source: Mapped[str] = mapped_column(String(500))
    crawl_run_id: Mapped[int | None] = mapped_column(ForeignKey("crawl_runs.id", ondelete="SET NULL"))
    changed_fields: Mapped[list[str]] = mapped_column(default=list)
    changes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    kept_curated: Mapped[list[str]] = mapped_column(default=list)
    previous_hash: Mapped[str | None] = mapped_column(String(64))
    content_hash: Mapped[str] = mapped_column(String(64))

    opportunity: Mapped[Opportunity] = relationship(back_populates="versions")


class Curation(Base):
    """An audited admin edit: who, when, what, old → new, and why."""

    __tablename__ = "curations"

    id: Mapped[int] = mapped_column(primary_key=True)
    opportunity_id: Mapped[int | None] = mapped_column(
        ForeignKey("opportunities.id", ondelete="CASCADE"), index=True
    )
    cvi_program_id: Mapped[int | None] = mapped_column(
        ForeignKey("cvi_programs.id", ondelete="SET NULL"), index=True
    )
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    action: Mapped[CurationAction] = mapped_column(String(30))
    field: Mapped[str | None] = mapped_column(String(60))
    old_value: Mapped[Any] = mapped_column(JSONType, nullable=True)
    new_value: Mapped[Any] = mapped_column(JSONType, nullable=True)
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)


class PassageEmbedding(Base):
    """A passage of an opportunity's document text and its vector, keyed by the text's hash.

    Vectors are stored as float32 bytes; an unchanged passage is never embedded again.
    """

    __tablename__ = "passage_embeddings"
    __table_args__ = (UniqueConstraint("opportunity_id", "passage_index"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    opportunity_id: Mapped[int] = mapped_column(
        ForeignKey("opportunities.id", ondelete="CASCADE"), index=True
    )
    passage_index: Mapped[int] = mapped_column(Integer)
    text_hash: Mapped[str] = mapped_column(String(64), index=True)
    model: Mapped[str] = mapped_column(String(120))
    passage: Mapped[str] = mapped_column(Text)
    vector: Mapped[bytes] = mapped_column(LargeBinary)
