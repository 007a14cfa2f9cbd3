"""Warm a web worker in the background as it starts (``gunicorn.conf.py`` calls ``warm_in_background``).

The worker serves at once; its first searches and matches find the keyword index, the vector matrix
and the embedding model already loaded instead of loading them inside a request.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from flask import Flask

log = logging.getLogger(__name__)


def warm(app: Flask) -> None:
    from matching.warmup import warm as warm_matching

    database = app.extensions["database"]
    try:
        with database.session_factory() as session:
            warm_matching(session, str(app.config["INDEX_DIR"]))
    except Exception:  # a failed warm-up only means the first request loads what it needs
        log.exception("warm-up failed")


def warm_in_background(app: Any) -> threading.Thread | None:
    """Start ``warm`` in a daemon thread when ``app`` is this project's Flask app (else do nothing)."""
    if not isinstance(app, Flask) or "database" not in app.extensions:
        return None
    thread = threading.Thread(target=warm, args=(app,), name="warm-up", daemon=True)
    thread.start()
    return thread
