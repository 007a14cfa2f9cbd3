"""The admin dashboard's figures: what is in the catalogue, what needs attention."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import CrawlRun, EmailOutbox, Opportunity, OpportunityStatus, OutboxStatus
from app.services import crawl_admin, review_queue


@dataclass
class Dashboard:
    by_status: dict[str, int]
    total: int
    cvi_eligible: int
    awaiting_review: int
    hidden: int
    featured: int
    last_runs: list[CrawlRun]
    outbox_failed: int
    outbox_retrying: int


def figures(session: Session, scope: review_queue.Band) -> Dashboard:
    live = Opportunity.merged_into_id.is_(None)
    rows = session.execute(
        select(Opportunity.status, func.count()).where(live).group_by(Opportunity.status)
    ).all()
    by_status = {str(status): 0 for status in OpportunityStatus}
    by_status.update({str(status): int(n) for status, n in rows})

    def count(*conditions: object) -> int:
        return session.scalar(select(func.count()).select_from(Opportunity).where(live, *conditions)) or 0  # type: ignore[arg-type]

    def outbox(status: OutboxStatus) -> int:
        return (
            session.scalar(select(func.count()).select_from(EmailOutbox).where(EmailOutbox.status == status))
            or 0
        )

    return Dashboard(
        by_status=by_status,
        total=sum(by_status.values()),
        cvi_eligible=count(Opportunity.cvi_eligible.is_(True), Opportunity.hidden.is_(False)),
        awaiting_review=review_queue.count(session, scope),
        hidden=count(Opportunity.hidden.is_(True)),
        featured=count(Opportunity.featured.is_(True)),
        last_runs=crawl_admin.last_runs(session),
        outbox_failed=outbox(OutboxStatus.FAILED),
        outbox_retrying=outbox(OutboxStatus.RETRYING),
    )
