"""``/opportunities/<id>``: one opportunity in plain words, its history, calendar file and tracking."""

from __future__ import annotations

from flask import Blueprint, Response, abort, current_app, flash, redirect, render_template, url_for
from flask_login import current_user
from werkzeug.wrappers import Response as WerkzeugResponse

from app.db import db_session
from app.forms import ButtonForm
from app.labels import eligibility_sentence
from app.models import Opportunity
from app.security import member_required
from app.services import opportunity_page, tracking
from app.services.calendar import deadlines, opportunity_ics
from app.views.common import organization_id, signed_in_user

bp = Blueprint("opportunities", __name__)


def _load(opportunity_id: int) -> Opportunity:
    try:
        return opportunity_page.load(
            db_session(), opportunity_id, is_admin=bool(getattr(current_user, "is_admin", False))
        )
    except opportunity_page.Merged as merged:
        abort(redirect(url_for(".show", opportunity_id=merged.target_id), 301))
    except opportunity_page.NotFound:
        abort(404, description="There is no opportunity with that number in the catalogue.")


@bp.get("/opportunities/<int:opportunity_id>")
def show(opportunity_id: int) -> str:
    session = db_session()
    opportunity = _load(opportunity_id)
    org_id = getattr(current_user, "organization_id", None) if current_user.is_authenticated else None
    return render_template(
        "opportunities/show.html",
        opp=opportunity,
        eligibility=eligibility_sentence(opportunity.eligibility_codes or []),
        history=opportunity_page.history(session, opportunity.id),
        programs=opportunity_page.cvi_programs(session, opportunity),
        reviewer=opportunity_page.reviewer(session, opportunity),
        tracked=opportunity_page.tracked(session, opportunity.id, org_id),
        deadlines=deadlines(opportunity),
        grants_gov_url=opportunity_page.grants_gov_url(opportunity),
        button=ButtonForm(),
    )


@bp.get("/opportunities/<int:opportunity_id>.ics")
def ics(opportunity_id: int) -> Response:
    opportunity = _load(opportunity_id)
    page_url = current_app.config["BASE_URL"] + url_for(".show", opportunity_id=opportunity.id)
    response = Response(opportunity_ics(opportunity, page_url), mimetype="text/calendar")
    response.headers["Content-Disposition"] = f'attachment; filename="opportunity-{opportunity.id}.ics"'
    return response


@bp.post("/opportunities/<int:opportunity_id>/track")
@member_required
def track(opportunity_id: int) -> WerkzeugResponse:
    if not ButtonForm().validate_on_submit():
        abort(400, description="The form expired. Reload the page and try again.")
    opportunity = _load(opportunity_id)
    session = db_session()
    tracking.track(session, organization_id(), opportunity.id, signed_in_user())
    session.commit()
    flash("Added to your organization's tracked opportunities.", "success")
    return redirect(url_for(".show", opportunity_id=opportunity.id))


@bp.post("/opportunities/<int:opportunity_id>/untrack")
@member_required
def untrack(opportunity_id: int) -> WerkzeugResponse:
    if not ButtonForm().validate_on_submit():
        abort(400, description="The form expired. Reload the page and try again.")
    session = db_session()
    removed = tracking.untrack(session, organization_id(), opportunity_id)
    session.commit()
    flash("No longer tracked." if removed else "It was not tracked.", "info")
    return redirect(url_for(".show", opportunity_id=opportunity_id))
