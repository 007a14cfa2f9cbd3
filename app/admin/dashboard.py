"""The admin dashboard."""

from __future__ import annotations

from flask import current_app, render_template

from app.admin import bp
from app.db import db_session
from app.security import admin_required
from app.services import admin_dashboard, review_queue


@bp.get("/")
@admin_required
def index() -> str:
    scope = review_queue.band(current_app.config["ADMIN_REVIEW_BAND"])
    return render_template("admin/dashboard.html", figures=admin_dashboard.figures(db_session(), scope))
