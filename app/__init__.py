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

    from app import api, cli, db, extensions, logs
    from app.admin import bp as admin_bp
    from app.views import home

    logs.init_app(app)
    db.init_app(app)
    extensions.init_app(app)
    cli.init_app(app)
    __import__("matching").init_app(app)  # matching: reindex command, index kept in step
    __import__("app.cli_crawl", fromlist=["init_app"]).init_app(app)
    app.register_blueprint(home.bp)
    app.register_blueprint(admin_bp)
    api.init_app(app)
    from app import templating  # site
    from app.views import auth, errors, opportunities, organization, profiles, search, tracking  # site

    templating.init_app(app)  # site
    errors.init_app(app)  # site
    for site_bp in (auth.bp, organization.bp, search.bp, opportunities.bp, profiles.bp, tracking.bp):  # site
        app.register_blueprint(site_bp)  # site
    logging.getLogger(__name__).debug("app created", extra={"database": app.config["DATABASE_URL"]})
    return app
