"""Alert preferences, the signed unsubscribe link, and the private calendar feed."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response as BaseResponse
from wtforms import SelectChoice, SelectField, StringField
from wtforms.validators import DataRequired, Length

from app.db import db_session, utcnow
from app.extensions import csrf
from app.models import Frequency, User
from app.security import member_required
from app.services import alert_tokens, calendar_feed, subscriptions
from app.services.subscriptions import SubscriptionError

bp = Blueprint("alerts", __name__)
log = logging.getLogger(__name__)

FREQUENCIES = [SelectChoice(Frequency.DAILY.value, "Daily"), SelectChoice(Frequency.WEEKLY.value, "Weekly")]


class SubscriptionForm(FlaskForm):  # type: ignore[misc]
    """How often, and (for tracked opportunities) how many days ahead to remind."""

    frequency = SelectField("How often", choices=FREQUENCIES, default=Frequency.WEEKLY.value)
    reminder_days = StringField(
        "Remind me this many days before a close date",
        default="30, 14, 7, 2",
        validators=[Length(max=100)],
    )


class SubscribeForm(SubscriptionForm):
    target = SelectField("Alert me about", choices=[], validators=[DataRequired()])


class ActionForm(FlaskForm):  # type: ignore[misc]
    """A button that changes something: only the CSRF token."""


def _user() -> User:
    return current_user._get_current_object()  # type: ignore[no-any-return]


def _calendar_url(user: User) -> str:
    session = db_session()
    version = subscriptions.calendar_version(session, user.id)
    session.commit()
    token = alert_tokens.calendar_token(current_app.config["SECRET_KEY"], user.id, version)
    return str(current_app.config["BASE_URL"]) + url_for("alerts.calendar", token=token)


def _preferences_page(subscribe_form: SubscribeForm | None = None, status: int = 200) -> tuple[str, int]:
    session = db_session()
    user = _user()
    targets = subscriptions.available_targets(session, user)
    form = subscribe_form or SubscribeForm()
    form.target.choices = [SelectChoice(t.key, t.label) for t in targets]
    rows = subscriptions.subscriptions_of(session, user)
    edit_forms = {}
    for row in rows:
        edit = SubscriptionForm(prefix=f"s{row.subscription.id}", formdata=None)
        edit.frequency.data = row.subscription.frequency
        edit.reminder_days.data = ", ".join(str(d) for d in row.subscription.reminder_days or [])
        edit_forms[row.subscription.id] = edit
    html = render_template(
        "alerts/preferences.html",
        rows=rows,
        form=form,
        edit_forms=edit_forms,
        action_form=ActionForm(),
        has_targets=bool(targets),
        calendar_url=_calendar_url(user),
    )
    return html, status


@bp.get("/alerts/preferences")
@member_required
def preferences() -> tuple[str, int]:
    return _preferences_page()


@bp.post("/alerts/subscriptions")
@member_required
def subscribe() -> Any:
    session = db_session()
    user = _user()
    form = SubscribeForm()
    form.target.choices = [
        SelectChoice(t.key, t.label) for t in subscriptions.available_targets(session, user)
    ]
    if not form.validate_on_submit():
        flash("Please correct the alert below.", "error")
        return _preferences_page(form, 400)
    try:
        days = subscriptions.parse_reminder_days(form.reminder_days.data)
        subscriptions.subscribe(session, user, form.target.data, form.frequency.data, days)
    except SubscriptionError as exc:
        session.rollback()
        form.reminder_days.errors = [str(exc)]
        flash(str(exc), "error")
        return _preferences_page(form, 400)
    session.commit()
    flash("Alert saved.", "success")
    return redirect(url_for("alerts.preferences"))


@bp.post("/alerts/subscriptions/<int:subscription_id>")
@member_required
def change(subscription_id: int) -> Any:
    session = db_session()
    form = SubscriptionForm(prefix=f"s{subscription_id}")
    if not form.validate_on_submit():
        flash("That change could not be saved: " + "; ".join(_errors(form)), "error")
        return _preferences_page(status=400)
    try:
        days = subscriptions.parse_reminder_days(form.reminder_days.data)
        subscriptions.change(session, _user(), subscription_id, form.frequency.data, days)
    except SubscriptionError as exc:
        session.rollback()
        if "does not exist" in str(exc):
            abort(404)
        flash(str(exc), "error")
        return _preferences_page(status=400)
    session.commit()
    flash("Alert updated.", "success")
    return redirect(url_for("alerts.preferences"))


def _errors(form: FlaskForm) -> list[str]:
    return [f"{getattr(form, name).label.text}: {msg}" for name, msgs in form.errors.items() for msg in msgs]


def _toggle(subscription_id: int, on: bool) -> BaseResponse:
    form = ActionForm()
    if not form.validate_on_submit():
        abort(400, "The form expired; reload the page and try again.")
    session = db_session()
    try:
        if on:
            subscriptions.resubscribe(session, _user(), subscription_id)
        else:
            subscriptions.unsubscribe(session, _user(), subscription_id)
    except SubscriptionError:
        abort(404)
    session.commit()
    flash("Alert turned back on." if on else "Alert turned off.", "success")
    return redirect(url_for("alerts.preferences"))


@bp.post("/alerts/subscriptions/<int:subscription_id>/unsubscribe")
@member_required
def unsubscribe_one(subscription_id: int) -> BaseResponse:
    return _toggle(subscription_id, on=False)


@bp.post("/alerts/subscriptions/<int:subscription_id>/resubscribe")
@member_required
def resubscribe_one(subscription_id: int) -> BaseResponse:
    return _toggle(subscription_id, on=True)


@bp.post("/alerts/calendar/regenerate")
@member_required
def regenerate_calendar() -> BaseResponse:
    if not ActionForm().validate_on_submit():
        abort(400, "The form expired; reload the page and try again.")
    session = db_session()
    subscriptions.regenerate_calendar(session, _user().id)
    session.commit()
    flash("New calendar address made. The old one no longer works: update your calendar app.", "success")
    return redirect(url_for("alerts.preferences"))


@bp.route("/alerts/unsubscribe/<token>", methods=["GET", "POST"])
@csrf.exempt  # Mail clients POST here (RFC 8058 one-click) with no CSRF token; the signed token guards it.
def unsubscribe(token: str) -> tuple[str, int]:
    """GET: a confirmation page with a button. POST: unsubscribe from every alert email, no sign-in."""
    try:
        user_id = alert_tokens.read_unsubscribe_token(current_app.config["SECRET_KEY"], token)
    except alert_tokens.TokenError as exc:
        return render_template("alerts/unsubscribe.html", error=str(exc), done=False, email=None), 400
    session = db_session()
    user = session.get(User, user_id)
    if user is None:
        return render_template(
            "alerts/unsubscribe.html", error="This account no longer exists.", done=False, email=None
        ), 404
    if request.method == "GET":
        return render_template("alerts/unsubscribe.html", error=None, done=False, email=user.email), 200
    count = subscriptions.unsubscribe_all(session, user.id, utcnow())
    session.commit()
    log.info("unsubscribed from alert emails", extra={"user_id": user.id, "subscriptions": count})
    return render_template("alerts/unsubscribe.html", error=None, done=True, email=user.email), 200


@bp.get("/calendar/<token>.ics")
def calendar(token: str) -> Response:
    """The private feed; an altered or revoked token is simply not found."""
    try:
        user_id, version = alert_tokens.read_calendar_token(current_app.config["SECRET_KEY"], token)
    except alert_tokens.TokenError:
        abort(404)
    session = db_session()
    user = session.get(User, user_id)
    if user is None or not user.active or subscriptions.calendar_version(session, user_id) != version:
        abort(404)
    body = calendar_feed.build_feed(
        session,
        user,
        base_url=current_app.config["BASE_URL"],
        reminder_days=subscriptions.reminder_days_for(session, user_id),
    )
    session.commit()
    response = Response(body, mimetype="text/calendar")
    response.headers["Content-Type"] = "text/calendar; charset=utf-8"
    response.headers["Content-Disposition"] = 'inline; filename="cvi-deadlines.ics"'
    response.headers["Cache-Control"] = "private, max-age=900"
    response.headers["X-Robots-Tag"] = "noindex"
    return response
