"""Accounts: sign up, sign in (rate limited, lock-out), sign out, reset by email, CSRF."""

from __future__ import annotations

import datetime as dt

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from app.models import Organization, User
from app.services import authentication
from app.services.accounts import verify_password
from tests.site.helpers import Mailbox, csrf_token, link_in, post

PASSWORD = "correct horse battery"


def sign_up(client: FlaskClient, email: str = "writer@ovp.example.gov", **extra: str):
    data = {
        "name": "Dana Writer",
        "email": email,
        "organization": "Office of Violence Prevention",
        "org_type": "city government",
        "password": PASSWORD,
        "confirm": PASSWORD,
        **extra,
    }
    return post(client, "/sign-up", data)


def test_sign_up_creates_user_and_organization_and_signs_in(client: FlaskClient, session: Session) -> None:
    response = sign_up(client)
    assert response.status_code == 302 and response.headers["Location"].endswith("/profiles/new")
    user = session.query(User).one()
    assert user.email == "writer@ovp.example.gov" and user.password_hash != PASSWORD
    assert verify_password(user, PASSWORD)
    org = session.get(Organization, user.organization_id)
    assert (
        org is not None and org.name == "Office of Violence Prevention" and org.org_type == "city government"
    )
    assert client.get("/profiles").status_code == 200


def test_sign_up_validation_messages(client: FlaskClient, session: Session) -> None:
    response = sign_up(client, email="not-an-email", confirm="different password")
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "Enter an email address." in html and "The passwords differ." in html
    assert 'aria-invalid="true"' in html
    short = post(
        client, "/sign-up", {"email": "a@b.org", "organization": "X", "password": "short", "confirm": "short"}
    )
    assert short.status_code == 400 and "at least 12 characters" in short.get_data(as_text=True)
    assert session.query(User).count() == 0


def test_duplicate_email_is_refused(client: FlaskClient, make_user) -> None:
    make_user("writer@ovp.example.gov")
    response = sign_up(client, email="Writer@OVP.example.gov")
    assert response.status_code == 400 and "already exists" in response.get_data(as_text=True)


def test_csrf_token_is_required(client: FlaskClient, make_user, session: Session) -> None:
    response = client.post("/sign-up", data={"email": "a@b.org", "organization": "X", "password": PASSWORD,
                                             "confirm": PASSWORD})  # fmt: skip
    assert response.status_code == 400
    assert "CSRF" in response.get_data(as_text=True) or "expired" in response.get_data(as_text=True)
    assert session.query(User).count() == 0
    user = make_user()
    response = client.post("/sign-in", data={"email": user.email, "password": PASSWORD})
    assert response.status_code == 400
    response = client.post(
        "/sign-in", data={"email": user.email, "password": PASSWORD, "csrf_token": "forged"}
    )
    assert response.status_code == 400


def test_sign_in_and_out(client: FlaskClient, make_user) -> None:
    user = make_user("grants@county.example.gov")
    response = post(client, "/sign-in", {"email": "GRANTS@county.example.gov", "password": PASSWORD,
                                         "next": "/tracked"})  # fmt: skip
    assert response.status_code == 302 and response.headers["Location"] == "/tracked"
    assert "grants@county.example.gov" in client.get("/search").get_data(as_text=True)
    token = csrf_token(client, "/search")
    assert client.post("/sign-out", data={"csrf_token": token}).status_code == 302
    assert client.get("/tracked").status_code == 302
    assert user.id


def test_sign_in_never_redirects_off_site(client: FlaskClient, make_user) -> None:
    user = make_user()
    response = post(
        client, "/sign-in", {"email": user.email, "password": PASSWORD, "next": "https://evil.example"}
    )
    assert response.headers["Location"] == "/search"


def test_wrong_password_then_rate_limit(client: FlaskClient, make_user) -> None:
    user = make_user()
    for _ in range(authentication.SIGN_IN_LIMIT):
        response = post(client, "/sign-in", {"email": user.email, "password": "wrong password!"})
        assert response.status_code == 401
        assert "do not match" in response.get_data(as_text=True)
    response = post(client, "/sign-in", {"email": user.email, "password": PASSWORD})
    assert response.status_code == 429
    assert "Too many sign-in attempts" in response.get_data(as_text=True)


def test_account_locks_after_repeated_failures(session: Session, make_user) -> None:
    user = make_user()
    start = dt.datetime(2026, 11, 21, 9, 0, tzinfo=dt.UTC)
    for attempt in range(authentication.LOCK_AFTER):
        # A new IP each time, so only the per-account lock applies.
        outcome = authentication.sign_in(session, user.email, "wrong", f"10.0.0.{attempt}", now=start)
        assert outcome.user is None
    session.commit()
    locked = authentication.sign_in(session, user.email, PASSWORD, "10.1.1.1", now=start)
    assert locked.user is None and locked.limited and "locked" in (locked.message or "")
    later = authentication.sign_in(
        session, user.email, PASSWORD, "10.1.1.2", now=start + dt.timedelta(minutes=16)
    )
    assert later.user is not None


def test_reset_password_by_email(client: FlaskClient, make_user, mailbox: Mailbox, session: Session) -> None:
    user = make_user("reset@ovp.example.gov")
    response = post(client, "/reset", {"email": "reset@ovp.example.gov"})
    assert response.status_code == 302
    message = mailbox.wait_for(1)[0]
    assert message["To"] == "reset@ovp.example.gov" and "Reset" in message["Subject"]
    link = link_in(message)
    response = post(client, link, {"password": "a brand new passphrase", "confirm": "a brand new passphrase"})
    assert response.status_code == 302
    session.refresh(user)
    assert verify_password(user, "a brand new passphrase")
    # The link works once.
    again = client.get(link)
    assert again.status_code == 400 and "already been used" in again.get_data(as_text=True)


def test_reset_for_unknown_email_says_the_same_and_sends_nothing(
    client: FlaskClient, mailbox: Mailbox
) -> None:
    response = post(client, "/reset", {"email": "nobody@example.org"})
    assert response.status_code == 302
    follow = client.get("/sign-in").get_data(as_text=True)
    assert "If an account exists for nobody@example.org" in follow
    assert mailbox.messages == []


def test_expired_and_forged_reset_links(app: Flask, client: FlaskClient, make_user, session: Session) -> None:
    user = make_user()
    token = authentication.reset_token(app.config["SECRET_KEY"], user)
    import pytest

    from app.services.accounts import AccountError

    with pytest.raises(AccountError, match="expired"):
        authentication.user_for_reset(session, app.config["SECRET_KEY"], token, max_age=-1)
    response = client.get("/reset/not-a-token")
    assert response.status_code == 400 and "not valid" in response.get_data(as_text=True)


def test_reset_answers_the_same_when_the_mail_server_fails(
    app: Flask, client: FlaskClient, make_user
) -> None:
    """A mail failure for a real account must not answer differently from an unknown email."""
    from tests.site.helpers import free_port

    make_user("x@example.org")
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=free_port(), SMTP_TIMEOUT=2)
    known = post(client, "/reset", {"email": "x@example.org"})
    known_page = client.get("/sign-in").get_data(as_text=True)
    unknown = post(client, "/reset", {"email": "y@example.org"})
    unknown_page = client.get("/sign-in").get_data(as_text=True)
    assert known.status_code == unknown.status_code == 302
    assert "If an account exists for x@example.org" in known_page
    assert "If an account exists for y@example.org" in unknown_page
