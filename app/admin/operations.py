"""Operations: crawl runs and payloads, run a source now, scheduler jobs, the email outbox."""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from app.admin import acting_admin, bad_input, bp, form_text, page_arg
from app.db import db_session
from app.models import CrawlRun
from app.security import admin_required
from app.services import audit, crawl_admin, ops_admin
from app.services.crawl_admin import CrawlAdminError
from app.services.ops_admin import OpsError
from app.views.common import safe_next


@bp.errorhandler(CrawlAdminError)
@bp.errorhandler(OpsError)
def _ops_error(error: ValueError) -> tuple[str, int]:
    db_session().rollback()
    return bad_input(str(error))


@bp.get("/crawls")
@admin_required
def crawls() -> str:
    session = db_session()
    source = request.args.get("source", "")
    return render_template(
        "admin/crawls.html",
        runs=crawl_admin.runs(session, source=source, page=page_arg()),
        sources=crawl_admin.sources(session),
        crawlable=crawl_admin.crawlable(),
        source=source,
    )


@bp.get("/crawls/<int:run_id>")
@admin_required
def crawl(run_id: int) -> str:
    run = db_session().get(CrawlRun, run_id)
    if run is None:
        abort(404)
    return render_template("admin/crawl.html", run=run)


@bp.get("/crawls/payloads/<int:payload_id>")
@admin_required
def crawl_payload(payload_id: int) -> Response:
    item = crawl_admin.payload(db_session(), payload_id)
    if item is None:
        abort(404)
    response = Response(item.body, mimetype=item.mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{item.filename}"'
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


@bp.post("/crawls/run")
@admin_required
def run_source() -> Response:
    source = form_text("source")
    pid = crawl_admin.start_crawl(source, current_app.config["DATABASE_URL"])
    audit.record(db_session(), acting_admin(), "run crawl", "crawl", None, new=source, note=f"process {pid}")
    db_session().commit()
    flash(f"Crawl of {source} started (process {pid}); its run appears below as soon as it begins.", "info")
    return redirect(url_for("admin.crawls", source=source))


@bp.get("/jobs")
@admin_required
def jobs() -> str:
    session = db_session()
    name = request.args.get("name", "")
    return render_template(
        "admin/jobs.html",
        runs=ops_admin.job_runs(session, name=name, page=page_arg()),
        locks=ops_admin.job_locks(session),
        name=name,
    )


@bp.get("/outbox")
@admin_required
def outbox() -> str:
    session = db_session()
    status = request.args.get("status", "")
    return render_template(
        "admin/outbox.html",
        messages=ops_admin.outbox(session, status=status, page=page_arg()),
        counts=ops_admin.outbox_counts(session),
        status=status,
    )


@bp.post("/outbox/<int:message_id>/retry")
@admin_required
def retry_email(message_id: int) -> Response:
    message = ops_admin.retry_email(db_session(), acting_admin(), message_id)
    db_session().commit()
    flash(f"Message #{message.id} to {message.to_address} will be sent again.", "info")
    return redirect(safe_next(request.form.get("next"), url_for("admin.outbox")))
