"""The review queue: one-click confirm or reject of the opportunities the classifier is unsure of."""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from app.admin import acting_admin, bp, form_text, page_arg
from app.db import db_session
from app.security import admin_required
from app.services import curation, review_queue
from app.services.curation import CurationError

PER_PAGE = 20


def _band() -> review_queue.Band:
    width = request.values.get("band", type=float)
    if width is None or not 0 <= width <= 1:
        width = current_app.config["ADMIN_REVIEW_BAND"]
    return review_queue.band(float(width))


@bp.get("/review")
@admin_required
def review() -> str:
    scope = _band()
    queue = review_queue.pending(db_session(), scope, page_arg(), PER_PAGE)
    return render_template(
        "admin/review.html",
        queue=queue,
        scope=scope,
        excerpt=review_queue.excerpt,
        custom_band="band" in request.args,
    )


@bp.post("/review/<int:opportunity_id>")
@admin_required
def review_decide(opportunity_id: int) -> Response:
    session = db_session()
    opp = curation.get_opportunity(session, opportunity_id)
    if opp is None:
        abort(404)
    decision = request.form.get("decision")
    if decision not in ("confirm", "reject"):
        raise CurationError("choose confirm or reject")
    curation.set_cvi(session, opp, acting_admin(), decision == "confirm", form_text("note"))
    session.commit()
    flash(f"#{opp.id} {'confirmed' if decision == 'confirm' else 'rejected'}: {opp.title}", "info")
    args: dict[str, str | int] = {"page": request.form.get("page", type=int) or 1}
    if request.form.get("band"):
        args["band"] = request.form["band"]
    return redirect(url_for("admin.review", **args))  # type: ignore[arg-type]
