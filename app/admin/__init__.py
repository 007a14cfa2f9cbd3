"""The /admin area: curation, the CVI program catalogue, the review queue and operations.

One blueprint; its views live in the modules imported at the bottom. Every view is wrapped in
``admin_required`` and the blueprint also checks the role before any request, so a route added
without the decorator is still closed to members.
"""

from __future__ import annotations

from typing import Any, cast

from flask import Blueprint, abort, render_template, request
from flask_login import current_user

from app.models import User
from app.routing import MAX_ID
from app.security import admin_required

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.before_request
@admin_required
def _admins_only() -> None:
    """Reached only by admins; ``admin_required`` answers everyone else."""
    return None


def acting_admin() -> User:
    """The signed-in admin (the guard above guarantees one)."""
    return cast(User, current_user._get_current_object())


def page_arg() -> int:
    return max(1, request.args.get("page", default=1, type=int) or 1)


def int_arg(name: str) -> int | None:
    """An id filter from the query string; a number no row can have is a 400 saying so (it used to
    reach the database and fail there)."""
    value = request.args.get(name, default=None, type=int)
    if value is not None and not 0 < value <= MAX_ID:
        abort(400, description=f"The {name} filter must be an id from 1 to {MAX_ID:,}.")
    return value


def form_text(name: str) -> str:
    return (request.form.get(name) or "").strip()


def bad_input(message: str, back: str | None = None) -> tuple[str, int]:
    """A 400 page with the message and a way back (only to this site); nothing was changed."""
    referrer = request.referrer or ""
    if back is None and referrer.startswith(request.host_url):
        back = referrer
    return render_template("admin/error.html", message=message, back=back), 400


@bp.app_template_filter("audit_value")
def audit_value(value: Any) -> str:
    """Render an audited value compactly (lists joined, empty as a dash)."""
    if value is None or value == "" or value == []:
        return "—"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}: {v}" for k, v in value.items() if v not in (None, "", []))
    return str(value)


from app.admin import (  # noqa: E402  (the view modules register their routes on ``bp``)
    accounts,
    catalogue,
    dashboard,
    operations,
    opportunities,
    review,
)

__all__ = [
    "accounts",
    "bp",
    "catalogue",
    "dashboard",
    "operations",
    "opportunities",
    "review",
]
