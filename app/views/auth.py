"""Accounts: sign up, sign in, sign out and password reset by email."""

from __future__ import annotations

import contextlib
import logging

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from app import sign_in as signed_in
from app.db import db_session
from app.forms import ResetPasswordForm, ResetRequestForm, SignInForm, SignUpForm
from app.mail import MailError, send_email
from app.models import OrgType, User
from app.services import authentication, organizations, ratelimit, user_sessions
from app.services.accounts import AccountError, find_user
from app.views.common import client_ip, safe_next

#: Accounts one IP address may create per hour (sign-up says when an email is taken, so it is limited).
SIGN_UP_LIMIT = 10

bp = Blueprint("auth", __name__)
log = logging.getLogger(__name__)


@bp.route("/sign-up", methods=["GET", "POST"])
def sign_up() -> str | Response | tuple[str, int]:
    form = SignUpForm()
    if form.validate_on_submit():
        session = db_session()
        decision = ratelimit.hit(session, f"sign-up:{client_ip()}", limit=SIGN_UP_LIMIT, window_seconds=3600)
        session.commit()
        if not decision.allowed:
            abort(429, description="Too many accounts were created from your network. Try again in an hour.")
        try:
            user = organizations.sign_up(
                session,
                email=form.email.data or "",
                password=form.password.data or "",
                name=form.name.data or None,
                organization_name=form.organization.data or "",
                org_type=OrgType(form.org_type.data) if form.org_type.data else None,
            )
        except AccountError as exc:
            session.rollback()
            form.email.errors = [*form.email.errors, str(exc)]
        else:
            session.commit()
            signed_in.begin(user)
            flash("Welcome! Describe a program to see the funding that fits it.", "success")
            return redirect(url_for("profiles.new"))
    status = 400 if form.errors else 200
    return render_template("auth/sign_up.html", form=form), status


@bp.route("/sign-in", methods=["GET", "POST"])
def sign_in() -> str | Response | tuple[str, int]:
    form = SignInForm()
    if request.method == "GET":
        form.next.data = request.args.get("next", "")
    status = 200
    if form.validate_on_submit():
        session = db_session()
        outcome = authentication.sign_in(
            session, form.email.data or "", form.password.data or "", client_ip()
        )
        session.commit()
        if outcome.user is not None:
            signed_in.begin(outcome.user)
            return redirect(safe_next(form.next.data, url_for("search.index")))
        flash(outcome.message or "Sign-in failed.", "error")
        status = 429 if outcome.limited else 401
    elif form.errors:
        status = 400
    return render_template("auth/sign_in.html", form=form), status


@bp.post("/sign-out")
def sign_out() -> Response:
    signed_in.end()
    flash("You are signed out.", "info")
    return redirect(url_for("home.index"))


@bp.route("/reset", methods=["GET", "POST"])
def reset_request() -> str | Response | tuple[str, int]:
    form = ResetRequestForm()
    if form.validate_on_submit():
        session = db_session()
        email = (form.email.data or "").strip().lower()
        decision = ratelimit.hit(session, f"reset:{client_ip()}", limit=10, window_seconds=3600)
        user = find_user(session, email) if decision.allowed else None
        session.commit()
        if user is not None and user.active:
            token = authentication.reset_token(current_app.config["SECRET_KEY"], user)
            link = current_app.config["BASE_URL"] + url_for("auth.reset_password", token=token)
            # A failure is logged by send_email; saying so here would tell a stranger the account exists.
            with contextlib.suppress(MailError):
                send_email(
                    current_app.config,
                    user.email,
                    "Reset your CVI Funding Finder password",
                    "Someone (we hope you) asked to reset the password of this account.\n\n"
                    f"Choose a new password here within the next hour:\n{link}\n\n"
                    "If you did not ask, ignore this message; your password stays the same.\n",
                )
        # The same answer whether or not the account exists, so the form does not reveal accounts.
        flash(
            f"If an account exists for {email}, we sent it a link to choose a new password. "
            "If nothing arrives within a few minutes, check the address and ask again.",
            "info",
        )
        return redirect(url_for("auth.sign_in"))
    return render_template("auth/reset_request.html", form=form), 400 if form.errors else 200


@bp.route("/reset/<token>", methods=["GET", "POST"])
def reset_password(token: str) -> str | Response | tuple[str, int]:
    session = db_session()
    try:
        authentication.user_for_reset(session, current_app.config["SECRET_KEY"], token)
    except AccountError as exc:
        flash(str(exc), "error")
        return render_template("auth/reset_request.html", form=ResetRequestForm()), 400
    form = ResetPasswordForm()
    if form.validate_on_submit():
        try:
            user = authentication.reset_password(
                session, current_app.config["SECRET_KEY"], token, form.password.data or ""
            )
        except AccountError as exc:
            session.rollback()
            form.password.errors = [*form.password.errors, str(exc)]
        else:
            user_sessions.revoke_all(session, user.id)  # whoever knew the old password is signed out
            session.commit()
            _tell_password_changed(user)
            signed_in.begin(user)
            flash("Your password is changed and you are signed in.", "success")
            return redirect(url_for("search.index"))
    return render_template("auth/reset_password.html", form=form), 400 if form.errors else 200


def _tell_password_changed(user: User) -> None:
    """ASVS 2.2.3: the account's owner hears of a password change (best effort: it is already done)."""
    with contextlib.suppress(MailError):
        send_email(
            current_app.config,
            user.email,
            "Your CVI Funding Finder password was changed",
            "The password of this account was just changed with a reset link, and every other "
            "signed-in session was signed out.\n\n"
            "If that was not you, ask for a new reset link at "
            f"{current_app.config['BASE_URL']}{url_for('auth.reset_request')} and tell your "
            f"organization's administrator, or write to {current_app.config['SECURITY_CONTACT']}.\n",
        )
