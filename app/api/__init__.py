"""The partner JSON API (``/api/v1``): one blueprint, its OpenAPI document, keys and the widget."""

from __future__ import annotations

import atexit
import logging
import weakref

from flask import Flask

log = logging.getLogger(__name__)


def init_app(app: Flask) -> None:
    from app.api import commands, views
    from app.services.api_meter import ApiMeter

    app.register_blueprint(views.bp)
    commands.init_app(app)
    app.extensions["api_meter"] = ApiMeter()
    atexit.register(_flush_at_exit, weakref.ref(app))


def _flush_at_exit(ref: weakref.ref[Flask]) -> None:
    """Usage counted in memory is written when the worker stops, so a restart loses none."""
    from app.api.gate import flush_usage

    app = ref()
    if app is None:
        return
    try:
        flush_usage(app)
    except Exception:
        log.exception("could not write API usage at exit")
