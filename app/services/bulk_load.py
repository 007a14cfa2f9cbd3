"""Bulk loads (``ingest-extract``): records made ready for the store in the parser worker.

A full extract brings ~43,000 records. Handing each across the process boundary as an object and
turning its values into driver-level ones column by column made the store process the slowest part
of a load. Instead, before the parser worker starts, ``Snapshot.load`` reads what the store holds
for the source (store id, content hash, raw fingerprint and whether vanished, by source id; and the
opportunity numbers agency records are merged on), and the worker's ``Stager`` sorts each chunk
against it:

* seen unchanged (same raw fingerprint) or the same content under a new fingerprint → their store
  ids, so ``write_staged`` only moves ``last_seen`` (and ``source_hash``) by primary key;
* new → a row of driver-level values, made with each column's own bind processing (what the ORM
  would store) and inserted by ``write_staged`` with its codes in one ``COPY`` or ``executemany``;
* anything else (changed content, vanished, merged with agency records) → the record itself, for
  ``upsert_many`` (versions, curated fields, merging). (The reader never stages a second copy of a
  record from the same file; those reach ``upsert_many`` as plain records.)

All of it is written in the batch's one transaction. What the snapshot said is only trusted where a
concurrent writer cannot make it wrong: a record another run stored meanwhile fails its batch on the
unique (source, source id) key exactly as ``upsert_many`` would, and row updates skip rows vanished
since.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Opportunity, OpportunityCode
from app.services.opportunities import (
    CHANGED_KEY,
    RECORD_COLUMNS,
    WRITE_TIME_COLUMNS,
    agency_ids_for,
    agency_of,
    allocate_ids,
    bind_processors,
    code_pairs,
    insert_driver_rows,
    new_row_values,
)
from crawlers.normalize import NormalizedOpportunity

OPPORTUNITY_TABLE: Any = Opportunity.__table__
CODE_TABLE: Any = OpportunityCode.__table__


@dataclass
class Snapshot:
    """What the store held for one source when the load started."""

    #: source id → (store id, content hash, source hash, vanished, department)
    rows: dict[str, tuple[int, str, str | None, bool, str]]
    #: Opportunity numbers of agency records (a record with one is merged, so never staged as new).
    merge_numbers: frozenset[str]

    @classmethod
    def load(cls, session: Session, source: str, merge_sources: Sequence[str]) -> Snapshot:
        # Plain driver rows: no column needs result processing, and the ORM's row handling of
        # 43,000 rows cost more than the query.
        table = OPPORTUNITY_TABLE
        result = session.connection().execute(
            select(
                table.c.source_id,
                table.c.id,
                table.c.content_hash,
                table.c.source_hash,
                table.c.vanished_at.is_not(None),
                table.c.department,
            ).where(table.c.source == source)
        )
        rows = {row[0]: (row[1], row[2], row[3], bool(row[4]), row[5]) for row in result}
        numbers: frozenset[str] = frozenset()
        if merge_sources:
            numbers = frozenset(
                number
                for number in session.scalars(
                    select(Opportunity.number)
                    .where(Opportunity.source.in_(merge_sources), Opportunity.number.is_not(None))
                    .distinct()
                )
                if number
            )
        session.commit()
        return cls(rows, numbers)

    def known_hashes(self) -> Mapping[str, str]:
        """Raw fingerprints of the active rows (what the parser compares before reading a record),
        read through from ``rows`` rather than copied (43,000 entries, in both processes)."""
        return _KnownHashes(self.rows)

    def active_ids(self, departments: Collection[str] | None) -> list[int]:
        """Store ids of the rows not vanished (of ``departments`` only, when given)."""
        return [
            row[0]
            for row in self.rows.values()
            if not row[3] and (departments is None or row[4] in departments)
        ]

    def store_ids(self, source_ids: Iterable[str]) -> list[int]:
        """Store ids of those of ``source_ids`` the snapshot has."""
        rows = self.rows
        return [rows[source_id][0] for source_id in source_ids if source_id in rows]


class _KnownHashes(Mapping[str, str]):
    def __init__(self, rows: dict[str, tuple[int, str, str | None, bool, str]]) -> None:
        self.rows = rows

    def __getitem__(self, source_id: str) -> str:
        row = self.rows[source_id]
        if not row[2] or row[3]:
            raise KeyError(source_id)
        return row[2]

    def get(self, source_id: str, default: Any = None) -> Any:
        row = self.rows.get(source_id)
        return default if row is None or not row[2] or row[3] else row[2]

    def __iter__(self) -> Iterator[str]:
        return (source_id for source_id, row in self.rows.items() if row[2] and not row[3])

    def __len__(self) -> int:
        return sum(1 for _ in self)


@dataclass
class StagedRows:
    """One chunk sorted against the snapshot (see the module docstring); crosses the process
    boundary as plain tuples and strings."""

    #: Store ids of records only seen (``last_seen`` moves).
    touched: list[int] = field(default_factory=list)
    #: (store id, new source hash) of records whose content is unchanged under a new fingerprint.
    rehashed: list[tuple[int, str | None]] = field(default_factory=list)
    #: New rows: driver-level values in ``RECORD_COLUMNS`` order.
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    #: Per new row: its agency code (or None) and its (kind, code) pairs.
    row_agencies: list[str | None] = field(default_factory=list)
    row_codes: list[list[tuple[str, str]]] = field(default_factory=list)
    #: Agency code → (department, name) of the first new record naming it.
    agencies: dict[str, tuple[str, str]] = field(default_factory=dict)
    #: Records ``upsert_many`` must compare.
    records: list[NormalizedOpportunity] = field(default_factory=list)

    @property
    def written(self) -> int:
        return len(self.rows) + len(self.rehashed) + len(self.records)

    @property
    def seen(self) -> int:
        return len(self.touched)


class Stager:
    """Sorts chunks against a snapshot and makes new rows ready; runs in the parser worker.

    Pure computation on what it was built with (the snapshot and the dialect's bind processors,
    inherited through the fork), so it never touches the database.
    """

    def __init__(self, snapshot: Snapshot, dialect: Any, *, merged_source: bool) -> None:
        self.snapshot = snapshot
        self.merged_source = merged_source
        self.today = dt.date.today()
        self.processors = [
            (index, processor)
            for index, processor in enumerate(bind_processors(OPPORTUNITY_TABLE, RECORD_COLUMNS, dialect))
            if processor is not None
        ]

    def __call__(self, records: list[NormalizedOpportunity], seen: list[str]) -> StagedRows:
        staged = StagedRows()
        rows = self.snapshot.rows
        staged.touched = [rows[source_id][0] for source_id in seen]
        for record in records:
            found = rows.get(record.id)
            if self.merged_source and record.number and record.number in self.snapshot.merge_numbers:
                staged.records.append(record)
            elif found is None:
                self._add_row(staged, record)
            elif not found[3] and found[1] == record.content_hash():
                if record.source_hash != found[2]:
                    staged.rehashed.append((found[0], record.source_hash))
                else:
                    staged.touched.append(found[0])
            else:
                staged.records.append(record)
        return staged

    def _add_row(self, staged: StagedRows, record: NormalizedOpportunity) -> None:
        values = new_row_values(record, record.content_hash(), self.today)
        values["status"] = str(values["status"])
        row = [values[name] for name in RECORD_COLUMNS]
        for index, processor in self.processors:
            row[index] = processor(row[index])
        staged.rows.append(tuple(row))
        staged.row_codes.append(code_pairs(values))
        if record.sub_agency:
            code, agency = agency_of(record)
            staged.agencies.setdefault(code, agency)
            staged.row_agencies.append(code)
        else:
            staged.row_agencies.append(None)


def stager_for(session: Session, source: str, merge_sources: Sequence[str]) -> tuple[Stager, Snapshot]:
    """A stager over a fresh snapshot of ``source`` (``merge_sources``: agency sources whose records
    are merged into this one's by opportunity number)."""
    snapshot = Snapshot.load(session, source, merge_sources)
    dialect = session.get_bind().dialect
    return Stager(snapshot, dialect, merged_source=bool(merge_sources)), snapshot


@dataclass
class StagedCounts:
    new: int = 0
    unchanged: int = 0
    #: Store ids the batch inserted or found unchanged (seen in this run).
    seen_ids: list[int] = field(default_factory=list)
    records: list[NormalizedOpportunity] = field(default_factory=list)


#: SQLite setting for the connection a bulk load's batch is written on: a checkpoint every ~40 MiB
#: of WAL rather than every 4 MiB copies each page to the database once rather than several times
#: (a bigger page cache helped less than the memory it took). Durability is unchanged (WAL,
#: synchronous=NORMAL: every committed batch survives a crash). It stays on the process's pooled
#: connection; ``ingest-extract`` is a one-shot command.
SQLITE_LOAD_PRAGMAS = ("PRAGMA wal_autocheckpoint = 10000",)


def write_staged(session: Session, staged: Sequence[StagedRows], now: dt.datetime) -> StagedCounts:
    """Write staged chunks in the caller's transaction; returns what the caller still has to upsert."""
    counts = StagedCounts()
    connection = session.connection()
    dialect = connection.dialect
    if dialect.name == "sqlite":
        for pragma in SQLITE_LOAD_PRAGMAS:
            connection.exec_driver_sql(pragma)
    stamp = _processed(OPPORTUNITY_TABLE, "last_seen", dialect)(now)
    touched = [opp_id for part in staged for opp_id in part.touched]
    rehashed = [pair for part in staged for pair in part.rehashed]
    counts.unchanged = _touch(session, touched, rehashed, stamp)
    counts.seen_ids = [*touched, *(opp_id for opp_id, _ in rehashed)]
    rows = [row for part in staged for row in part.rows]
    if rows:
        wanted: dict[str, tuple[str, str]] = {}
        for part in staged:
            for code, agency in part.agencies.items():
                wanted.setdefault(code, agency)
        agency_ids = agency_ids_for(session, wanted)
        ids = allocate_ids(connection, OPPORTUNITY_TABLE, len(rows))
        row_agencies = [code for part in staged for code in part.row_agencies]
        written = (
            (opp_id, agency_ids.get(code) if code else None, stamp, stamp, stamp, *row)
            for opp_id, code, row in zip(ids, row_agencies, rows, strict=True)
        )
        names = ("id", *WRITE_TIME_COLUMNS, *RECORD_COLUMNS)
        insert_driver_rows(session, OPPORTUNITY_TABLE, names, written)
        row_codes = (pairs for part in staged for pairs in part.row_codes)
        codes = [
            (opp_id, kind, code)
            for opp_id, pairs in zip(ids, row_codes, strict=True)
            for kind, code in pairs
        ]
        if codes:
            insert_driver_rows(session, CODE_TABLE, ("opportunity_id", "kind", "code"), codes)
        session.info.setdefault(CHANGED_KEY, set()).update(ids)
        counts.new = len(ids)
        counts.seen_ids.extend(ids)
    counts.records = [record for part in staged for record in part.records]
    return counts


def _processed(table: Any, column: str, dialect: Any) -> Callable[[Any], Any]:
    processor = table.c[column].type._cached_bind_processor(dialect)
    return processor if processor is not None else (lambda value: value)


def _touch(session: Session, touched: list[int], rehashed: list[tuple[int, str | None]], stamp: Any) -> int:
    """Move ``last_seen`` (and ``source_hash`` where it changed) of rows still not vanished, by id."""
    if not touched and not rehashed:
        return 0
    connection = session.connection()
    count = 0
    if connection.dialect.name == "postgresql":
        if touched:
            result = connection.exec_driver_sql(
                "UPDATE opportunities SET last_seen = %(stamp)s "
                "WHERE id = ANY(%(ids)s) AND vanished_at IS NULL",
                {"stamp": stamp, "ids": touched},
            )
            count += int(result.rowcount or 0)
        if rehashed:
            result = connection.exec_driver_sql(
                "UPDATE opportunities AS o SET last_seen = %(stamp)s, source_hash = r.source_hash "
                "FROM unnest(%(ids)s::integer[], %(hashes)s::varchar[]) AS r(id, source_hash) "
                "WHERE o.id = r.id AND o.vanished_at IS NULL",
                {"stamp": stamp, "ids": [i for i, _ in rehashed], "hashes": [h for _, h in rehashed]},
            )
            count += int(result.rowcount or 0)
        return count
    if touched:
        result = connection.exec_driver_sql(
            "UPDATE opportunities SET last_seen = ? WHERE id = ? AND vanished_at IS NULL",
            [(stamp, opp_id) for opp_id in touched],
        )
        count += int(result.rowcount or 0)
    if rehashed:
        result = connection.exec_driver_sql(
            "UPDATE opportunities SET last_seen = ?, source_hash = ? WHERE id = ? AND vanished_at IS NULL",
            [(stamp, source_hash, opp_id) for opp_id, source_hash in rehashed],
        )
        count += int(result.rowcount or 0)
    return count
