"""``/profiles``: the organization's program profiles, their matches, and "not a fit"."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from pydantic import ValidationError
from werkzeug.wrappers import Response

from app.db import db_session
from app.forms import ButtonForm, DismissForm, ProfileForm
from app.models import ProgramProfile
from app.security import member_required
from app.services import profiles
from app.services.matches import MatchParams, matches_for
from app.services.search import CLOSING_WINDOWS
from app.views.common import organization_id, safe_next, signed_in_user
from matching.profile import MatchingError

bp = Blueprint("profiles", __name__)


def _profile(profile_id: int) -> ProgramProfile:
    found = profiles.get(db_session(), organization_id(), profile_id)
    if found is None:
        abort(404, description="Your organization has no program profile with that number.")
    return found


def _contract(form: ProfileForm) -> dict[str, Any]:
    return {
        "name": form.name.data,
        "org_type": form.org_type.data,
        "city": form.city.data or None,
        "state": (form.state.data or "").upper() or None,
        "program_description": form.program_description.data or "",
        "focus_areas": form.focus_areas.data or "",
        "populations": form.populations.data or "",
        "funding_need": form.funding_need.data or None,
        "budget_range": form.budget_range.data or None,
    }


@bp.get("/profiles")
@member_required
def index() -> str:
    items = profiles.for_organization(db_session(), organization_id())
    return render_template("profiles/index.html", profiles=items, button=ButtonForm())


@bp.route("/profiles/new", methods=["GET", "POST"])
@member_required
def new() -> str | Response | tuple[str, int]:
    org_id = organization_id()
    form = ProfileForm()
    if request.method == "GET":
        org_type = getattr(signed_in_user().organization, "org_type", None)
        if org_type:
            form.org_type.data = str(org_type)
    if form.validate_on_submit():
        session = db_session()
        try:
            profile = profiles.create(session, org_id, signed_in_user(), _contract(form))
        except profiles.ProfileError as exc:
            session.rollback()
            form.form_errors.append(str(exc))
        else:
            session.commit()
            flash(f"Saved {profile.name}. Here is the funding that fits it.", "success")
            return redirect(url_for(".matches", profile_id=profile.id))
    status = 400 if form.errors else 200
    return render_template("profiles/form.html", form=form, profile=None), status


@bp.route("/profiles/<int:profile_id>/edit", methods=["GET", "POST"])
@member_required
def edit(profile_id: int) -> str | Response | tuple[str, int]:
    profile = _profile(profile_id)
    form = ProfileForm(obj=profile) if request.method == "GET" else ProfileForm()
    if request.method == "GET":
        form.focus_areas.data = ", ".join(profile.focus_areas or [])
        form.populations.data = ", ".join(profile.populations or [])
    if form.validate_on_submit():
        session = db_session()
        try:
            profiles.update(session, profile, _contract(form))
        except profiles.ProfileError as exc:
            session.rollback()
            form.form_errors.append(str(exc))
        else:
            session.commit()
            flash(f"Saved {profile.name}.", "success")
            return redirect(url_for(".matches", profile_id=profile.id))
    status = 400 if form.errors else 200
    return render_template("profiles/form.html", form=form, profile=profile), status


@bp.post("/profiles/<int:profile_id>/delete")
@member_required
def delete(profile_id: int) -> Response:
    profile = _profile(profile_id)
    if not ButtonForm().validate_on_submit():
        abort(400, description="The form expired. Reload the page and try again.")
    session = db_session()
    name = profile.name
    profiles.delete(session, profile)
    session.commit()
    flash(f"Deleted the profile {name}.", "info")
    return redirect(url_for(".index"))


def _match_params() -> MatchParams:
    data: dict[str, Any] = {}
    for name in ("department", "status"):
        values = [v for v in request.args.getlist(name) if v.strip()]
        if values:
            data[name] = values
    for name in ("closing_within", "cvi_only", "page"):
        values = request.args.getlist(name)
        if values and values[-1].strip():
            data[name] = values[-1]
    try:
        return MatchParams.model_validate(data)
    except ValidationError as exc:
        messages = [
            f"{'.'.join(str(p) for p in e['loc'] if not isinstance(p, int))}: {e['msg']}"
            for e in exc.errors()
        ]
        abort(400, description="These filters have a problem. " + "; ".join(messages))


@bp.get("/profiles/<int:profile_id>/matches")
@member_required
def matches(profile_id: int) -> str | tuple[str, int]:
    profile = _profile(profile_id)
    params = _match_params()
    try:
        page = matches_for(db_session(), profile, params, per_page=current_app.config["PAGE_SIZE"])
    except MatchingError as exc:
        flash(f"This profile cannot be matched yet: {exc}. Edit it and try again.", "error")
        return render_template(
            "profiles/matches.html", profile=profile, page=None, params=params, windows=CLOSING_WINDOWS,
            dismiss_form=DismissForm(), args={},
        ), 400  # fmt: skip
    args = {k: v for k, v in request.args.items(multi=True) if k != "page"}
    return render_template(
        "profiles/matches.html", profile=profile, page=page, params=params, windows=CLOSING_WINDOWS,
        dismiss_form=DismissForm(), args=args,
    )  # fmt: skip


@bp.post("/profiles/<int:profile_id>/matches/<int:opportunity_id>/dismiss")
@member_required
def dismiss(profile_id: int, opportunity_id: int) -> Response:
    profile = _profile(profile_id)
    form = DismissForm()
    if not form.validate_on_submit():
        message = "; ".join(e for errs in form.errors.values() for e in errs)
        abort(400, description=f"The opportunity was not marked: {message}")
    session = db_session()
    try:
        profiles.dismiss(session, profile, opportunity_id, form.reason.data or "", signed_in_user())
    except profiles.ProfileError as exc:
        session.rollback()
        abort(400, description=str(exc))
    session.commit()
    flash("Marked as not a fit. It will no longer appear in these matches.", "success")
    return redirect(safe_next(request.form.get("back"), url_for(".matches", profile_id=profile.id)))


@bp.get("/profiles/<int:profile_id>/dismissed")
@member_required
def dismissed(profile_id: int) -> str:
    profile = _profile(profile_id)
    return render_template(
        "profiles/dismissed.html", profile=profile, rows=profiles.dismissals(db_session(), profile.id),
        button=ButtonForm(),
    )  # fmt: skip


@bp.post("/profiles/<int:profile_id>/dismissed/<int:dismissal_id>/undo")
@member_required
def undo(profile_id: int, dismissal_id: int) -> Response:
    profile = _profile(profile_id)
    if not ButtonForm().validate_on_submit():
        abort(400, description="The form expired. Reload the page and try again.")
    session = db_session()
    if not profiles.undo_dismissal(session, profile, dismissal_id):
        abort(404, description="That dismissal does not exist.")
    session.commit()
    flash("It will appear in the matches again.", "success")
    return redirect(url_for(".dismissed", profile_id=profile.id))
