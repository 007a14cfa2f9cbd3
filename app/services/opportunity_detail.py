"""One opportunity as the public sees it: hidden ones are not found, merged ones lead to the survivor."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.models import Opportunity

#: Largest id the store can hold in every database (PostgreSQL INTEGER); bigger ids are simply unknown.
MAX_ID = 2_147_483_647


def get_public(session: Session, opportunity_id: int) -> Opportunity | None:
    """The visible opportunity with this id (following merges), or None."""
    if not 1 <= opportunity_id <= MAX_ID:
        return None
    opportunity = session.get(Opportunity, opportunity_id)
    seen: set[int] = set()
    while opportunity is not None and opportunity.merged_into_id is not None and opportunity.id not in seen:
        seen.add(opportunity.id)
        opportunity = session.get(Opportunity, opportunity.merged_into_id)
    if opportunity is None or opportunity.hidden or opportunity.merged_into_id is not None:
        return None
    return opportunity
