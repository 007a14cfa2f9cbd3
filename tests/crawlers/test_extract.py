"""Grants.gov XML extract: streaming ingest from .xml, .zip and URL; re-ingest skips; faults."""

from __future__ import annotations

import datetime as dt
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import CrawlError, CrawlRun, Opportunity, OpportunityVersion
from matching import pending
from matching.embeddings import DIMENSIONS
from matching.keyword import get_index
from matching.sync import reindex
from tests.crawlers.conftest import FIXTURES, FakeServer, Reply, fixture_bytes

EXTRACT = FIXTURES / "extract"
FULL = EXTRACT / "GrantsDBExtract20261101v2.xml"


def ingest(app: Flask, *args: str) -> tuple[int, str]:
    result = app.test_cli_runner().invoke(args=["ingest-extract", *args])
    return result.exit_code, result.output + result.stderr


def last_run(session: Session) -> CrawlRun:
    session.expire_all()
    run = session.scalar(select(CrawlRun).order_by(CrawlRun.id.desc()))
    assert run is not None
    return run


def by_id(session: Session) -> dict[str, Opportunity]:
    session.expire_all()
    return {o.source_id: o for o in session.scalars(select(Opportunity))}


def test_ingest_xml_stores_core_departments_field_by_field(crawl_app: Flask, session: Session) -> None:
    code, output = ingest(crawl_app, str(FULL))
    assert code == 0, output
    assert "ingest finished: grants_gov_extract succeeded (3 new" in output
    stored = by_id(session)
    assert set(stored) == {"350001", "340112", "350003"}  # the DOI record is filtered out
    bja = stored["350001"]
    assert bja.source == "grants_gov" and bja.department == "DOJ" and bja.sub_agency == "USDOJ-OJP-BJA"
    assert bja.title.endswith("Initiative & Training and Technical Assistance")
    assert (bja.post_date, bja.close_date, bja.archive_date) == (
        dt.date(2026, 6, 7),
        dt.date(2026, 7, 30),
        dt.date(2026, 8, 29),
    )
    assert bja.close_date_note and bja.close_date_note.startswith("Step 1 (SF-424")
    assert (bja.award_ceiling, bja.award_floor, bja.total_funding, bja.expected_awards) == (
        2_000_000,
        None,
        50_000_000,
        25,
    )
    assert bja.eligibility_codes == ["01", "02", "07", "12"] and bja.aln == ["16.045"]
    assert bja.cost_sharing is False and bja.version == "Synopsis 2"
    assert bja.description_html and "<script" not in bja.description_html and "cookie" not in bja.description
    assert "<strong>street outreach</strong>" in bja.description_html
    assert bja.description.startswith("The Community Based Violence Intervention")
    # Double-escaped contact text (&amp;lt;br/&amp;gt;) becomes line breaks.
    assert bja.contact == "OJP Response Center, 800-851-3420\ngrants@ncjrs.gov"
    assert bja.source_hash and len(bja.source_hash) == 32

    yarp = stored["340112"]
    assert yarp.status == "archived" and yarp.award_ceiling is None and yarp.department == "DOL"

    forecast = stored["350003"]
    assert (forecast.status, forecast.doc_type, forecast.fiscal_year) == ("forecasted", "forecast", 2027)
    assert forecast.close_date == dt.date(2027, 1, 15)
    assert forecast.forecast_post_date == dt.date(2026, 11, 2)
    assert forecast.forecast_award_date == dt.date(2027, 8, 1)
    assert forecast.contact == "Technical Information Management Section\n770-488-2700\nncipcfoa@cdc.gov"
    assert forecast.title == "Community Firearm Violence Prevention Research\u2019s Next Phase"

    run = last_run(session)
    assert (run.source, run.status, run.fetched, run.new) == ("grants_gov_extract", "succeeded", 3, 3)


def test_zip_and_all_agencies(crawl_app: Flask, session: Session, tmp_path: Path) -> None:
    archive = tmp_path / "GrantsDBExtract20261101v2.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        zipped.write(FULL, FULL.name)
    code, output = ingest(crawl_app, str(archive), "--all-agencies")
    assert code == 0, output
    stored = by_id(session)
    assert set(stored) == {"350001", "131073", "340112", "350003"}
    assert stored["131073"].department == "DOI"
    assert stored["131073"].contact == "Faith Graves, 703-648-7356\nfgraves@usgs.gov"


def test_unchanged_reingest_is_skipped_by_hash(crawl_app: Flask, session: Session) -> None:
    assert ingest(crawl_app, str(FULL))[0] == 0
    first_seen = {k: v.last_seen for k, v in by_id(session).items()}
    assert ingest(crawl_app, str(FULL))[0] == 0
    run = last_run(session)
    assert (run.new, run.updated, run.unchanged, run.status) == (0, 0, 3, "succeeded")
    assert session.scalar(select(func.count()).select_from(OpportunityVersion)) == 0
    assert all(v.last_seen >= first_seen[k] for k, v in by_id(session).items())


