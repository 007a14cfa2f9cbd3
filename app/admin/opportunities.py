"""Curating opportunities: list, one record, its edit forms, merge, hand-added records, audit log."""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from app.admin import acting_admin, bad_input, bp, form_text, int_arg, page_arg
from app.db import db_session
from app.models import Opportunity
from app.security import admin_required
from app.services import audit, curation
from app.services.curation import CurationError
from app.views.common import safe_next


@bp.errorhandler(CurationError)
def _curation_error(error: CurationError) -> tuple[str, int]:
    db_session().rollback()
    return bad_input(str(error))


def _opportunity(opportunity_id: int) -> Opportunity:
    opportunity = curation.get_opportunity(db_session(), opportunity_id)
    if opportunity is None:
        abort(404)
    return opportunity


def _done(opportunity: Opportunity, message: str) -> Response:
    db_session().commit()
    flash(message, "info")
    return redirect(
        safe_next(request.form.get("next"), url_for("admin.opportunity", opportunity_id=opportunity.id))
    )


@bp.get("/opportunities")
@admin_required
def opportunities() -> str:
    listing = curation.search_opportunities(
        db_session(),
        q=request.args.get("q", ""),
        show=request.args.get("show", "all"),
        source=request.args.get("source", ""),
        page=page_arg(),
        per_page=current_app.config["PAGE_SIZE"],
    )
    return render_template("admin/opportunities.html", listing=listing, args=request.args)


@bp.get("/opportunities/<int:opportunity_id>")
@admin_required
def opportunity(opportunity_id: int) -> str:
    session = db_session()
    opp = _opportunity(opportunity_id)
    curations = curation.curations_of(session, opp)
    return render_template(
        "admin/opportunity.html",
        opp=opp,
        merged_into=session.get(Opportunity, opp.merged_into_id) if opp.merged_into_id else None,
        merged_from=curation.merged_ids(session, opp),
        versions=curation.history(session, opp),
        curations=curations,
        users=audit.user_labels(session, {c.user_id for c in curations} | {opp.reviewed_by_id}),
        fields=curation.EDITABLE_FIELDS,
    )


@bp.post("/opportunities/<int:opportunity_id>/cvi")
@admin_required
def decide_cvi(opportunity_id: int) -> Response:
    opp = _opportunity(opportunity_id)
    decision = request.form.get("decision")
    if decision not in ("confirm", "reject"):
        raise CurationError("choose confirm or reject")
    curation.set_cvi(db_session(), opp, acting_admin(), decision == "confirm", form_text("note"))
    return _done(opp, f"#{opp.id} {'confirmed as' if decision == 'confirm' else 'rejected for'} CVI funding.")


@bp.post("/opportunities/<int:opportunity_id>/cvi/clear")
@admin_required
def clear_cvi(opportunity_id: int) -> Response:
    opp = _opportunity(opportunity_id)
    curation.clear_cvi(db_session(), opp, acting_admin(), form_text("note"))
    return _done(opp, f"The CVI decision on #{opp.id} was cleared; the classifier's verdict applies.")


@bp.post("/opportunities/<int:opportunity_id>/tags")
@admin_required
def set_tags(opportunity_id: int) -> Response:
    opp = _opportunity(opportunity_id)
    curation.set_tags(
        db_session(), opp, acting_admin(), curation.parse_tags(form_text("tags")), form_text("note")
    )
    return _done(opp, "Focus-area tags saved.")


@bp.post("/opportunities/<int:opportunity_id>/flags")
@admin_required
def set_flag(opportunity_id: int) -> Response:
    opp = _opportunity(opportunity_id)
    flag, value = request.form.get("flag"), request.form.get("value") == "1"
    if flag == "featured":
        curation.set_featured(db_session(), opp, acting_admin(), value, form_text("note"))
    elif flag == "hidden":
        curation.set_hidden(db_session(), opp, acting_admin(), value, form_text("note"))
    else:
        raise CurationError("choose featured or hidden")
    return _done(opp, f"{flag.capitalize()} set to {'yes' if value else 'no'}.")


@bp.post("/opportunities/<int:opportunity_id>/field")
@admin_required
def correct_field(opportunity_id: int) -> Response:
    opp = _opportunity(opportunity_id)
    field = form_text("field")
    curation.correct_field(
        db_session(), opp, acting_admin(), field, request.form.get("value"), form_text("note")
    )
    return _done(opp, f"{field} corrected; crawls will keep this value.")


@bp.post("/opportunities/<int:opportunity_id>/release")
@admin_required
def release_field(opportunity_id: int) -> Response:
    opp = _opportunity(opportunity_id)
    field = form_text("field")
    curation.release_field(db_session(), opp, acting_admin(), field, form_text("note"))
    return _done(opp, f"{field} will follow the source again.")


@bp.post("/opportunities/<int:opportunity_id>/merge")
@admin_required
def merge(opportunity_id: int) -> Response:
    duplicate = _opportunity(opportunity_id)
    target_id = form_text("target_id").lstrip("#")
    if not target_id.isdigit():
        raise CurationError("give the number (#id) of the record to merge into")
    target = curation.get_opportunity(db_session(), int(target_id))
    if target is None:
        raise CurationError(f"there is no opportunity #{target_id}")
    curation.merge(db_session(), duplicate, target, acting_admin(), form_text("note"))
    db_session().commit()
    flash(f"#{duplicate.id} was merged into #{target.id}; its page now redirects there.", "info")
    return redirect(url_for("admin.opportunity", opportunity_id=target.id))


@bp.get("/opportunities/new")
@admin_required
def new_opportunity() -> str:
    return render_template("admin/opportunity_new.html", form={}, fields=curation.EDITABLE_FIELDS)


@bp.post("/opportunities/new")
@admin_required
def create_opportunity() -> Response | tuple[str, int]:
    session = db_session()
    try:
        data = curation.manual_fields(request.form)
        opp = curation.create_manual(session, acting_admin(), data, form_text("note"))
    except CurationError as error:
        session.rollback()
        return (
            render_template(
                "admin/opportunity_new.html",
                form=request.form,
                error=str(error),
                fields=curation.EDITABLE_FIELDS,
            ),
            400,
        )
    session.commit()
    flash(f"Added #{opp.id} “{opp.title}”.", "info")
    return redirect(url_for("admin.opportunity", opportunity_id=opp.id))


@bp.get("/audit")
@admin_required
def audit_log() -> str:
    log = curation.audit_log(
        db_session(),
        opportunity_id=int_arg("opportunity"),
        user_id=int_arg("user"),
        cvi_program_id=int_arg("program"),
        page=page_arg(),
    )
    users = audit.user_labels(db_session(), {entry.user_id for entry in log.items})
    return render_template("admin/audit.html", log=log, users=users, args=request.args)
