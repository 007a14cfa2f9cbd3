"""Users, organizations, API keys, and the audit of account actions."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from app.admin import acting_admin, bad_input, bp, form_text, int_arg, page_arg
from app.db import db_session
from app.models import ApiKey
from app.security import admin_required
from app.services import api_key_admin, audit, user_admin
from app.services.api_key_admin import ApiKeyError
from app.services.user_admin import UserAdminError


@bp.errorhandler(UserAdminError)
@bp.errorhandler(ApiKeyError)
def _account_error(error: ValueError) -> tuple[str, int]:
    db_session().rollback()
    return bad_input(str(error))


@bp.get("/users")
@admin_required
def users() -> str:
    session = db_session()
    q = request.args.get("q", "")
    return render_template(
        "admin/users.html",
        users=user_admin.users(session, q=q, page=page_arg()),
        organizations=user_admin.organizations(session),
        q=q,
    )


@bp.post("/users/<int:user_id>/role")
@admin_required
def set_role(user_id: int) -> Response:
    user = user_admin.set_role(db_session(), acting_admin(), user_id, form_text("role"), form_text("note"))
    db_session().commit()
    flash(f"{user.email} is now {user.role}.", "info")
    return redirect(url_for("admin.users"))


@bp.post("/users/<int:user_id>/active")
@admin_required
def set_active(user_id: int) -> Response:
    active = request.form.get("active") == "1"
    user = user_admin.set_active(db_session(), acting_admin(), user_id, active, form_text("note"))
    db_session().commit()
    flash(f"{user.email} is {'active again' if active else 'deactivated'}.", "info")
    return redirect(url_for("admin.users"))


@bp.get("/api-keys")
@admin_required
def api_keys() -> str:
    session = db_session()
    items = api_key_admin.keys(session)
    creators = audit.user_labels(session, {key.created_by_id for key in items})
    return render_template("admin/api_keys.html", keys=items, creators=creators)


@bp.post("/api-keys")
@admin_required
def issue_api_key() -> tuple[str, int]:
    session = db_session()
    issued = api_key_admin.issue(
        session,
        acting_admin(),
        form_text("name"),
        form_text("rate_limit"),
        form_text("allowed_origins"),
        form_text("note"),
    )
    session.commit()
    # Shown once, never stored in clear and never redirected through a URL.
    return render_template("admin/api_key_issued.html", issued=issued), 201


@bp.get("/api-keys/<int:key_id>")
@admin_required
def api_key(key_id: int) -> str | tuple[str, int]:
    session = db_session()
    item = session.get(ApiKey, key_id)
    if item is None:
        return bad_input(f"there is no API key #{key_id}", url_for("admin.api_keys"))
    history = audit.events(session, target_type="api_key", target_id=key_id).items
    return render_template(
        "admin/api_key.html",
        key=item,
        usage=api_key_admin.usage(session, item),
        history=history,
        users=audit.user_labels(session, {e.actor_id for e in history} | {item.created_by_id}),
    )


@bp.post("/api-keys/<int:key_id>/revoke")
@admin_required
def revoke_api_key(key_id: int) -> Response:
    item = api_key_admin.revoke(db_session(), acting_admin(), key_id, form_text("note"))
    db_session().commit()
    flash(f"“{item.name}” is revoked; requests with it are refused from now on.", "info")
    return redirect(url_for("admin.api_key", key_id=key_id))


@bp.get("/audit/accounts")
@admin_required
def account_audit() -> str:
    session = db_session()
    events = audit.events(
        session,
        actor_id=int_arg("user"),
        target_type=request.args.get("target") or None,
        target_id=int_arg("target_id"),
        page=page_arg(),
    )
    users = audit.user_labels(
        session,
        {e.actor_id for e in events.items} | {e.target_id for e in events.items if e.target_type == "user"},
    )
    return render_template("admin/account_audit.html", events=events, users=users, args=request.args)
