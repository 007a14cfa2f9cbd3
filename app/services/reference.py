"""The reference catalogue partners read: departments' agencies and the curated CVI programs."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from app.models import Agency, CviProgram, Opportunity


@dataclass
class AgencyCount:
    agency: Agency
    opportunities: int
    cvi_opportunities: int


def agencies(session: Session, departments: list[str] | None = None) -> list[AgencyCount]:
    """Agencies by department and name, with how many visible (and CVI-eligible) opportunities each has."""
    visible = (Opportunity.hidden.is_(False), Opportunity.merged_into_id.is_(None))
    counts = dict(
        session.execute(
            select(Opportunity.agency_id, func.count()).where(*visible).group_by(Opportunity.agency_id)
        ).all()
    )
    cvi_counts = dict(
        session.execute(
            select(Opportunity.agency_id, func.count())
            .where(*visible, Opportunity.cvi_eligible.is_(True))
            .group_by(Opportunity.agency_id)
        ).all()
    )
    query = select(Agency).order_by(Agency.department, Agency.name, Agency.code)
    if departments:
        query = query.where(Agency.department.in_([d.upper() for d in departments]))
    return [
        AgencyCount(agency, int(counts.get(agency.id, 0)), int(cvi_counts.get(agency.id, 0)))
        for agency in session.scalars(query)
    ]


def cvi_programs(session: Session, departments: list[str] | None = None) -> list[CviProgram]:
    """The curated programs that can fund CVI work, with their assistance listings."""
    query = (
        select(CviProgram)
        .options(selectinload(CviProgram.assistance_listings))
        .order_by(CviProgram.department, CviProgram.name)
    )
    if departments:
        query = query.where(CviProgram.department.in_([d.upper() for d in departments]))
    return list(session.scalars(query))
