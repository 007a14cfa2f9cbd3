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

    import matching
    from app import (
        admin,
        api,
        cli,
        cli_backup,
        cli_crawl,
        db,
        extensions,
        headers,
        jobs,
        logs,
        request_guard,
        routing,
        templating,
    )
    from app.views import alerts, auth, errors, home, opportunities, organization, profiles, search, tracking

    logs.init_app(app)
    routing.init_app(app)
    request_guard.init_app(app)
    headers.init_app(app)
    db.init_app(app)
    extensions.init_app(app)
    templating.init_app(app)
    errors.init_app(app)
    cli.init_app(app)
    cli_crawl.init_app(app)
    cli_backup.init_app(app)
    jobs.init_app(app)
    matching.init_app(app)
    for blueprint in (
        home.bp,
        auth.bp,
        organization.bp,
        search.bp,
        opportunities.bp,
        profiles.bp,
        tracking.bp,
        admin.bp,
        alerts.bp,
    ):
        app.register_blueprint(blueprint)
    api.init_app(app)
    logging.getLogger(__name__).debug("app created", extra={"database": app.config["DATABASE_URL"]})
    return app
