"""Store normalized opportunities: insert new ones, version changes, skip unchanged, keep curation.

The one way records enter the store (imports, seeds and every crawler go through ``upsert_many``).
It works in batches so a full Grants.gov extract (85,000 records) loads at parse speed: existing
rows are looked up by (source, source id) once per batch, unchanged ones are recognised by content
hash and only have ``last_seen`` bumped, and only new or changed rows are written.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    JSON,
    Connection,
    Date,
    String,
    Table,
    and_,
    bindparam,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from app.db import utcnow
from app.models import (
    Agency,
    Opportunity,
    OpportunityCode,
    OpportunityStatus,
    OpportunityVersion,
)
from app.models.catalogue_state import mark_changed
from app.models.opportunity import number_key
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
#: Session.info flag set for a bulk load: matching records the changed ids as pending for the next
#: ``flask reindex`` instead of re-indexing them after every commit (see ``matching.pending``).
DEFER_SYNC_KEY = "opportunities_sync_deferred"


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


#: Columns a new row gets from the store at write time rather than from its record.
WRITE_TIME_COLUMNS = ("agency_id", "first_seen", "last_seen", "updated_at")
#: Columns ``new_row_values`` gives, in its order.
RECORD_COLUMNS: tuple[str, ...] = (
    *(COLUMN_FOR_FIELD.get(name, name) for name in CONTENT_FIELDS),
    "extra",
    "number_key",
    "source",
    "source_id",
    "content_hash",
    "source_hash",
    "field_sources",
    "cvi_reasons",
    "curated_fields",
    "focus_tags",
    "cvi_eligible",
    "featured",
    "hidden",
)


def new_row_values(record: NormalizedOpportunity, digest: str, today: dt.date) -> dict[str, Any]:
    """The columns of a new opportunity row that come from its record (all but ``WRITE_TIME_COLUMNS``)."""
    values = _column_values(record, today)
    values.update(
        number_key=number_key(record.number),
        source=record.source,
        source_id=record.id,
        content_hash=digest,
        source_hash=record.source_hash,
        field_sources={},
        cvi_reasons=[],
        curated_fields=[],
        focus_tags=[],
        cvi_eligible=False,
        featured=False,
        hidden=False,
    )
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
    return [
        {"opportunity_id": opportunity_id, "kind": kind, "code": code} for kind, code in code_pairs(values)
    ]


def code_pairs(values: dict[str, Any]) -> list[tuple[str, str]]:
    """(kind, code) of the ``opportunity_codes`` rows a row with these column values has."""
    pairs = []
    for column, kind in CODE_KINDS.items():
        for code in dict.fromkeys(values.get(column) or []):
            pairs.append((kind, str(code)[:40]))
    return pairs


def allocate_ids(connection: Connection, table: Table, count: int) -> list[int]:
    """``count`` fresh primary keys for ``table``, taken before the rows are written.

    PostgreSQL draws them from the column's sequence; SQLite continues after the highest rowid
    (what it would assign itself; a concurrent writer makes the insert fail, never collide).
    """
    if connection.dialect.name == "postgresql":
        rows = connection.exec_driver_sql(
            f"SELECT nextval(pg_get_serial_sequence('{table.name}', 'id')) "
            f"FROM generate_series(1, {int(count)})"
        )
        return [int(row[0]) for row in rows]
    start = int(connection.exec_driver_sql(f"SELECT coalesce(max(id), 0) FROM {table.name}").scalar_one())
    return list(range(start + 1, start + 1 + count))


def _memoized(processor: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A JSON bind processor that serializes each distinct list of codes once per batch.

    JSON columns of an extract batch repeat the same few values (``[]``, ``{}``, the same
    eligibility codes), and serializing ~400,000 of them was a fifth of the store side's time.
    The cache is bounded (a bulk load's stager keeps one for the whole run).
    """
    cache: dict[Any, Any] = {}

    def process(value: Any) -> Any:
        if isinstance(value, list) and all(type(item) is str for item in value):
            key: Any = ("list", *value)
        elif isinstance(value, dict) and not value:
            key = ("dict",)
        else:
            return processor(value)
        found = cache.get(key)
        if found is None:
            if len(cache) >= _MEMO_SIZE:
                cache.clear()
            found = cache[key] = processor(value)
        return found

    return process


