"""Page through any select: the count and one page of rows, with the page clamped to what exists."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

T = TypeVar("T")


@dataclass
class Paged(Generic[T]):
    items: list[T]
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


def paged(session: Session, query: Select[T], page: int, per_page: int) -> Paged[T]:
    """Run ``query`` for one page of its first entity."""
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
    pages = max(1, -(-total // per_page))
    page = min(max(page, 1), pages)
    rows: Any = session.scalars(query.limit(per_page).offset((page - 1) * per_page)).all()
    return Paged(list(rows), page, per_page, total)
