"""The home page: the catalogue, newest first."""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, Response, current_app, render_template, request

from app import warmup
from app.db import db_session, utcnow
from app.services import catalogue

bp = Blueprint("home", __name__)


@bp.get("/")
def index() -> str:
    page = request.args.get("page", default=1, type=int) or 1
    listing = catalogue.newest(db_session(), page, current_app.config["PAGE_SIZE"])
    return render_template("home.html", listing=listing)


@bp.get("/.well-known/security.txt")
def security_txt() -> Response:
    """RFC 9116: where to report a vulnerability (``SECURITY_CONTACT``, set by the operator)."""
    expires = (utcnow() + dt.timedelta(days=365)).replace(microsecond=0)
    text = (
        f"Contact: mailto:{current_app.config['SECURITY_CONTACT']}\n"
        f"Expires: {expires.isoformat().replace('+00:00', 'Z')}\n"
        "Preferred-Languages: en\n"
    )
    return Response(text, mimetype="text/plain")


@bp.get("/healthz")
def healthz() -> dict[str, str]:
    """Liveness, and whether the worker that answered has finished warming its matching caches."""
    return {"status": "ok", "warm_up": warmup.state(current_app)}
