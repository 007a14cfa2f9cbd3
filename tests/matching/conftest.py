"""Matching fixtures: the fixture catalogue and opportunities loaded through the product's own code."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy.orm import Session

HERE = Path(__file__).resolve().parent
FIXTURES = HERE.parent / "fixtures" / "matching"
TODAY = dt.date(2026, 11, 21)


@pytest.fixture(scope="session")
def model() -> Any:
    """The embedding model, loaded once for the whole test session."""
    from matching import embeddings

    return embeddings.get_model()


def load_catalogue(session: Session) -> None:
    from app.services.seeding import load_cvi_programs

    load_cvi_programs(session, FIXTURES / "cvi_programs.json")
    session.commit()


def import_fixture(session: Session, name: str = "opportunities.jsonl") -> None:
    from app.services.transfer import import_lines

    with (FIXTURES / name).open(encoding="utf-8") as stream:
        report = import_lines(session, stream, default_source="fixture")
    assert not report.errors, report.errors


@pytest.fixture
def catalogue(session: Session) -> Session:
    load_catalogue(session)
    return session


@pytest.fixture
def loaded(app: Flask, session: Session, model: Any) -> Session:
    """Catalogue + fixture opportunities, imported (index and CVI follow the commit), then reindexed."""
    from matching import embeddings
    from matching.sync import reindex

    embeddings.VECTORS.invalidate()
    load_catalogue(session)
    import_fixture(session)
    reindex(session, app.config["INDEX_DIR"])
    return session


def profiles() -> dict[str, dict[str, Any]]:
    out = {}
    for line in (FIXTURES / "profiles.jsonl").read_text().splitlines():
        if line.strip():
            data = json.loads(line)
            out[data["id"]] = data
    return out
