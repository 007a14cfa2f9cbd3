"""Import and export opportunities as JSON lines (the contract in DESIGN.md)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Opportunity
from app.services.opportunities import UpsertResult, upsert_many
from crawlers.normalize import NormalizedOpportunity

log = logging.getLogger(__name__)

BATCH_SIZE = 500


@dataclass
class LineError:
    line: int
    message: str


@dataclass
class ImportReport:
    """Counts of an import and every line that was skipped, with why."""

    result: UpsertResult = field(default_factory=UpsertResult)
    errors: list[LineError] = field(default_factory=list)
    lines: int = 0

    @property
    def skipped(self) -> int:
        return len(self.errors)


def _describe(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"]) or "record"
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)


def parse_line(text: str, default_source: str) -> NormalizedOpportunity:
    """One JSON line to a record; raises ValueError with a readable message."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc.msg} at column {exc.colno})") from exc
    if not isinstance(data, dict):
        raise ValueError("a line must be one JSON object")
    data.setdefault("source", default_source)
    if data.get("source") is None:
        data["source"] = default_source
    try:
        return NormalizedOpportunity.model_validate(data)
    except ValidationError as exc:
        raise ValueError(_describe(exc)) from exc


def import_lines(
    session: Session,
    stream: IO[str],
    *,
    default_source: str = "import",
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Load a JSON-lines stream; bad lines are reported with their number and skipped.

    Each batch is committed on its own, so a bad line never loses the good ones around it.
    """
    report = ImportReport()
    batch: list[NormalizedOpportunity] = []

    def flush() -> None:
        if batch:
            report.result.add(upsert_many(session, batch))
            session.commit()
            batch.clear()
            if progress:
                progress(report.lines)

    for number, text in enumerate(stream, start=1):
        report.lines = number
        if not text.strip():
            continue
        try:
            batch.append(parse_line(text, default_source))
        except ValueError as exc:
            report.errors.append(LineError(number, str(exc)))
            continue
        if len(batch) >= BATCH_SIZE:
            flush()
    flush()
    log.info(
        "opportunities imported",
        extra={
            "lines": report.lines,
            "new": report.result.new,
            "updated": report.result.updated,
            "unchanged": report.result.unchanged,
            "skipped": report.skipped,
        },
    )
    return report


def to_contract(opportunity: Opportunity) -> dict[str, Any]:
    """An opportunity in the JSON-lines contract (ISO dates, numbers, ``aln`` list, plain text)."""
    record: dict[str, Any] = {
        "id": opportunity.source_id,
        "source": opportunity.source,
        "number": opportunity.number,
        "title": opportunity.title,
        "agency": opportunity.department,
        "sub_agency": opportunity.sub_agency,
        "agency_name": opportunity.agency_name,
        "aln": list(opportunity.aln or []),
        "status": str(opportunity.status),
        "doc_type": opportunity.doc_type,
        "post_date": _iso(opportunity.post_date),
        "close_date": _iso(opportunity.close_date),
        "close_date_note": opportunity.close_date_note,
        "second_close_date": _iso(opportunity.second_close_date),
        "second_close_date_label": opportunity.second_close_date_label,
        "archive_date": _iso(opportunity.archive_date),
        "forecast_post_date": _iso(opportunity.forecast_post_date),
        "forecast_award_date": _iso(opportunity.forecast_award_date),
        "fiscal_year": opportunity.fiscal_year,
        "award_floor": opportunity.award_floor,
        "award_ceiling": opportunity.award_ceiling,
        "total_funding": opportunity.total_funding,
        "expected_awards": opportunity.expected_awards,
        "cost_sharing": opportunity.cost_sharing,
        "eligible_applicants": opportunity.eligible_applicants,
        "eligibility_codes": list(opportunity.eligibility_codes or []),
        "funding_instruments": list(opportunity.funding_instruments or []),
        "categories": list(opportunity.categories or []),
        "opportunity_category": opportunity.opportunity_category,
        "description": opportunity.description,
        "url": opportunity.url,
        "agency_url": opportunity.agency_url,
        "contact": opportunity.contact,
        "version": opportunity.version,
    }
    record = {key: value for key, value in record.items() if value not in (None, [], "")}
    for key, value in (opportunity.extra or {}).items():
        record.setdefault(key, value)
    return record


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def iter_export(session: Session) -> Iterator[str]:
    """Every stored opportunity (merged duplicates excluded) as a JSON line, in id order."""
    query = select(Opportunity).where(Opportunity.merged_into_id.is_(None)).order_by(Opportunity.id)
    for opportunity in session.scalars(query.execution_options(yield_per=500)):
        yield json.dumps(to_contract(opportunity), ensure_ascii=False)
