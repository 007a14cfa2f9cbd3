"""Warming a serving process: load once, before the first request, what every search or match needs.

A fresh worker otherwise pays on its first requests for opening the keyword index and building its
scoring table, loading the passage-vector matrix, and loading and first running the embedding model
(seconds on a busy machine). ``warm`` does the same work up front; it changes no result.
"""

from __future__ import annotations

import logging
import time

from sqlalchemy.orm import Session

from matching import embeddings, index_repair
from matching.keyword import get_index

log = logging.getLogger(__name__)


def warm(session: Session, index_dir: str, *, model: bool = True) -> dict[str, float]:
    """Open the index and build its table, load the vector matrix and (``model``) the embedding model;
    returns the seconds each step took."""
    took: dict[str, float] = {}
    started = time.perf_counter()
    # A damaged or missing index is rebuilt from the store first (one worker does it; the others
    # search the database meanwhile).
    index_repair.ensure(session, index_dir, trigger="warm-up")
    index = get_index(index_dir)
    index.warm()
    index.release()  # the table stays, shared with the threads that search
    took["keyword_index"] = time.perf_counter() - started
    started = time.perf_counter()
    embeddings.VECTORS.get(session)
    took["vectors"] = time.perf_counter() - started
    if model:
        started = time.perf_counter()
        embeddings.get_model().encode(["warm up"], show_progress_bar=False)  # first run initialises torch
        took["model"] = time.perf_counter() - started
    log.info("matching warmed", extra={k: round(v, 2) for k, v in took.items()})
    return took
