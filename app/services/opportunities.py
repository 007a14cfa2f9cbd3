"""Store normalized opportunities: insert new ones, version changes, skip unchanged, keep curation.

The one way records enter the store (imports, seeds and every crawler go through ``upsert_many``).
It works in batches so a full Grants.gov extract (85,000 records) loads at parse speed: existing
rows are looked up by (source, source id) once per batch, unchanged ones are recognised by content
hash and only have ``last_seen`` bumped, and only new or changed rows are written.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, bindparam, delete, insert, select, tuple_, update
from sqlalchemy.orm import Session

from app.db import utcnow
from app.models import (
    Agency,
    Opportunity,
    OpportunityCode,
    OpportunityStatus,
    OpportunityVersion,
)
from crawlers.normalize import CONTENT_FIELDS, NormalizedOpportunity

log = logging.getLogger(__name__)

#: Contract field → store column where the names differ.
COLUMN_FOR_FIELD = {"agency": "department"}
#: Code kinds kept in ``opportunity_codes`` for filtering and facet counts.
CODE_KINDS = {
    "aln": "aln",
    "eligibility_codes": "eligibility",
    "funding_instruments": "instrument",
    "categories": "category",
}
#: Session.info key where the ids of inserted or changed opportunities collect until commit,
#: so the search index and embeddings can follow the store in the same unit of work.
CHANGED_KEY = "opportunities_changed"


@dataclass
class UpsertResult:
    """What a batch did; ids are store ids."""

    new: int = 0
    updated: int = 0
    unchanged: int = 0
    new_ids: list[int] = field(default_factory=list)
    updated_ids: list[int] = field(default_factory=list)

    def add(self, other: UpsertResult) -> None:
        self.new += other.new
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.new_ids.extend(other.new_ids)
        self.updated_ids.extend(other.updated_ids)


def derive_status(record: NormalizedOpportunity, today: dt.date) -> OpportunityStatus:
    """The record's status, or one read from its dates when the source gave none."""
    if record.status:
        return OpportunityStatus(record.status)
    if record.doc_type == "forecast":
        return OpportunityStatus.FORECASTED
    if record.archive_date and record.archive_date < today:
        return OpportunityStatus.ARCHIVED
    if record.close_date and record.close_date < today:
        return OpportunityStatus.CLOSED
    return OpportunityStatus.POSTED


def _column_values(record: NormalizedOpportunity, today: dt.date) -> dict[str, Any]:
    """The store columns a record sets (python values, not JSON)."""
    values: dict[str, Any] = {}
    for name in CONTENT_FIELDS:
        values[COLUMN_FOR_FIELD.get(name, name)] = getattr(record, name)
    values["status"] = derive_status(record, today)
    values["description_html"] = record.description_html
    values["extra"] = record.extra_fields()
    return values


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, list):
        return list(value)
    if isinstance(value, OpportunityStatus):
        return str(value)
    return value


