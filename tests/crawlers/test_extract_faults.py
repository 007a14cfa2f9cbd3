"""Faults of an extract load: each is recorded, nothing stored is lost, nothing is marked vanished."""

from __future__ import annotations

import datetime as dt
import os
import zipfile
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import CrawlError, CrawlRun
from app.services import bulk_load
from bench.bench_ingest import generate
from crawlers import grants_gov_extract as extract
from tests.crawlers.test_extract import FULL, by_id, ingest, last_run
from tests.ingestperf import reference_normalizer as reference


@pytest.fixture
def generated(tmp_path: Path) -> Path:
    """~60 records, about half of them from the four departments."""
    path = tmp_path / "GrantsDBExtract20261105v2.xml"
    generate(path, 60)
    return path


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks of 4 records (and batches of 2, from ``crawl_app``): a file is many batches."""
    monkeypatch.setattr(extract, "CHUNK_RECORDS", 4)


def errors(session: Session, run: CrawlRun) -> list[CrawlError]:
    return list(session.scalars(select(CrawlError).where(CrawlError.run_id == run.id)))


def test_truncated_zip_fails_cleanly_and_loses_nothing(
    crawl_app: Flask, session: Session, tmp_path: Path
) -> None:
    assert ingest(crawl_app, str(FULL))[0] == 0
    archive = tmp_path / "GrantsDBExtract20261102v2.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        zipped.write(FULL, FULL.name)
    archive.write_bytes(archive.read_bytes()[:-200])
    code, output = ingest(crawl_app, str(archive))
    assert code == 1 and "not a complete zip archive (truncated?)" in output
    run = last_run(session)
    assert (run.status, run.vanished) == ("failed", 0)
    assert all(o.vanished_at is None for o in by_id(session).values()) and len(by_id(session)) == 3


def test_corrupt_zip_member_is_an_error(crawl_app: Flask, session: Session, tmp_path: Path) -> None:
    assert ingest(crawl_app, str(FULL))[0] == 0
    archive = tmp_path / "GrantsDBExtract20261102v2.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zipped:
        zipped.write(FULL, FULL.name)
    data = bytearray(archive.read_bytes())
    at = data.index(b"Young Adult Reentry")
    data[at : at + 5] = b"XXXXX"  # the stored member no longer matches its CRC
    archive.write_bytes(bytes(data))
    ingest(crawl_app, str(archive))
    run = last_run(session)
    assert run.status in ("partial", "failed") and run.vanished == 0
    assert any("cannot read" in e.message and "CRC" in e.message for e in errors(session, run))
    assert all(o.vanished_at is None for o in by_id(session).values()) and len(by_id(session)) == 3


def test_record_without_id_is_reported_and_the_rest_stored(
    crawl_app: Flask, session: Session, tmp_path: Path
) -> None:
    path = tmp_path / FULL.name
    text = FULL.read_text(encoding="utf-8")
    path.write_text(text.replace("<OpportunityID>340112</OpportunityID>", ""), encoding="utf-8")
    code, _output = ingest(crawl_app, str(path))
    run = last_run(session)
    assert code == 0 and (run.status, run.new, run.failed) == ("partial", 2, 1)
    (error,) = errors(session, run)
    assert error.kind == "parse" and "record 3 of GrantsDBExtract20261101v2.xml has no OpportunityID" in (
        error.message
    )
    assert set(by_id(session)) == {"350001", "350003"}


def _fail_on(opp_id: str, exc: BaseException | None = None) -> Any:
    real = extract.to_record

    def to_record(kind: str, fields: dict[str, Any], status: str, digest: str | None = None) -> Any:
        if fields.get("OpportunityID") == opp_id:
            if exc is None:
                os._exit(3)
            raise exc
        return real(kind, fields, status, digest)

    return to_record


def _core_ids(path: Path) -> list[str]:
    """Ids of the records a load of ``path`` stores, in file order."""
    return [r.id for r in reference.records(path, dt.date.today())]


@pytest.mark.usefixtures("small_chunks")
def test_crash_in_the_worker_keeps_earlier_batches(
    crawl_app: Flask, session: Session, generated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = _core_ids(generated)
    monkeypatch.setattr(extract, "to_record", _fail_on(ids[20], RuntimeError("boom")))
    monkeypatch.setattr(extract.Balance, "__call__", lambda self: False)  # the worker reads everything
    ingest(crawl_app, str(generated))
    run = last_run(session)
    assert run.status == "partial" and run.vanished == 0 and 8 <= run.new <= 20
    crash = "extract parser crashed: RuntimeError: boom"
    assert any(e.kind == "crash" and crash in e.message for e in errors(session, run))
    stored = by_id(session)
    assert set(stored) == set(ids[: run.new]) and all(o.vanished_at is None for o in stored.values())


@pytest.mark.usefixtures("small_chunks")
def test_worker_that_dies_is_an_error(
    crawl_app: Flask, session: Session, generated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = _core_ids(generated)
    monkeypatch.setattr(extract, "to_record", _fail_on(ids[10]))
    monkeypatch.setattr(extract.Balance, "__call__", lambda self: False)
    ingest(crawl_app, str(generated))
    run = last_run(session)
    # Chunks it had queued but not yet written to the pipe die with it: at most what came before.
    assert run.status in ("partial", "failed") and run.vanished == 0 and run.new <= 10
    assert any("extract parser exited unexpectedly (code 3)" in e.message for e in errors(session, run))
    assert set(by_id(session)) == set(ids[: run.new])


@pytest.mark.usefixtures("small_chunks")
def test_failed_batch_is_rolled_back_and_the_others_stored(
    crawl_app: Flask, session: Session, generated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert ingest(crawl_app, str(generated))[0] == 0
    first = {k: o.title for k, o in by_id(session).items()}
    changed = generated.with_name("GrantsDBExtract20261106v2.xml")
    changed.write_text(
        generated.read_text(encoding="utf-8").replace("</OpportunityTitle>", " Revised</OpportunityTitle>"),
        encoding="utf-8",
    )
    real = bulk_load.write_staged
    calls = {"n": 0}

    def flaky(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("disk full")
        return real(*args, **kwargs)

    monkeypatch.setattr(bulk_load, "write_staged", flaky)
    ingest(crawl_app, str(changed))
    run = last_run(session)
    assert run.status == "partial" and run.vanished == 0 and run.failed >= 1
    assert any(e.kind == "store" and "disk full" in e.message for e in errors(session, run))
    stored = by_id(session)
    kept = [k for k, o in stored.items() if o.title == first[k]]
    assert len(kept) == run.failed and run.updated == len(first) - run.failed
    assert all(o.title in (first[k], f"{first[k]} Revised") for k, o in stored.items())
    assert all(o.vanished_at is None for o in stored.values())


@pytest.mark.usefixtures("small_chunks")
def test_unusual_xml_falls_back_to_lxml_and_stores_the_same(
    crawl_app: Flask, session: Session, generated: Path, tmp_path: Path
) -> None:
    assert ingest(crawl_app, str(generated))[0] == 0
    plain = {k: (o.title, o.description, o.content_hash) for k, o in by_id(session).items()}
    unusual = tmp_path / "GrantsDBExtract20261106v2.xml"
    text = generated.read_text(encoding="utf-8")
    at = text.index("<OpportunityTitle>", len(text) // 2)
    unusual.write_text(text[:at] + "<!-- an editor's note -->" + text[at:], encoding="utf-8")
    code, output = ingest(crawl_app, str(unusual))
    assert code == 0, output
    run = last_run(session)
    assert (run.status, run.new, run.updated, run.unchanged) == ("succeeded", 0, 0, len(plain))
    assert {k: (o.title, o.description, o.content_hash) for k, o in by_id(session).items()} == plain


def test_reparse_of_an_extract_run(crawl_app: Flask, session: Session) -> None:
    assert ingest(crawl_app, str(FULL))[0] == 0
    run_id = last_run(session).id
    result = crawl_app.test_cli_runner().invoke(args=["crawl", "--reparse", str(run_id)])
    assert result.exit_code == 0, result.output
    run = last_run(session)
    assert (run.mode, run.status, run.params["reparse_of"], run.unchanged, run.vanished) == (
        "reparse",
        "succeeded",
        run_id,
        3,
        0,
    )


def test_duplicate_record_in_one_file_is_stored_once(
    crawl_app: Flask, session: Session, tmp_path: Path
) -> None:
    text = FULL.read_text(encoding="utf-8")
    start = text.index("<OpportunitySynopsisDetail_1_0>")
    end = text.index("</OpportunitySynopsisDetail_1_0>") + len("</OpportunitySynopsisDetail_1_0>")
    copy = text[start:end].replace("Initiative &amp;amp; Training", "Initiative (corrected)")
    path = tmp_path / FULL.name
    path.write_text(text.replace("</Grants>", copy + "\n</Grants>"), encoding="utf-8")
    code, output = ingest(crawl_app, str(path))
    assert code == 0, output
    stored = by_id(session)
    assert len(stored) == 3 and "Initiative (corrected)" in stored["350001"].title
    run = last_run(session)
    assert (run.status, run.new, run.updated) == ("succeeded", 3, 1)
