"""The disk under ``CRAWL_ARCHIVE_DIR`` is full: the run records why, the store stays as it was.

Each test runs twice: on a real 64 KiB tmpfs mounted over the archive directory (so the kernel
itself says ENOSPC; skipped where mounting needs a root the tests do not have), and with the
archive's files opened through a stand-in that fails the same way once 64 KiB are written.
"""

from __future__ import annotations

import errno
import io
import os
import pathlib
import shutil
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import CrawlError, CrawlRun, Opportunity
from tests.crawlers.conftest import FIXTURES, FakeServer, Reply, agency_routes

CAPACITY = 64 * 1024
EXTRACT_XML = FIXTURES / "extract" / "GrantsDBExtract20261101v2.xml"
ZIP_NAME = "GrantsDBExtract20261102v2.zip"


class _FullDiskFile(io.FileIO):
    """A file that takes ``CAPACITY`` bytes, then fails like a full disk."""

    def write(self, data: Any) -> int:
        if self.tell() + len(data) > CAPACITY:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return super().write(data)


def _mount_tmpfs(directory: Path) -> bool:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={CAPACITY}", "tmpfs", str(directory)],
        capture_output=True,
        timeout=30,
    )
    return done.returncode == 0


@pytest.fixture(params=["tmpfs", "simulated"])
def full_disk(
    app: Flask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Iterator[Path]:
    archive = tmp_path / "small-disk"
    archive.mkdir()
    mounted = request.param == "tmpfs" and _mount_tmpfs(archive)
    if request.param == "tmpfs" and not mounted:
        pytest.skip("mounting a tmpfs needs root (the simulated disk covers this run)")
    if not mounted:
        real_open = pathlib.Path.open

        def small_disk_open(self: Path, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
            if "w" in mode and self.parent == archive:
                return io.BufferedWriter(_FullDiskFile(str(self), "w"))
            return real_open(self, mode, *args, **kwargs)

        monkeypatch.setattr(pathlib.Path, "open", small_disk_open)
    app.config["CRAWL_ARCHIVE_DIR"] = str(archive)
    try:
        yield archive
    finally:
        if mounted:
            subprocess.run(["umount", str(archive)], check=True, timeout=30)


@pytest.fixture
def server(app: Flask) -> Iterator[FakeServer]:
    fake = FakeServer()
    fake.start()
    app.config.update(
        GRANTS_GOV_EXTRACT_URL=f"{fake.url}/extracts/{ZIP_NAME}",
        DOL_ETA_URL=f"{fake.url}/eta/find-opportunities",
        CRAWL_CONTACT="crawler-test@example.org",
        CRAWL_TIMEOUT=2.0,
        CRAWL_MAX_RETRIES=1,
        CRAWL_BACKOFF=0.01,
        CRAWL_MIN_INTERVAL=0.0,
        EXTRACT_BATCH_SIZE=2,
    )
    yield fake
    fake.stop()


def _large_extract() -> bytes:
    """The fixture extract, plus an incompressible member: bigger than the disk can hold."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zipped:
        zipped.writestr("GrantsDBExtract20261102v2.xml", EXTRACT_XML.read_bytes())
        zipped.writestr("padding.bin", os.urandom(4 * CAPACITY))
    return buffer.getvalue()


def _snapshot(session: Session) -> dict[str, tuple[Any, ...]]:
    session.expire_all()
    return {
        o.source_id: (o.title, o.close_date, o.last_seen, o.vanished_at, o.updated_at)
        for o in session.scalars(select(Opportunity))
    }


def test_extract_download_onto_a_full_disk_fails_the_run_and_keeps_the_store(
    app: Flask, session: Session, server: FakeServer, full_disk: Path
) -> None:
    runner = app.test_cli_runner()
    first = runner.invoke(args=["ingest-extract", str(EXTRACT_XML)])  # a local file: no disk needed
    assert first.exit_code == 0, first.output
    before = _snapshot(session)
    assert len(before) == 3

    server.route("GET", f"/extracts/{ZIP_NAME}", Reply(body=_large_extract(), content_type="application/zip"))
    result = runner.invoke(args=["ingest-extract"])
    output = result.output + result.stderr

    assert result.exit_code == 1, output
    assert "FAILED: grants_gov_extract" in output
    session.expire_all()
    run = session.scalar(select(CrawlRun).order_by(CrawlRun.id.desc()))
    assert run is not None and run.status == "failed" and run.finished_at is not None
    assert (run.new, run.updated, run.vanished) == (0, 0, 0)
    (error,) = session.scalars(select(CrawlError).where(CrawlError.run_id == run.id))
    assert error.kind == "storage" and error.url == f"{server.url}/extracts/{ZIP_NAME}"
    assert "No space left on device" in error.message and "partial file removed" in error.message
    assert str(full_disk / ZIP_NAME) in error.message

    assert _snapshot(session) == before  # not one record touched, none marked vanished
    assert list(full_disk.iterdir()) == []  # the partial download does not keep the disk full
    assert session.scalar(select(func.count()).select_from(Opportunity)) == 3


def test_a_crawl_that_needs_no_archive_space_still_runs_on_a_full_disk(
    app: Flask, session: Session, server: FakeServer, full_disk: Path
) -> None:
    """Raw payloads are archived in the store: the API and page crawls never write to the disk."""
    (full_disk / "filler").write_bytes(b"x" * (CAPACITY // 2))
    agency_routes(server)
    result = app.test_cli_runner().invoke(args=["crawl", "--source", "dol_eta"])
    assert result.exit_code == 0, result.output + result.stderr
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(Opportunity)) > 0
