"""The review queue: new opportunities the CVI classifier is unsure of, for an admin to decide.

"Unsure" means a score within ``band`` of the classifier's threshold. Records with an admin decision,
merged records and records the classifier has not scored yet are left out; newest first.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from app.models import Opportunity
from app.services import cvi_scoring
from app.services.paging import Paged, paged


@dataclass(frozen=True)
class Band:
    """The score range the queue covers."""

    threshold: float
    width: float

    @property
    def low(self) -> float:
        return self.threshold - self.width

    @property
    def high(self) -> float:
        return self.threshold + self.width


def band(width: float) -> Band:
    return Band(cvi_scoring.threshold(), max(0.0, width))


def _query(scope: Band) -> Select[Opportunity]:
    return select(Opportunity).where(
        Opportunity.cvi_override.is_(None),
        Opportunity.merged_into_id.is_(None),
        Opportunity.cvi_score.is_not(None),
        Opportunity.cvi_score >= scope.low,
        Opportunity.cvi_score <= scope.high,
    )


def pending(session: Session, scope: Band, page: int = 1, per_page: int = 20) -> Paged[Opportunity]:
    """One page of the queue, newest first."""
    query = _query(scope).order_by(Opportunity.first_seen.desc(), Opportunity.id.desc())
    return paged(session, query, page, per_page)


def count(session: Session, scope: Band) -> int:
    return session.scalar(select(func.count()).select_from(_query(scope).subquery())) or 0


def excerpt(text: str | None, limit: int = 400) -> str:
    """The start of a description, cut at a word boundary."""
    text = " ".join((text or "").split())
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0] + " …"
