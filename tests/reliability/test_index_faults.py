"""The Whoosh index directory deleted, its files truncated or overwritten, its lock left behind.

Search (site and API) keeps answering from the database while the index is unusable; the damage is
found on search, at a worker's warm-up and by ``reindex``, logged, and repaired by rebuilding the
index from the store. The embedding model is replaced by a constant encoder: only the keyword index
is under test.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from app.models import Opportunity
from app.services.opportunities import upsert
from matching import embeddings, index_repair, keyword, pending
from matching.embeddings import DIMENSIONS
from matching.keyword import get_index
from tests.conftest import ROOT
from tests.factories import record


def _unit_vectors(texts: list[str], **_options: Any) -> Any:
    vectors = np.zeros((len(texts), DIMENSIONS), dtype=np.float32)
    vectors[:, 0] = 1.0
    return vectors


@pytest.fixture
def catalogue(app: Flask, session: Session, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Three opportunities, committed: the commit builds the index (no index existed)."""
    monkeypatch.setattr(embeddings, "encode", _unit_vectors)
    for n, title in enumerate(
        ("Street outreach workers", "Hospital-based violence intervention", "Rural broadband"), start=1
    ):
        upsert(session, record(id=f"ix-{n}", number=f"IX-{n}", title=title, description=f"{title}."))
    session.commit()
    index_dir = Path(app.config["INDEX_DIR"])
    assert get_index(index_dir).doc_count() == 3
    return index_dir


def _titles(client: FlaskClient, q: str) -> list[str]:
    """Titles the API answers for ``q`` (CVI filter off: these test records are not scored CVI)."""
    response = client.get("/api/v1/opportunities", query_string={"q": q, "cvi_only": "false"})
    assert response.status_code == 200, response.data[:500]
    return sorted(item["title"] for item in response.get_json()["items"])


def _site_ok(client: FlaskClient, q: str, title: str) -> None:
    page = client.get("/search", query_string={"q": q, "cvi_only": "false"})
    assert page.status_code == 200
    assert title.encode() in page.data


def _wait_for_repairs() -> None:
    for thread in threading.enumerate():
        if thread.name == "index-repair":
            thread.join(60)
            assert not thread.is_alive()


