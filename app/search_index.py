"""The keyword index the site searches with: ``matching.keyword`` at ``INDEX_DIR``.

One index object per process (``get_index`` caches it with its searcher). Until an index has been
built (``flask reindex``, or the first commit of opportunities), search falls back to plain SQL
matching, so the site still answers.
"""

from __future__ import annotations

from typing import cast

from flask import Flask, current_app

from app.services.search import KeywordSearcher
from matching.keyword import get_index


def keyword_index(app: Flask | None = None) -> KeywordSearcher | None:
    index = get_index((app or current_app).config["INDEX_DIR"])
    return cast(KeywordSearcher, index) if index.exists() else None
