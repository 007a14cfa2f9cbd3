"""Migrations build the whole schema, tear it down, and match the models (no drift)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

import app.models  # noqa: F401
from app.db import Base
from tests.conftest import alembic_config


@pytest.fixture
def empty_url(tmp_path: Path) -> Iterator[str]:
    """A brand-new empty database of the kind under test."""
    target = os.environ.get("TEST_DATABASE_URL", "sqlite")
    if not target.startswith("postgresql"):
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    admin_url = make_url(target)
    name = f"cvi_mig_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_upgrade_creates_every_table_and_downgrade_removes_them(empty_url: str) -> None:
    config = alembic_config(empty_url)
    command.upgrade(config, "heads")
    engine = create_engine(empty_url)
    try:
        tables = set(inspect(engine).get_table_names())
        assert set(Base.metadata.tables) <= tables
        with engine.connect() as conn:
            diff = compare_metadata(
                MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata
            )
        assert diff == [], f"models and migrations differ: {diff}"
        command.downgrade(config, "base")
        remaining = set(inspect(engine).get_table_names()) - {"alembic_version"}
        assert remaining == set()
        command.upgrade(config, "heads")
        assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_indexes_for_search_filters_exist(empty_url: str) -> None:
    command.upgrade(alembic_config(empty_url), "heads")
    engine = create_engine(empty_url)
    try:
        inspector = inspect(engine)
        indexed = {tuple(ix["column_names"]) for ix in inspector.get_indexes("opportunities")}
        for columns in [("status",), ("close_date",), ("department",), ("agency_id",)]:
            assert columns in indexed, f"no index on opportunities{columns}"
        code_indexes = {tuple(ix["column_names"]) for ix in inspector.get_indexes("opportunity_codes")}
        assert ("kind", "code") in code_indexes
        uniques = {tuple(u["column_names"]) for u in inspector.get_unique_constraints("opportunities")}
        assert ("source", "source_id") in uniques
    finally:
        engine.dispose()
