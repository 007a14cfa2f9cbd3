"""The home page: the catalogue, newest first."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template, request

from app import warmup
from app.db import db_session
from app.services import catalogue

bp = Blueprint("home", __name__)


@bp.get("/")
def index() -> str:
    page = request.args.get("page", default=1, type=int) or 1
    listing = catalogue.newest(db_session(), page, current_app.config["PAGE_SIZE"])
    return render_template("home.html", listing=listing)


@bp.get("/healthz")
def healthz() -> dict[str, str]:
    """Liveness, and whether the worker that answered has finished warming its matching caches."""
    return {"status": "ok", "warm_up": warmup.state(current_app)}
