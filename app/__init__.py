"""CVI Funding Finder: the Flask application factory."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from flask import Flask


def create_app(overrides: dict[str, Any] | None = None) -> Flask:
    """Build the app: configuration from the environment (then ``overrides``), extensions, blueprints."""
    app = Flask(__name__, instance_path=str(Path(__file__).resolve().parent.parent / "instance"))
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)

    from app.config import load_config

    app.config.from_mapping(load_config(Path(app.instance_path)))
    if overrides:
        app.config.update(overrides)

    from app import cli, db, extensions, jobs, logs
    from app.views import alerts, home

    logs.init_app(app)
    db.init_app(app)
    extensions.init_app(app)
    cli.init_app(app)
    jobs.init_app(app)
    __import__("matching").init_app(app)  # matching: reindex command, index kept in step
    __import__("app.cli_crawl", fromlist=["init_app"]).init_app(app)
    app.register_blueprint(home.bp)
    app.register_blueprint(alerts.bp)
    logging.getLogger(__name__).debug("app created", extra={"database": app.config["DATABASE_URL"]})
    return app