def test_record_gone_from_full_extract_is_vanished(crawl_app: Flask, session: Session) -> None:
    assert ingest(crawl_app, str(FULL))[0] == 0
    assert ingest(crawl_app, str(EXTRACT / "GrantsDBExtract20261102v2_one_removed.xml"))[0] == 0
    run = last_run(session)
    assert (run.vanished, run.unchanged) == (1, 2)
    assert by_id(session)["340112"].vanished_at is not None


def test_malformed_xml_is_an_error_and_loses_nothing(crawl_app: Flask, session: Session) -> None:
    assert ingest(crawl_app, str(FULL))[0] == 0
    ingest(crawl_app, str(EXTRACT / "GrantsDBExtract20261103v2_malformed.xml"))
    run = last_run(session)
    assert run.status == "partial" and run.vanished == 0  # the record before the damage was read
    (error,) = session.scalars(select(CrawlError).where(CrawlError.run_id == run.id))
    assert error.kind == "source" and "malformed XML" in error.message and "line" in error.message
    stored = by_id(session)
    assert len(stored) == 3 and all(o.vanished_at is None for o in stored.values())
    assert stored["340112"].expected_awards == 11


def test_empty_extract_where_store_has_records_is_an_error(crawl_app: Flask, session: Session) -> None:
    assert ingest(crawl_app, str(FULL))[0] == 0
    code, output = ingest(crawl_app, str(EXTRACT / "GrantsDBExtract20261104v2_empty.xml"))
    assert code == 1 and "FAILED: grants_gov_extract" in output
    run = last_run(session)
    assert (run.status, run.vanished) == ("failed", 0)
    assert all(o.vanished_at is None for o in by_id(session).values())


def test_missing_file_fails_cleanly(crawl_app: Flask, session: Session, tmp_path: Path) -> None:
    code, output = ingest(crawl_app, str(tmp_path / "nope.zip"))
    assert code == 1 and "does not exist" in output


def test_ingest_from_url_finds_newest_extract(crawl_app: Flask, server: FakeServer, session: Session) -> None:
    page = (
        b'<html><body><a href="/extracts/GrantsDBExtract20261031v2.zip">Oct 31</a>'
        b'<a href="/extracts/GrantsDBExtract20261101v2.zip">Nov 1</a></body></html>'
    )
    import io

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zipped:
        zipped.writestr(FULL.name, fixture_bytes("extract/GrantsDBExtract20261101v2.xml"))
    server.route("GET", "/xml-extract", Reply(body=page, content_type="text/html"))
    server.route(
        "GET",
        "/extracts/GrantsDBExtract20261101v2.zip",
        Reply(body=buffer.getvalue(), content_type="application/zip"),
    )
    code, output = ingest(crawl_app)
    assert code == 0, output
    assert len(by_id(session)) == 3
    assert server.calls("GET", "/extracts/GrantsDBExtract20261031v2.zip") == []
    kept = Path(crawl_app.config["CRAWL_ARCHIVE_DIR"]) / "GrantsDBExtract20261101v2.zip"
    assert kept.exists()


def _unit_vectors(texts: list[str]) -> Any:
    vectors = np.zeros((len(texts), DIMENSIONS), dtype=np.float32)
    vectors[:, 0] = 1.0
    return vectors


def test_bulk_ingest_leaves_keyword_index_and_cvi_to_reindex(
    crawl_app: Flask, session: Session, tmp_path: Path
) -> None:
    """An extract is a bulk load: no re-index per batch; what changed waits, durably, for reindex."""
    index_dir = crawl_app.config["INDEX_DIR"]
    index = get_index(index_dir)
    code, output = ingest(crawl_app, str(FULL))
    assert code == 0, output
    assert "3 new or changed opportunities wait for `flask --app wsgi reindex`" in output
    stored = by_id(session)
    assert pending.claim(index_dir).ids == {o.id for o in stored.values()}
    assert not index.exists()

    reindex(session, index_dir, encoder=_unit_vectors)
    assert pending.count(index_dir) == 0
    assert index.doc_count() == 3

    # A changed title: the same number of documents, so only the pending id is re-indexed.
    changed = tmp_path / FULL.name
    changed.write_text(
        FULL.read_text(encoding="utf-8").replace(
            "Training and Technical Assistance</OpportunityTitle>",
            "Training and Technical Assistance Zanzibar</OpportunityTitle>",
        ),
        encoding="utf-8",
    )
    code, output = ingest(crawl_app, str(changed))
    assert code == 0, output
    assert "1 new or changed opportunities wait" in output
    assert not index.search("zanzibar")
    say: list[str] = []
    report = reindex(session, index_dir, encoder=_unit_vectors, say=say.append)
    assert report.indexed == 1 and any("for 1 opportunities a bulk load changed" in m for m in say)
    assert [hit.opportunity_id for hit in index.search("zanzibar")] == [by_id(session)["350001"].id]
    assert pending.count(index_dir) == 0
