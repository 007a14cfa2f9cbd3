"""``/tracked``: the organization's pipeline and its calendar; ``/searches``: saved searches."""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response
from wtforms.fields.choices import SelectChoice

from app.db import db_session
from app.forms import ButtonForm, SavedSearchForm, TrackedEditForm
from app.models import Opportunity, PipelineStage
from app.security import member_required
from app.services import organizations, saved_searches, tracking
from app.views.common import organization_id, signed_in_user

bp = Blueprint("tracking", __name__)


@bp.get("/tracked")
@member_required
def index() -> str:
    session = db_session()
    org_id = organization_id()
    stage_value = request.args.get("stage", "")
    stage = None
    if stage_value:
        try:
            stage = PipelineStage(stage_value)
        except ValueError:
            abort(400, description=f"stage must be one of: {', '.join(s.value for s in PipelineStage)}")
    return render_template(
        "tracking/index.html",
        rows=tracking.pipeline(session, org_id, stage=stage),
        counts=tracking.stage_counts(session, org_id),
        stages=list(PipelineStage),
        stage=stage,
        today=dt.date.today(),
        button=ButtonForm(),
    )


@bp.route("/tracked/<int:tracked_id>", methods=["GET", "POST"])
@member_required
def edit(tracked_id: int) -> str | Response | tuple[str, int]:
    session = db_session()
    org_id = organization_id()
    row = tracking.get(session, org_id, tracked_id)
    if row is None:
        abort(404, description="Your organization does not track that.")
    form = TrackedEditForm(obj=row) if request.method == "GET" else TrackedEditForm()
    people = organizations.members(session, org_id)
    form.owner.choices = [SelectChoice("", "Nobody yet")] + [
        SelectChoice(str(p.id), p.name or p.email) for p in people
    ]
    if request.method == "GET":
        form.owner.data = str(row.owner_id) if row.owner_id else ""
        form.stage.data = str(row.stage)
    if form.validate_on_submit():
        owner = form.owner.data
        if owner and not owner.isdigit():
            form.owner.errors = ["Choose a member of your organization."]
        else:
            try:
                tracking.update(
                    session,
                    row,
                    stage=PipelineStage(form.stage.data),
                    owner_id=int(owner) if owner else None,
                    internal_deadline=form.internal_deadline.data,
                    notes=form.notes.data or "",
                )
            except tracking.TrackingError as exc:
                session.rollback()
                form.owner.errors = [str(exc)]
            else:
                session.commit()
                flash("Tracking saved.", "success")
                return redirect(url_for(".index"))
    opportunity = session.get(Opportunity, row.opportunity_id)
    return render_template(
        "tracking/edit.html", form=form, row=row, opp=opportunity
    ), 400 if form.errors else 200


@bp.get("/tracked/calendar")
@member_required
def calendar() -> str:
    today = dt.date.today()
    text = request.args.get("month", f"{today:%Y-%m}")
    try:
        first = dt.datetime.strptime(text, "%Y-%m").date()
    except ValueError:
        abort(400, description="month must look like 2026-11 (year-month).")
    try:
        weeks = tracking.month(db_session(), organization_id(), first.year, first.month)
    except tracking.TrackingError as exc:
        abort(400, description=str(exc))
    previous = (first - dt.timedelta(days=1)).replace(day=1)
    following = (first + dt.timedelta(days=32)).replace(day=1)
    return render_template(
        "tracking/calendar.html",
        weeks=weeks,
        first=first,
        previous=previous,
        following=following,
        today=today,
    )


@bp.get("/searches", endpoint="saved_searches")
@member_required
def saved_searches_page() -> str:
    user = signed_in_user()
    items = saved_searches.for_user(db_session(), user.id)
    return render_template(
        "tracking/searches.html",
        items=[(s, saved_searches.query_string(s)) for s in items],
        button=ButtonForm(),
    )


@bp.post("/searches")
@member_required
def save_search() -> Response:
    form = SavedSearchForm()
    if not form.validate_on_submit():
        message = "; ".join(e for errs in form.errors.values() for e in errs)
        abort(400, description=f"The search was not saved: {message}")
    session = db_session()
    try:
        saved = saved_searches.save(session, signed_in_user(), form.name.data or "", form.query.data or "")
    except saved_searches.SavedSearchError as exc:
        session.rollback()
        abort(400, description=str(exc))
    session.commit()
    flash(f"Saved the search “{saved.name}”.", "success")
    return redirect(url_for(".saved_searches"))


@bp.post("/searches/<int:saved_id>/delete")
@member_required
def delete_search(saved_id: int) -> Response:
    if not ButtonForm().validate_on_submit():
        abort(400, description="The form expired. Reload the page and try again.")
    session = db_session()
    if not saved_searches.delete(session, signed_in_user().id, saved_id):
        abort(404, description="You have no saved search with that number.")
    session.commit()
    flash("Deleted the saved search.", "info")
    return redirect(url_for(".saved_searches"))
