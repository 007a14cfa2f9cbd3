"""The ingest benchmark's write floor copies exactly what a first ingest stored, and nothing else."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from flask import Flask
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bench.bench_ingest import FLOOR_TABLES, write_floor
from tests.conftest import alembic_config
from tests.ingestperf.generated import ingest_generated


@pytest.fixture
def empty_store(migrated_url: str, tmp_path: Path) -> Iterator[str]:
    """Another migrated, empty store of the same kind as the test store."""
    if not migrated_url.startswith("postgresql"):
        url = f"sqlite:///{tmp_path / 'floor.db'}"
        command.upgrade(alembic_config(url), "head")
        yield url
        return
    admin = create_engine(make_url(migrated_url), isolation_level="AUTOCOMMIT")
    name = f"cvi_floor_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(migrated_url).set(database=name).render_as_string(hide_password=False)
    try:
        command.upgrade(alembic_config(url), "head")
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _rows(url: str, table: str) -> list[tuple[object, ...]]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(text(f"SELECT * FROM {table} ORDER BY id"))]
    finally:
        engine.dispose()


def test_write_floor_stores_the_ingested_rows(app: Flask, empty_store: str, tmp_path: Path) -> None:
    ingest_generated(app, tmp_path, 400, batch_size=50)
    source = app.config["DATABASE_URL"]

    seconds = write_floor(source, empty_store)

    assert seconds > 0
    counts = {}
    for table in FLOOR_TABLES:
        stored = _rows(source, table)
        counts[table] = len(stored)
        assert _rows(empty_store, table) == stored
    assert counts["opportunities"] > 150
    assert counts["opportunity_codes"] > counts["opportunities"]
    assert counts["agencies"] > 1
