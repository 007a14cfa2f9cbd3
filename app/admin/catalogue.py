"""The CVI program catalogue: programs and their assistance listings."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from app.admin import acting_admin, bp, form_text
from app.db import db_session
from app.models import CviProgram
from app.security import admin_required
from app.services import audit, catalogue_admin, curation
from app.services.catalogue_admin import CatalogueError


def _program(program_id: int) -> CviProgram:
    program = catalogue_admin.get_program(db_session(), program_id)
    if program is None:
        abort(404)
    return program


def _form_page(
    program: CviProgram | None, form: object, error: str | None, status: int = 200
) -> tuple[str, int]:
    session = db_session()
    history = (
        curation.audit_log(session, cvi_program_id=program.id, per_page=100).items
        if program is not None
        else []
    )
    return (
        render_template(
            "admin/program.html",
            program=program,
            form=form,
            error=error,
            fields=catalogue_admin.PROGRAM_FIELDS,
            history=history,
            users=audit.user_labels(session, {entry.user_id for entry in history}),
        ),
        status,
    )


@bp.get("/programs")
@admin_required
def programs() -> str:
    return render_template("admin/programs.html", programs=catalogue_admin.programs(db_session()))


@bp.get("/programs/new")
@admin_required
def new_program() -> tuple[str, int]:
    return _form_page(None, {}, None)


@bp.get("/programs/<int:program_id>")
@admin_required
def program(program_id: int) -> tuple[str, int]:
    item = _program(program_id)
    form = {name: getattr(item, name) for name in catalogue_admin.PROGRAM_FIELDS}
    form["activities"] = "\n".join(item.activities or [])
    return _form_page(item, form, None)


@bp.post("/programs/new")
@bp.post("/programs/<int:program_id>")
@admin_required
def save_program(program_id: int | None = None) -> Response | tuple[str, int]:
    session = db_session()
    item = _program(program_id) if program_id is not None else None
    try:
        saved = catalogue_admin.save_program(session, acting_admin(), item, request.form, form_text("note"))
    except CatalogueError as error:
        session.rollback()
        return _form_page(item, request.form, str(error), 400)
    session.commit()
    flash(f"Saved “{saved.name}”.", "info")
    return redirect(url_for("admin.program", program_id=saved.id))


@bp.post("/programs/<int:program_id>/listings")
@admin_required
def add_listing(program_id: int) -> Response:
    item = _program(program_id)
    number = form_text("number")
    count = catalogue_admin.add_listing(
        db_session(), acting_admin(), item, number, form_text("title"), form_text("note")
    )
    db_session().commit()
    flash(f"Added {number.upper()}; re-scored {count} opportunities.", "info")
    return redirect(url_for("admin.program", program_id=item.id))


@bp.post("/programs/<int:program_id>/listings/<number>/remove")
@admin_required
def remove_listing(program_id: int, number: str) -> Response:
    item = _program(program_id)
    count = catalogue_admin.remove_listing(db_session(), acting_admin(), item, number, form_text("note"))
    db_session().commit()
    flash(f"Removed {number}; re-scored {count} opportunities.", "info")
    return redirect(url_for("admin.program", program_id=item.id))
