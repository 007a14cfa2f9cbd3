"""The keyword index the site searches with: ``matching.keyword`` at ``INDEX_DIR``.

One index object per process (``get_index`` caches it with its searcher). Until an index has been
built (``flask reindex``, or the first commit of opportunities), and while a damaged one is rebuilt,
search falls back to plain SQL matching, so the site still answers.
"""

from __future__ import annotations

from typing import cast

from flask import Flask, current_app

from app.services.search import KeywordSearcher
from matching import index_repair
from matching.keyword import get_index


def keyword_index(app: Flask | None = None) -> KeywordSearcher | None:
    """The index when it can be searched, else None; an index found damaged is rebuilt from the
    store in a background thread meanwhile."""
    app = app or current_app
    index_dir = app.config["INDEX_DIR"]
    index = get_index(index_dir)
    if index.available():
        return cast(KeywordSearcher, index)
    if index.broken is not None:
        index_repair.repair_in_background(app.extensions["database"].session_factory, index_dir)
    return None
