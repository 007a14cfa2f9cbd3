"""Reference tables: agencies, assistance listings and the curated CVI program catalogue."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Date, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base, utcnow


class Agency(Base):
    """A department or sub-agency as Grants.gov codes it (``USDOJ-OJP-BJA`` under ``DOJ``)."""

    __tablename__ = "agencies"
    __table_args__ = (UniqueConstraint("code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(60))
    name: Mapped[str] = mapped_column(String(300))
    department: Mapped[str] = mapped_column(String(40), index=True)


class CviProgram(Base):
    """A federal program that can fund community violence intervention work (curated)."""

    __tablename__ = "cvi_programs"
    __table_args__ = (UniqueConstraint("slug"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(120))
    name: Mapped[str] = mapped_column(String(300))
    department: Mapped[str] = mapped_column(String(40), index=True)
    sub_agency: Mapped[str | None] = mapped_column(String(120))
    summary: Mapped[str] = mapped_column(Text)
    activities: Mapped[list[str]] = mapped_column(default=list)
    eligible_applicants: Mapped[str] = mapped_column(Text)
    how_cvi_fits: Mapped[str] = mapped_column(Text, default="")
    source_url: Mapped[str] = mapped_column(String(500))
    last_verified: Mapped[dt.date] = mapped_column(Date)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    assistance_listings: Mapped[list[AssistanceListing]] = relationship(
        back_populates="cvi_program", order_by="AssistanceListing.number"
    )


class AssistanceListing(Base):
    """An Assistance Listing (formerly CFDA) number, e.g. 16.045, with its program title."""

    __tablename__ = "assistance_listings"
    __table_args__ = (UniqueConstraint("number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(20))
    title: Mapped[str] = mapped_column(String(500))
    department: Mapped[str | None] = mapped_column(String(40))
    cvi_program_id: Mapped[int | None] = mapped_column(
        ForeignKey("cvi_programs.id", ondelete="SET NULL"), index=True
    )
    notes: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)

    cvi_program: Mapped[CviProgram | None] = relationship(back_populates="assistance_listings")