def _memoized_dates(processor: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A date bind processor that formats each distinct date once (dates repeat across rows)."""
    cache: dict[Any, Any] = {None: None}

    def process(value: Any) -> Any:
        found = cache.get(value, cache)
        if found is cache:
            if len(cache) >= _MEMO_SIZE:
                cache.clear()
                cache[None] = None
            found = cache[value] = processor(value)
        return found

    return process


_MEMO_SIZE = 20_000


def _fast_toast_compression(connection: Connection) -> None:
    """Compress this transaction's long texts with lz4 instead of pglz where the server has it.

    Descriptions are stored compressed (TOAST); pglz made the server the slowest part of a
    first extract load (COPY of 43,000 rows: ~11 s with pglz, ~7.5 s with lz4 on the bench box).
    Storage only: values read back the same, old rows stay as they are; ``SET LOCAL`` ends with
    the transaction.
    """
    available = connection.info.get("lz4_toast")
    if available is None:
        available = connection.info["lz4_toast"] = bool(
            connection.exec_driver_sql(
                "SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression' AND 'lz4' = ANY(enumvals)"
            ).first()
        )
    if available:
        connection.exec_driver_sql("SET LOCAL default_toast_compression = lz4")


def bind_processors(table: Table, names: Sequence[str], dialect: Any) -> list[Callable[[Any], Any] | None]:
    """Each column's own bind processing (JSON, dates, UTC timestamps) for ``dialect``, so values
    written at the driver level are stored exactly as the ORM would store them; JSON columns
    serialize each distinct list of codes once (``_memoized``)."""
    columns = [table.c[name] for name in names]
    processors: list[Callable[[Any], Any] | None] = []
    for column in columns:
        processor: Callable[[Any], Any] | None = column.type._cached_bind_processor(dialect)
        if processor is not None and isinstance(column.type, JSON):
            processor = _memoized(processor)
        elif processor is not None and isinstance(column.type, Date):
            processor = _memoized_dates(processor)
        processors.append(processor)
    return processors


def bulk_insert(
    session: Session, table: Table, rows: Sequence[dict[str, Any]], *, with_ids: bool = False
) -> list[int]:
    """Insert uniform rows (same keys) in as few round trips as the driver allows; their ids if asked.

    Values go through each column type's own bind processing (``bind_processors``), then
    ``insert_driver_rows`` writes them.
    """
    if not rows:
        return []
    connection = session.connection()
    names = list(rows[0])
    ids = allocate_ids(connection, table, len(rows)) if with_ids else []
    processors = bind_processors(table, names, connection.dialect)
    converting = [(index, processor) for index, processor in enumerate(processors) if processor is not None]

    def prepared() -> Iterator[tuple[Any, ...]]:
        for number, values in enumerate(rows):
            raw = [values[name] for name in names]
            for index, processor in converting:
                raw[index] = processor(raw[index])
            yield (ids[number], *raw) if with_ids else tuple(raw)

    insert_driver_rows(session, table, ["id", *names] if with_ids else names, prepared())
    return ids


def insert_driver_rows(
    session: Session, table: Table, names: Sequence[str], rows: Iterable[Sequence[Any]]
) -> None:
    """Insert rows of driver-level values (bind processing already applied): one ``COPY`` on
    PostgreSQL, one ``executemany`` on SQLite. ``INSERT … RETURNING`` with many rows made psycopg
    re-parse a 45,000-placeholder statement per page and SQLite fall back to one statement per row."""
    # Driver-level writes bypass the session events that move the catalogue version on.
    mark_changed(session)
    connection = session.connection()
    dialect = connection.dialect
    column_list = ", ".join(dialect.identifier_preparer.quote(name) for name in names)
    if dialect.name == "postgresql":
        _fast_toast_compression(connection)
        cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
        with cursor.copy(f"COPY {table.name} ({column_list}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    else:
        mark = "?" if dialect.paramstyle == "qmark" else "%s"
        marks = ", ".join(mark for _ in names)
        connection.exec_driver_sql(
            f"INSERT INTO {table.name} ({column_list}) VALUES ({marks})", list(rows)  # type: ignore[arg-type]
        )


def _agency_ids(session: Session, records: Iterable[NormalizedOpportunity]) -> dict[str, int]:
    """Agency ids by sub-agency code, creating agencies the store has not seen yet."""
    wanted: dict[str, tuple[str, str]] = {}
    for record in records:
        if record.sub_agency:
            wanted.setdefault(*agency_of(record))
    return agency_ids_for(session, wanted)


def agency_of(record: NormalizedOpportunity) -> tuple[str, tuple[str, str]]:
    """(code, (department, name)) of the agency a record with a ``sub_agency`` belongs to."""
    sub_agency = record.sub_agency or ""
    return sub_agency[:60], (record.agency, record.agency_name or sub_agency)


def agency_ids_for(session: Session, wanted: dict[str, tuple[str, str]]) -> dict[str, int]:
    """Agency ids by code for ``wanted`` (code → (department, name)), creating the missing ones."""
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


def _existing_rows(session: Session, source: str, source_ids: list[str]) -> list[Any]:
    """(source_id, id, content_hash, vanished_at, source_hash) of the stored rows among ``source_ids``.

    PostgreSQL joins an ``unnest`` of the ids to the unique (source, source_id) index: with
    ``source_id IN (…)`` a table without statistics yet (a first bulk load; autovacuum has not
    analyzed it) was planned as an index scan on ``source`` alone with the 500-value list as a
    filter, seconds per batch once tens of thousands of rows were in. SQLite gets
    ``source = ? AND source_id IN (…)`` (it does not use the unique index for a row-value IN).
    """
    columns = (
        Opportunity.source_id,
        Opportunity.id,
        Opportunity.content_hash,
        Opportunity.vanished_at,
        Opportunity.source_hash,
    )
    if session.get_bind().dialect.name == "postgresql":
        wanted = (
            func.unnest(bindparam("wanted_ids", source_ids, type_=ARRAY(String)))
            .table_valued("source_id")
            .render_derived(name="wanted")
        )
        statement = (
            select(*columns)
            .select_from(wanted)
            .join(
                Opportunity,
                and_(Opportunity.source == source, Opportunity.source_id == wanted.c.source_id),
            )
        )
        return list(session.execute(statement).all())
    rows: list[Any] = []
    for start in range(0, len(source_ids), 500):
        rows.extend(
            session.execute(
                select(*columns).where(
                    Opportunity.source == source, Opportunity.source_id.in_(source_ids[start : start + 500])
                )
            ).all()
        )
    return rows


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
    ids_by_source: dict[str, list[str]] = {}
    for source, source_id in by_key:
        ids_by_source.setdefault(source, []).append(source_id)
    for source, source_ids in ids_by_source.items():
        for source_id, opp_id, content_hash, vanished_at, source_hash in _existing_rows(
            session, source, source_ids
        ):
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
            values = new_row_values(record, digest, today)
            values.update(
                agency_id=agency_ids.get((record.sub_agency or "")[:60]),
                first_seen=now,
                last_seen=now,
                updated_at=now,
            )
            inserts.append(values)
        elif found[1] == digest and found[2] is None:
            unchanged_ids.append(found[0])
            if record.source_hash is not None and record.source_hash != found[3]:
                rehashed.append({"b_id": found[0], "b_source_hash": record.source_hash})
        else:
            changed.append((found[0], record, digest))

    if inserts:
        new_ids = bulk_insert(session, Opportunity.__table__, inserts, with_ids=True)  # type: ignore[arg-type]
        for opp_id, values in zip(new_ids, inserts, strict=True):
            insert_codes.extend(_code_rows(opp_id, values))
        if insert_codes:
            bulk_insert(session, OpportunityCode.__table__, insert_codes)  # type: ignore[arg-type]
        result.new = len(new_ids)
        result.new_ids = list(new_ids)

    if unchanged_ids:
        for start in range(0, len(unchanged_ids), 900):
            session.execute(
                update(Opportunity)
                .where(Opportunity.id.in_(unchanged_ids[start : start + 900]))
                .values(last_seen=now)
                .execution_options(synchronize_session=False, catalogue_neutral=True)
            )
        result.unchanged = len(unchanged_ids)
    if rehashed:
        session.execute(
            update(Opportunity.__table__)  # type: ignore[arg-type]
            .where(Opportunity.__table__.c.id == bindparam("b_id"))
            .values(source_hash=bindparam("b_source_hash"))
            .execution_options(catalogue_neutral=True),
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
    among: Sequence[int] | None = None,
) -> int:
    """Mark the source's records not seen since ``seen_since`` as vanished (never delete them).

    ``scope`` is an optional extra SQL condition limiting which records the run covered (for
    example only one department); ``among``, the only ids that can qualify (a bulk load knows
    which rows it did not see, and so spares the store a scan of the whole table). Returns how
    many were marked; each gets a version row.
    """
    now = now or utcnow()
    condition = and_(
        Opportunity.source == source,
        Opportunity.last_seen < seen_since,
        Opportunity.vanished_at.is_(None),
    )
    if scope is not None:
        condition = and_(condition, scope)
    if among is None:
        ids = list(session.scalars(select(Opportunity.id).where(condition)))
    else:
        wanted = sorted(set(among))
        ids = [
            opp_id
            for start in range(0, len(wanted), 900)
            for opp_id in session.scalars(
                select(Opportunity.id).where(condition, Opportunity.id.in_(wanted[start : start + 900]))
            )
        ]
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