def _damage(index_dir: Path, how: str) -> None:
    """Damage the files as a full disk, a bad copy or a stray process would (no process holds them
    open: ``_reset_searcher`` stands for a worker started after the damage)."""
    get_index(index_dir)._reset_searcher()
    if how == "toc_garbage":
        (toc,) = index_dir.glob("_MAIN_*.toc")
        toc.write_bytes(os.urandom(64))
        return
    segments = list(index_dir.glob("*.seg"))
    assert segments
    for segment in segments:
        size = segment.stat().st_size
        if how == "truncated":
            with segment.open("r+b") as handle:
                handle.truncate(size // 3)
        else:
            segment.write_bytes(os.urandom(size))


def test_directory_removed_search_answers_from_the_database_and_reindex_rebuilds(
    app: Flask, session: Session, catalogue: Path, client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    assert _titles(client, "outreaches") == ["Street outreach workers"]  # stemmed: the index answers

    shutil.rmtree(catalogue)
    assert _titles(client, "outreach") == ["Street outreach workers"]  # SQL matching meanwhile
    _site_ok(client, "outreach", "Street outreach workers")
    assert _titles(client, "Outreaches") == []  # plain SQL does not stem: proof of the fallback

    result = app.test_cli_runner().invoke(args=["reindex"])
    assert result.exit_code == 0, result.output
    assert index_repair.check(catalogue).ok and get_index(catalogue).doc_count() == 3
    assert _titles(client, "OUTREACHES") == ["Street outreach workers"]


def test_directory_removed_under_a_live_searcher_is_noticed_and_rebuilt(
    app: Flask, session: Session, catalogue: Path, client: FlaskClient
) -> None:
    index = get_index(catalogue)
    assert index.search("outreach")  # this thread now holds an open searcher
    shutil.rmtree(catalogue)
    with pytest.raises(keyword.IndexUnavailable, match="was removed"):
        index.search("outreach")
    assert _titles(client, "Outreach") == ["Street outreach workers"]  # and starts the rebuild
    _wait_for_repairs()
    assert index_repair.check(catalogue).ok and index.doc_count() == 3
    assert _titles(client, "OUTREACHES") == ["Street outreach workers"]


@pytest.mark.parametrize("how", ["truncated", "garbage", "toc_garbage"])
def test_damaged_files_are_found_on_search_and_rebuilt_in_the_background(
    app: Flask,
    session: Session,
    catalogue: Path,
    client: FlaskClient,
    caplog: pytest.LogCaptureFixture,
    how: str,
) -> None:
    pending.add(catalogue, [999_999])  # a bulk load's pending id must survive the repair
    _damage(catalogue, how)
    assert index_repair.check(catalogue).state == "damaged"
    caplog.set_level(logging.INFO)

    # Never a 500: the first searches answer from the database; one of them starts the repair.
    assert _titles(client, "outreach") == ["Street outreach workers"]
    _site_ok(client, "violence", "Hospital-based violence intervention")
    _wait_for_repairs()

    assert index_repair.check(catalogue).ok
    assert get_index(catalogue).doc_count() == 3
    assert _titles(client, "outreaches") == ["Street outreach workers"]  # the rebuilt index answers
    assert (catalogue.parent / "index.damaged").is_dir()  # kept for a post-mortem
    assert 999_999 in pending.claim(catalogue).ids
    events = {r.getMessage(): r for r in caplog.records if r.name.startswith("matching")}
    assert "keyword index unreadable; searches use the database until it is rebuilt" in events
    rebuilt = events["keyword index rebuilt"]
    assert rebuilt.__dict__["documents"] == 3 and rebuilt.__dict__["trigger"] == "search"
    assert rebuilt.__dict__["state"] == "damaged"


def test_warm_up_finds_damage_and_rebuilds_before_serving(
    app: Flask, session: Session, catalogue: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from matching.warmup import warm

    _damage(catalogue, "truncated")
    caplog.set_level(logging.INFO)
    warm(session, str(catalogue), model=False)
    assert index_repair.check(catalogue).ok
    assert [h.opportunity_id for h in get_index(catalogue).search("outreach")]
    messages = [r.getMessage() for r in caplog.records]
    assert "keyword index damaged; rebuilding it from the store" in messages


def test_flask_reindex_finds_damage_and_rebuilds(
    app: Flask, session: Session, catalogue: Path, client: FlaskClient
) -> None:
    _damage(catalogue, "garbage")
    result = app.test_cli_runner().invoke(args=["reindex"])
    assert result.exit_code == 0, result.output
    assert (
        "keyword index damaged" in result.output and "keyword index rebuilt: 3 opportunities" in result.output
    )
    assert index_repair.check(catalogue).ok
    assert _titles(client, "outreaches") == ["Street outreach workers"]


def test_a_second_repairer_leaves_it_to_the_first(app: Flask, session: Session, catalogue: Path) -> None:
    _damage(catalogue, "truncated")
    with index_repair._repair_lock(catalogue) as mine:  # another process is repairing
        assert mine
        assert index_repair.ensure(session, catalogue, trigger="warm-up") is None
    assert index_repair.ensure(session, catalogue, trigger="warm-up") is not None
    assert index_repair.check(catalogue).ok


_KILLED_WRITER = """
import os, signal, sys
from whoosh import index
ix = index.open_dir(sys.argv[1])
writer = ix.writer()
writer.add_document(id="424242", title="half written")
print("locked", flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def _rename(session: Session, source_id: str, title: str) -> int:
    row = session.query(Opportunity).filter_by(source="test", source_id=source_id).one()
    upsert(session, record(id=source_id, number=row.number, title=title, description=f"{title}."))
    session.commit()
    return row.id


def test_a_lock_left_by_a_killed_writer_does_not_block_the_next_update(
    app: Flask, session: Session, catalogue: Path, client: FlaskClient
) -> None:
    """Whoosh's lock is an fcntl lock: the kernel drops it with the process, the file stays."""
    killed = subprocess.run(
        [sys.executable, "-c", _KILLED_WRITER, str(catalogue)], cwd=ROOT, capture_output=True, timeout=60
    )
    assert killed.returncode == -signal.SIGKILL and b"locked" in killed.stdout
    assert (catalogue / "MAIN_WRITELOCK").exists()

    _rename(session, "ix-3", "Rural youth mentoring")
    assert _titles(client, "mentoring") == ["Rural youth mentoring"]
    assert index_repair.check(catalogue).ok and get_index(catalogue).doc_count() == 3


def test_a_lock_held_by_a_hung_writer_leaves_the_change_pending_for_reindex(
    app: Flask,
    session: Session,
    catalogue: Path,
    client: FlaskClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(keyword, "WRITER_LOCK_TIMEOUT", 0.3)
    from whoosh import index as windex

    hung = windex.open_dir(str(catalogue)).writer()  # holds the lock, as a stuck process would
    try:
        changed = _rename(session, "ix-3", "Rural youth mentoring")  # its index update times out
        assert changed in pending.claim(catalogue).ids
        # The stale document still finds the row (shown as stored); the new words are not indexed yet.
        assert _titles(client, "broadband") == ["Rural youth mentoring"]
        assert _titles(client, "mentoring") == []
    finally:
        hung.cancel()

    result = app.test_cli_runner().invoke(args=["reindex"])
    assert result.exit_code == 0, result.output
    assert _titles(client, "Mentoring") == ["Rural youth mentoring"]
    assert pending.count(catalogue) == 0


def test_digests_still_match_saved_searches_without_the_index(
    app: Flask, session: Session, make_user: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A removed index must not make every saved search come back empty (no digest at all)."""
    import time_machine

    from tests.alerts.conftest import NOW, add_opportunity, subscribe_search

    monkeypatch.setattr(embeddings, "encode", _unit_vectors)
    user = make_user("writer@example.org")
    add_opportunity(session, at=NOW - dt.timedelta(hours=3), title="Street outreach workers")
    subscribe_search(session, user, {"q": "outreach"})
    index_dir = Path(app.config["INDEX_DIR"])
    assert get_index(index_dir).doc_count() == 1
    get_index(index_dir)._reset_searcher()  # as in a scheduler process that has not searched yet
    shutil.rmtree(index_dir)

    with time_machine.travel(NOW, tick=False):
        result = app.test_cli_runner().invoke(args=["send-digests", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "1 digests would be sent" in result.output
    assert f"--- to {user.email}: Your daily CVI funding digest: 1 new opportunity" in result.output
