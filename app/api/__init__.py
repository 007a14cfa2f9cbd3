"""The partner JSON API (``/api/v1``): one blueprint, its OpenAPI document, keys and the widget."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from app.api import commands, views

    app.register_blueprint(views.bp)
    commands.init_app(app)
