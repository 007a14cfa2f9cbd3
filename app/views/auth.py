"""Accounts: sign up, sign in, sign out and password reset by email."""

from __future__ import annotations

import logging

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_user, logout_user
from werkzeug.wrappers import Response

from app.db import db_session
from app.forms import ResetPasswordForm, ResetRequestForm, SignInForm, SignUpForm
from app.mail import MailError, send_email
from app.models import OrgType
from app.services import authentication, organizations, ratelimit
from app.services.accounts import AccountError, find_user
from app.views.common import client_ip, safe_next

bp = Blueprint("auth", __name__)
log = logging.getLogger(__name__)


@bp.route("/sign-up", methods=["GET", "POST"])
def sign_up() -> str | Response | tuple[str, int]:
    form = SignUpForm()
    if form.validate_on_submit():
        session = db_session()
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
            login_user(user)
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
            login_user(outcome.user)
            return redirect(safe_next(form.next.data, url_for("search.index")))
        flash(outcome.message or "Sign-in failed.", "error")
        status = 429 if outcome.limited else 401
    elif form.errors:
        status = 400
    return render_template("auth/sign_in.html", form=form), status


@bp.post("/sign-out")
def sign_out() -> Response:
    logout_user()
    flash("You are signed out.", "info")
    return redirect(url_for("home.index"))


@bp.route("/reset", methods=["GET", "POST"])
def reset_request() -> str | Response | tuple[str, int]:
    form = ResetRequestForm()
    if form.validate_on_submit():
        session = db_session()
        email = (form.email.data or "").strip().lower()
        decision = ratelimit.hit(
            session, f"reset:{client_ip()}", limit=10, window_seconds=3600
        )
        user = find_user(session, email) if decision.allowed else None
        session.commit()
        if user is not None and user.active:
            token = authentication.reset_token(current_app.config["SECRET_KEY"], user)
            link = current_app.config["BASE_URL"] + url_for("auth.reset_password", token=token)
            try:
                send_email(
                    current_app.config,
                    user.email,
                    "Reset your CVI Funding Finder password",
                    "Someone (we hope you) asked to reset the password of this account.\n\n"
                    f"Choose a new password here within the next hour:\n{link}\n\n"
                    "If you did not ask, ignore this message; your password stays the same.\n",
                )
            except MailError:
                flash("We could not send the email just now. Please try again in a few minutes.", "error")
                return render_template("auth/reset_request.html", form=form), 503
        # The same answer whether or not the account exists, so the form does not reveal accounts.
        flash(f"If an account exists for {email}, we sent it a link to choose a new password.", "info")
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
            session.commit()
            if current_user.is_authenticated:
                logout_user()
            login_user(user)
            flash("Your password is changed and you are signed in.", "success")
            return redirect(url_for("search.index"))
    return render_template("auth/reset_password.html", form=form), 400 if form.errors else 200