def _code_rows(opportunity_id: int, values: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for column, kind in CODE_KINDS.items():
        for code in dict.fromkeys(values.get(column) or []):
            rows.append({"opportunity_id": opportunity_id, "kind": kind, "code": str(code)[:40]})
    return rows


def _agency_ids(session: Session, records: Iterable[NormalizedOpportunity]) -> dict[str, int]:
    """Agency ids by sub-agency code, creating agencies the store has not seen yet."""
    wanted: dict[str, tuple[str, str]] = {}
    for record in records:
        if record.sub_agency:
            code = record.sub_agency[:60]
            wanted.setdefault(code, (record.agency, record.agency_name or record.sub_agency))
    if not wanted:
        return {}
    known = dict(session.execute(select(Agency.code, Agency.id).where(Agency.code.in_(wanted))).all())
    for code, (department, name) in wanted.items():
        if code not in known:
            agency = Agency(code=code, name=name[:300], department=department)
            session.add(agency)
            session.flush()
            known[code] = agency.id
    return known


def upsert_many(
    session: Session,
    records: Sequence[NormalizedOpportunity],
    *,
    crawl_run_id: int | None = None,
    now: dt.datetime | None = None,
) -> UpsertResult:
    """Insert, update or skip each record; the caller owns the transaction (commit or roll back).

    Records are keyed by (``source``, ``id``). A duplicate key within one batch keeps the last one.
    """
    now = now or utcnow()
    today = now.date()
    result = UpsertResult()
    by_key: dict[tuple[str, str], NormalizedOpportunity] = {}
    for record in records:
        by_key[(record.source, record.id)] = record
    if not by_key:
        return result

    agency_ids = _agency_ids(session, by_key.values())
    existing: dict[tuple[str, str], tuple[int, str, dt.datetime | None, str | None]] = {}
    keys = list(by_key)
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        rows = session.execute(
            select(
                Opportunity.source,
                Opportunity.source_id,
                Opportunity.id,
                Opportunity.content_hash,
                Opportunity.vanished_at,
                Opportunity.source_hash,
            ).where(tuple_(Opportunity.source, Opportunity.source_id).in_(chunk))
        ).all()
        for source, source_id, opp_id, content_hash, vanished_at, source_hash in rows:
            existing[(source, source_id)] = (opp_id, content_hash, vanished_at, source_hash)

    inserts: list[dict[str, Any]] = []
    insert_codes: list[dict[str, Any]] = []
    unchanged_ids: list[int] = []
    rehashed: list[dict[str, Any]] = []
    changed: list[tuple[int, NormalizedOpportunity, str]] = []
    for key, record in by_key.items():
        digest = record.content_hash()
        found = existing.get(key)
        if found is None:
            values = _column_values(record, today)
            values.update(
                source=record.source,
                source_id=record.id,
                agency_id=agency_ids.get((record.sub_agency or "")[:60]),
                content_hash=digest,
                source_hash=record.source_hash,
                first_seen=now,
                last_seen=now,
                updated_at=now,
                field_sources={},
                cvi_reasons=[],
                curated_fields=[],
                focus_tags=[],
                cvi_eligible=False,
                featured=False,
                hidden=False,
            )
            inserts.append(values)
        elif found[1] == digest and found[2] is None:
            unchanged_ids.append(found[0])
            if record.source_hash is not None and record.source_hash != found[3]:
                rehashed.append({"b_id": found[0], "b_source_hash": record.source_hash})
        else:
            changed.append((found[0], record, digest))

    if inserts:
        # RETURNING the key instead of sort_by_parameter_order: on SQLite the sorted form falls back
        # to one INSERT per row, which made a full extract load take minutes.
        returned = session.execute(
            insert(Opportunity).returning(Opportunity.id, Opportunity.source, Opportunity.source_id), inserts
        ).all()
        id_for = {(source, source_id): opp_id for opp_id, source, source_id in returned}
        new_ids = [id_for[(values["source"], values["source_id"])] for values in inserts]
        for opp_id, values in zip(new_ids, inserts, strict=True):
            insert_codes.extend(_code_rows(opp_id, values))
        if insert_codes:
            session.execute(insert(OpportunityCode), insert_codes)
        result.new = len(new_ids)
        result.new_ids = list(new_ids)

    if unchanged_ids:
        for start in range(0, len(unchanged_ids), 900):
            session.execute(
                update(Opportunity)
                .where(Opportunity.id.in_(unchanged_ids[start : start + 900]))
                .values(last_seen=now)
                .execution_options(synchronize_session=False)
            )
        result.unchanged = len(unchanged_ids)
    if rehashed:
        session.execute(
            update(Opportunity.__table__)  # type: ignore[arg-type]
            .where(Opportunity.__table__.c.id == bindparam("b_id"))
            .values(source_hash=bindparam("b_source_hash")),
            rehashed,
        )

    for opp_id, record, digest in changed:
        opportunity = session.get(Opportunity, opp_id)
        assert opportunity is not None
        if _apply_change(session, opportunity, record, digest, today, now, crawl_run_id, agency_ids):
            result.updated += 1
            result.updated_ids.append(opp_id)
        else:
            result.unchanged += 1

    session.flush()
    pending = session.info.setdefault(CHANGED_KEY, set())
    pending.update(result.new_ids)
    pending.update(result.updated_ids)
    return result


def _apply_change(
    session: Session,
    opportunity: Opportunity,
    record: NormalizedOpportunity,
    digest: str,
    today: dt.date,
    now: dt.datetime,
    crawl_run_id: int | None,
    agency_ids: dict[str, int],
) -> bool:
    """Write the fields that changed and a version row naming them; curated fields are kept."""
    values = _column_values(record, today)
    curated = set(opportunity.curated_fields or [])
    changes: dict[str, dict[str, Any]] = {}
    kept: list[str] = []
    for column, new_value in values.items():
        old_value = getattr(opportunity, column)
        if _jsonable(old_value) == _jsonable(new_value):
            continue
        if column in curated or _field_name(column) in curated:
            kept.append(_field_name(column))
            continue
        changes[_field_name(column)] = {"old": _jsonable(old_value), "new": _jsonable(new_value)}
        setattr(opportunity, column, new_value)
    if opportunity.vanished_at is not None:
        changes["vanished"] = {"old": opportunity.vanished_at.isoformat(), "new": None}
        opportunity.vanished_at = None
    previous_hash = opportunity.content_hash
    opportunity.content_hash = digest
    opportunity.source_hash = record.source_hash
    opportunity.last_seen = now
    if not changes:
        # Only curated fields (or nothing visible) differ: remember the hash, write no version.
        return False
    opportunity.updated_at = now
    if record.sub_agency:
        opportunity.agency_id = agency_ids.get(record.sub_agency[:60], opportunity.agency_id)
    if any(name in changes for name in CODE_KINDS):
        session.execute(delete(OpportunityCode).where(OpportunityCode.opportunity_id == opportunity.id))
        codes = _code_rows(opportunity.id, {c: getattr(opportunity, c) for c in CODE_KINDS})
        if codes:
            session.execute(insert(OpportunityCode), codes)
    session.add(
        OpportunityVersion(
            opportunity_id=opportunity.id,
            changed_at=now,
            source=record.source,
            crawl_run_id=crawl_run_id,
            changed_fields=sorted(changes),
            changes=changes,
            kept_curated=sorted(kept),
            previous_hash=previous_hash,
            content_hash=digest,
        )
    )
    return True


def _field_name(column: str) -> str:
    for name, col in COLUMN_FOR_FIELD.items():
        if col == column:
            return name
    return column


def upsert(
    session: Session,
    record: NormalizedOpportunity,
    *,
    crawl_run_id: int | None = None,
    now: dt.datetime | None = None,
) -> UpsertResult:
    """Upsert one record (a batch of one)."""
    return upsert_many(session, [record], crawl_run_id=crawl_run_id, now=now)


def mark_vanished(
    session: Session,
    source: str,
    seen_since: dt.datetime,
    *,
    crawl_run_id: int | None = None,
    now: dt.datetime | None = None,
    scope: Any = None,
) -> int:
    """Mark the source's records not seen since ``seen_since`` as vanished (never delete them).

    ``scope`` is an optional extra SQL condition limiting which records the run covered (for
    example only one department). Returns how many were marked; each gets a version row.
    """
    now = now or utcnow()
    condition = and_(
        Opportunity.source == source,
        Opportunity.last_seen < seen_since,
        Opportunity.vanished_at.is_(None),
    )
    if scope is not None:
        condition = and_(condition, scope)
    ids = list(session.scalars(select(Opportunity.id).where(condition)))
    for start in range(0, len(ids), 900):
        chunk = ids[start : start + 900]
        session.execute(
            update(Opportunity)
            .where(Opportunity.id.in_(chunk))
            .values(vanished_at=now, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        hashes = dict(
            session.execute(
                select(Opportunity.id, Opportunity.content_hash).where(Opportunity.id.in_(chunk))
            ).all()
        )
        session.execute(
            insert(OpportunityVersion),
            [
                {
                    "opportunity_id": opp_id,
                    "changed_at": now,
                    "source": source,
                    "crawl_run_id": crawl_run_id,
                    "changed_fields": ["vanished"],
                    "changes": {"vanished": {"old": None, "new": now.isoformat()}},
                    "kept_curated": [],
                    "previous_hash": hashes[opp_id],
                    "content_hash": hashes[opp_id],
                }
                for opp_id in chunk
            ],
        )
    if ids:
        session.info.setdefault(CHANGED_KEY, set()).update(ids)
        log.info("opportunities vanished from source", extra={"source": source, "count": len(ids)})
    return len(ids)
