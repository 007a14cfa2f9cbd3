"""The keyword index the site searches with: ``matching.keyword.KeywordIndex`` at ``INDEX_DIR``.

Opened once per process and kept on the app. When the index cannot be opened (no index built yet),
search falls back to a plain SQL match, so the site still answers.
"""

from __future__ import annotations

import importlib
import logging
from typing import cast

from flask import Flask, current_app

from app.services.search import KeywordSearcher

log = logging.getLogger(__name__)
_KEY = "keyword_index"


def keyword_index(app: Flask | None = None) -> KeywordSearcher | None:
    app = app or current_app
    if _KEY in app.extensions:
        return cast(KeywordSearcher | None, app.extensions[_KEY])
    index: KeywordSearcher | None = None
    try:
        module = importlib.import_module("matching.keyword")
        index = cast(KeywordSearcher, module.KeywordIndex(app.config["INDEX_DIR"]))
    except (ImportError, AttributeError) as exc:
        log.info("keyword index not available; search uses SQL matching", extra={"reason": str(exc)})
    except Exception as exc:  # an unreadable index must not take the site down
        log.warning("keyword index could not be opened", extra={"error": str(exc)})
    app.extensions[_KEY] = index
    return index
