"""Read the catalogue for the home page: newest first, paged."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import Opportunity


@dataclass
class Page:
    items: list[Opportunity]
    page: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    @property
    def has_next(self) -> bool:
        return self.page < self.pages

    @property
    def has_prev(self) -> bool:
        return self.page > 1


def newest(session: Session, page: int, per_page: int) -> Page:
    """Visible opportunities, most recently posted (or first seen) first."""
    visible = (Opportunity.hidden.is_(False), Opportunity.merged_into_id.is_(None))
    total = session.scalar(select(func.count()).select_from(Opportunity).where(*visible)) or 0
    pages = max(1, -(-total // per_page))
    page = min(max(page, 1), pages)
    query = (
        select(Opportunity)
        .where(*visible)
        .order_by(
            func.coalesce(Opportunity.post_date, Opportunity.forecast_post_date).desc().nulls_last(),
            Opportunity.id.desc(),
        )
        .limit(per_page)
        .offset((page - 1) * per_page)
    )
    return Page(list(session.scalars(query)), page, per_page, total)
