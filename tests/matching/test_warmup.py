"""Warming a serving process loads what the first search or match would load, and changes no result."""

from __future__ import annotations

from flask import Flask
from sqlalchemy.orm import Session

from matching import embeddings
from matching.keyword import get_index


def test_warm_builds_the_keyword_table_and_loads_the_vectors(app: Flask, loaded: Session) -> None:
    from matching.warmup import warm

    index = get_index(app.config["INDEX_DIR"])
    before = [(h.opportunity_id, h.score) for h in index.search("street outreach violence", limit=10)]
    index._reset_searcher()
    embeddings.VECTORS.invalidate()
    took = warm(loaded, app.config["INDEX_DIR"], model=False)
    assert set(took) == {"keyword_index", "vectors"}
    assert index._table_state is not None  # built, and kept for the threads that search
    assert len(embeddings.VECTORS.get(loaded)) > 0
    assert [(h.opportunity_id, h.score) for h in index.search("street outreach violence", limit=10)] == before


def test_warm_without_an_index_is_harmless(app: Flask, session: Session) -> None:
    from matching.warmup import warm

    took = warm(session, app.config["INDEX_DIR"] + "-missing", model=False)
    assert "keyword_index" in took


def test_gunicorn_hook_warms_only_this_app_and_healthz_reports_it(app: Flask) -> None:
    from app.warmup import warm_in_background

    client = app.test_client()
    assert client.get("/healthz").get_json() == {"status": "ok", "warm_up": "on demand"}
    assert warm_in_background(object()) is None
    thread = warm_in_background(app)
    assert thread is not None
    thread.join(timeout=120)
    assert not thread.is_alive()
    assert client.get("/healthz").get_json() == {"status": "ok", "warm_up": "done"}
