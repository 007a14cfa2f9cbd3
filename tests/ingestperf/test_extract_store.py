"""What a bulk load stores through staged rows is, column by column, what ``upsert_many`` stores for
the records main's normalizer made of the same file; and a re-ingest only moves ``last_seen``."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from app.models import Agency, CrawlRun, Opportunity, OpportunityCode, OpportunityVersion
from app.services.opportunities import DEFER_SYNC_KEY, RECORD_COLUMNS, new_row_values, upsert_many
from tests.ingestperf import reference_normalizer as reference
from tests.ingestperf.generated import ingest_generated

#: Bookkeeping the store sets at write time (and the raw fingerprint, whose definition changed).
NOT_COMPARED = {"id", "agency_id", "first_seen", "last_seen", "updated_at", "source_hash"}


def stored(session: Session) -> dict[str, dict[str, Any]]:
    """Every opportunity's columns by source id, with its agency code and codes."""
    session.expire_all()
    agencies = dict(session.execute(select(Agency.id, Agency.code)).all())
    codes: dict[int, set[tuple[str, str]]] = {}
    for opp_id, kind, code in session.execute(
        select(OpportunityCode.opportunity_id, OpportunityCode.kind, OpportunityCode.code)
    ):
        codes.setdefault(opp_id, set()).add((kind, code))
    columns = [column.key for column in Opportunity.__table__.columns if column.key not in NOT_COMPARED]
    rows = {}
    for row in session.scalars(select(Opportunity)):
        values = {column: getattr(row, column) for column in columns}
        values["agency"] = agencies.get(row.agency_id) if row.agency_id else None
        values["codes"] = codes.get(row.id, set())
        rows[row.source_id] = values
    return rows


def _diff(a: dict[str, dict[str, Any]], b: dict[str, dict[str, Any]]) -> list[Any]:
    return [(k, c, a[k][c], b[k][c]) for k in a for c in a[k] if a[k][c] != b.get(k, {}).get(c)][:5]


def test_staged_rows_store_what_upsert_many_stores(app: Flask, session: Session, tmp_path: Path) -> None:
    path = ingest_generated(app, tmp_path, 900, batch_size=100)
    bulk = stored(session)
    assert len(bulk) > 350

    for table in (OpportunityCode, OpportunityVersion, Opportunity, Agency):
        session.execute(delete(table))
    session.commit()
    records = list(reference.records(path, dt.date.today()))
    session.info[DEFER_SYNC_KEY] = True  # as in a bulk load: matching waits for reindex
    upsert_many(session, records)
    session.commit()
    session.info.pop(DEFER_SYNC_KEY)
    generic = stored(session)
    assert generic == bulk, _diff(generic, bulk)


def test_unchanged_reingest_moves_only_last_seen(app: Flask, session: Session, tmp_path: Path) -> None:
    path = ingest_generated(app, tmp_path, 300, batch_size=50)
    runner = app.test_cli_runner()
    before = stored(session)
    seen = dict(session.execute(select(Opportunity.source_id, Opportunity.last_seen)).all())
    # A row whose raw fingerprint is unknown (as after a parser change) keeps its content: only the
    # fingerprint is written again, no version.
    key = min(before)
    session.execute(update(Opportunity).where(Opportunity.source_id == key).values(source_hash=None))
    session.commit()

    result = runner.invoke(args=["ingest-extract", str(path)])
    assert result.exit_code == 0, result.output
    assert stored(session) == before
    assert session.scalar(select(OpportunityVersion.id)) is None
    session.expire_all()
    after = dict(session.execute(select(Opportunity.source_id, Opportunity.last_seen)).all())
    assert all(after[key] > seen[key] for key in seen)
    assert session.scalar(select(Opportunity.source_hash).where(Opportunity.source_id == key))
    run = session.scalar(select(CrawlRun).order_by(CrawlRun.id.desc()))
    assert run is not None and (run.new, run.updated, run.unchanged, run.vanished) == (0, 0, len(before), 0)


def test_record_columns_name_what_new_row_values_gives() -> None:
    record = reference.NormalizedOpportunity(id="1", title="t", agency="DOJ", description="d")
    assert tuple(new_row_values(record, "h", dt.date.today())) == RECORD_COLUMNS
