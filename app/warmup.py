"""Warm a web worker in the background as it starts (``gunicorn.conf.py`` calls ``warm_in_background``).

The worker serves at once; its first searches and matches find the keyword index, the vector matrix
and the embedding model already loaded instead of loading them inside a request. Until then it
serves slowly (the warm-up holds the GIL much of the time), so ``/healthz`` reports the state and a
load balancer or a deploy script can wait for ``"warm_up": "done"`` before sending traffic.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from flask import Flask

log = logging.getLogger(__name__)

#: ``app.extensions`` key holding this worker's warm-up state: "running", "done" or "failed".
STATE = "warm_up"


def state(app: Flask) -> str:
    """This worker's warm-up state; "on demand" where nothing warms up (``flask run``, the CLI)."""
    return str(app.extensions.get(STATE, "on demand"))


def warm(app: Flask) -> None:
    from matching.warmup import warm as warm_matching

    database = app.extensions["database"]
    app.extensions[STATE] = "running"
    try:
        with database.session_factory() as session:
            warm_matching(session, str(app.config["INDEX_DIR"]))
    except Exception:  # a failed warm-up only means the first request loads what it needs
        log.exception("warm-up failed")
        app.extensions[STATE] = "failed"
    else:
        app.extensions[STATE] = "done"


def warm_in_background(app: Any) -> threading.Thread | None:
    """Start ``warm`` in a daemon thread when ``app`` is this project's Flask app (else do nothing)."""
    if not isinstance(app, Flask) or "database" not in app.extensions:
        return None
    app.extensions[STATE] = "running"
    thread = threading.Thread(target=warm, args=(app,), name="warm-up", daemon=True)
    thread.start()
    return thread
