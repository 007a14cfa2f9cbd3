"""The organization page: members, roles and inviting a colleague by a signed email link."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from app import sign_in as signed_in
from app.db import db_session
from app.forms import AcceptInviteForm, ButtonForm, InviteForm, RoleForm
from app.mail import MailError, send_email
from app.models import Organization, Role
from app.security import member_required
from app.services import organizations, ratelimit
from app.services.accounts import AccountError, find_user
from app.services.organizations import INVITE_MAX_AGE_SECONDS
from app.views.common import organization_id, signed_in_user

bp = Blueprint("org", __name__)
#: Invitation emails one person may send per hour (the form mails any address it is given).
INVITES_PER_HOUR = 20


def _members_page(organization: Organization, invite_form: InviteForm, status: int = 200) -> tuple[str, int]:
    session = db_session()
    people = organizations.members(session, organization.id)
    return render_template(
        "org/members.html",
        organization=organization,
        people=people,
        invitations=organizations.pending_invitations(session, organization.id),
        invite_form=invite_form,
        role_forms={p.id: RoleForm(role=str(p.role), prefix=f"u{p.id}") for p in people},
        button=ButtonForm(),
    ), status


@bp.get("/organization")
@member_required
def members() -> tuple[str, int]:
    organization = db_session().get(Organization, organization_id())
    if organization is None:
        abort(404)
    return _members_page(organization, InviteForm())


@bp.post("/organization/invite")
@member_required
def invite() -> Response | tuple[str, int]:
    session = db_session()
    organization = session.get(Organization, organization_id())
    form = InviteForm()
    if organization is None:
        abort(404)
    if not form.validate_on_submit():
        return _members_page(organization, form, 400)
    user = signed_in_user()
    decision = ratelimit.hit(session, f"invite:{user.id}", limit=INVITES_PER_HOUR, window_seconds=3600)
    if not decision.allowed:
        session.commit()
        abort(429, description=f"You sent {INVITES_PER_HOUR} invitations this hour. Try again later.")
    invitation = organizations.invite(session, organization, form.email.data or "", user)
    session.commit()
    token = organizations.invite_token(current_app.config["SECRET_KEY"], invitation)
    link = current_app.config["BASE_URL"] + url_for("org.accept", token=token)
    days = INVITE_MAX_AGE_SECONDS // 86400
    try:
        send_email(
            current_app.config,
            invitation.email,
            f"{user.name or user.email} invited you to {organization.name} on CVI Funding Finder",
            f"{user.name or user.email} invited you to join {organization.name} on CVI Funding Finder, "
            "where your team finds and tracks federal funding for community violence intervention.\n\n"
            f"Accept the invitation within {days} days (the link works once):\n{link}\n",
        )
    except MailError:
        organizations.withdraw_invitation(session, organization.id, invitation.id)
        session.commit()
        flash("We could not send the invitation just now. Please try again in a few minutes.", "error")
        return redirect(url_for("org.members"))
    flash(f"Invitation sent to {invitation.email}. The link works once, for {days} days.", "success")
    return redirect(url_for("org.members"))


@bp.post("/organization/invitations/<int:invitation_id>/withdraw")
@member_required
def withdraw(invitation_id: int) -> Response:
    session = db_session()
    if not ButtonForm().validate_on_submit():
        abort(400, description="The form expired. Reload the page and try again.")
    try:
        invitation = organizations.withdraw_invitation(session, organization_id(), invitation_id)
    except AccountError as exc:
        session.rollback()
        abort(_status(exc), description=str(exc))
    session.commit()
    flash(f"The invitation to {invitation.email} no longer works.", "info")
    return redirect(url_for("org.members"))


def _status(error: AccountError) -> int:
    """404 for another organization's people and invitations, 403 for a member acting as admin."""
    if isinstance(error, organizations.NotInOrganization):
        return 404
    return 403 if isinstance(error, organizations.AdminOnly) else 400


@bp.post("/organization/members/<int:user_id>/role")
@member_required
def set_role(user_id: int) -> Response:
    session = db_session()
    form = RoleForm(prefix=f"u{user_id}")
    if not form.validate_on_submit():
        abort(400, description="Choose member or admin.")
    try:
        target = organizations.set_role(
            session, organization_id(), user_id, Role(form.role.data), by=signed_in_user()
        )
    except AccountError as exc:
        session.rollback()
        abort(_status(exc), description=str(exc))
    session.commit()
    flash(f"{target.email} is now {target.role}.", "success")
    return redirect(url_for("org.members"))


@bp.post("/organization/members/<int:user_id>/remove")
@member_required
def remove(user_id: int) -> Response:
    session = db_session()
    if not ButtonForm().validate_on_submit():
        abort(400, description="The form expired. Reload the page and try again.")
    try:
        target = organizations.remove_member(session, organization_id(), user_id, by=signed_in_user())
    except AccountError as exc:
        session.rollback()
        abort(_status(exc), description=str(exc))
    session.commit()
    flash(f"{target.email} is no longer a member.", "success")
    return redirect(url_for("org.members"))


@bp.route("/invite/<token>", methods=["GET", "POST"])
def accept(token: str) -> str | Response | tuple[str, int]:
    session = db_session()
    try:
        invitation = organizations.read_invite(session, current_app.config["SECRET_KEY"], token)
    except AccountError as exc:
        return render_template("org/accept.html", error=str(exc), form=None, invitation=None), 400
    form = AcceptInviteForm()
    current = signed_in_user() if current_user.is_authenticated else None
    if form.validate_on_submit():
        try:
            user = organizations.accept_invite(
                session, invitation, current=current, password=form.password.data, name=form.name.data
            )
        except AccountError as exc:
            session.rollback()
            flash(str(exc), "error")
            return render_template("org/accept.html", form=form, invitation=invitation, error=None), 400
        session.commit()
        if current is None:
            signed_in.begin(user)
        flash(f"Welcome to {invitation.organization.name}.", "success")
        return redirect(url_for("profiles.index"))
    has_account = find_user(session, invitation.email) is not None
    status = 400 if form.errors else 200
    return render_template(
        "org/accept.html", form=form, invitation=invitation, error=None, has_account=has_account
    ), status
