"""Session cookies (ASVS V3): flags, a new session at sign-in, sign-out and resets that end sessions."""

from __future__ import annotations

import datetime as dt
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import time_machine
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app import create_app
from app.config import load_config
from app.models import UserSession
from app.services import authentication
from tests.security.world import PASSWORD
from tests.site.helpers import Mailbox, csrf_token, post


def set_cookie(response: Any, name: str) -> SimpleCookie:
    for header in response.headers.getlist("Set-Cookie"):
        jar: SimpleCookie = SimpleCookie()
        jar.load(header)
        if name in jar:
            return jar
    raise AssertionError(f"no {name} cookie set")


def sign_in(client: FlaskClient, email: str, password: str = PASSWORD) -> Any:
    return post(client, "/sign-in", {"email": email, "password": password})


def test_session_cookie_flags_on_plain_http(app: Flask, client: FlaskClient, make_user: Any) -> None:
    user = make_user()
    response = sign_in(client, user.email)
    assert response.status_code == 302
    morsel = set_cookie(response, "session")["session"]
    assert morsel["httponly"] and morsel["samesite"] == "Lax" and morsel["path"] == "/"
    assert not morsel["secure"]  # BASE_URL is http in tests: a Secure cookie would never come back


def test_https_base_url_makes_cookies_secure_and_host_prefixed(
    monkeypatch: Any, migrated_url: str, tmp_path: Path, make_user: Any
) -> None:
    monkeypatch.setenv("BASE_URL", "https://funding.example.gov")
    monkeypatch.delenv("SESSION_COOKIE_SECURE", raising=False)
    config = load_config(tmp_path)
    assert config["SESSION_COOKIE_SECURE"] and config["REMEMBER_COOKIE_SECURE"]
    assert config["SESSION_COOKIE_NAME"] == "__Host-session"
    assert config["REMEMBER_COOKIE_HTTPONLY"] and config["REMEMBER_COOKIE_SAMESITE"] == "Lax"
    assert config["SECURITY_CONTACT"] == "security@funding.example.gov"
    overrides = {"TESTING": True, "DATABASE_URL": migrated_url, "INDEX_DIR": str(tmp_path / "i")}
    app = create_app({**overrides, "SECRET_KEY": "test-secret-key"})
    client = app.test_client()
    user = make_user()
    page = "https://funding.example.gov/sign-in"
    data = {"csrf_token": csrf_token(client, page), "email": user.email, "password": PASSWORD}
    response = client.post(page, data=data, headers={"Referer": page})
    assert response.status_code == 302
    morsel = set_cookie(response, "__Host-session")["__Host-session"]
    assert morsel["secure"] and morsel["httponly"] and morsel["samesite"] == "Lax" and morsel["path"] == "/"
    assert not morsel["domain"]  # __Host- cookies carry no Domain
    app.extensions["database"].engine.dispose()


def test_sign_in_starts_a_new_session(
    app: Flask, client: FlaskClient, make_user: Any, session: Session
) -> None:
    user = make_user()
    client.get("/sign-in")
    before = client.get_cookie("session")
    assert before is not None
    sign_in(client, user.email)
    after = client.get_cookie("session")
    assert after is not None and after.value != before.value
    # The cookie from before sign-in is still anonymous.
    stale = app.test_client()
    stale.set_cookie("session", before.value)
    assert stale.get("/profiles").status_code == 302
    # A second sign-in is another session, with another token.
    other = app.test_client()
    sign_in(other, user.email)
    tokens = session.scalars(select(UserSession.token_hash).where(UserSession.user_id == user.id)).all()
    assert len(set(tokens)) == 2


def test_sign_out_ends_the_session_even_for_a_copied_cookie(
    app: Flask, client: FlaskClient, make_user: Any
) -> None:
    user = make_user()
    sign_in(client, user.email)
    copied = client.get_cookie("session")
    assert copied is not None and client.get("/profiles").status_code == 200
    assert post(client, "/sign-out", form_page="/search").status_code == 302
    thief = app.test_client()
    thief.set_cookie("session", copied.value)
    response = thief.get("/profiles")
    assert response.status_code == 302 and "/sign-in" in response.headers["Location"]


def test_password_reset_signs_out_every_other_session(
    app: Flask, client: FlaskClient, make_user: Any, mailbox: Mailbox
) -> None:
    user = make_user()
    elsewhere = app.test_client()
    sign_in(elsewhere, user.email)
    assert elsewhere.get("/profiles").status_code == 200
    token = authentication.reset_token(app.config["SECRET_KEY"], user)
    response = post(
        client, f"/reset/{token}", {"password": "a brand new passphrase", "confirm": "a brand new passphrase"}
    )
    assert response.status_code == 302 and client.get("/profiles").status_code == 200
    assert elsewhere.get("/profiles").status_code == 302
    notice = mailbox.wait_for(1)[0]
    assert notice["To"] == user.email and "password was changed" in notice["Subject"]


def test_sessions_expire(app: Flask, client: FlaskClient, make_user: Any) -> None:
    user = make_user()
    sign_in(client, user.email)
    assert client.get("/profiles").status_code == 200
    hours = app.config["SESSION_MAX_AGE_HOURS"]
    with time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(hours=hours, minutes=1)):
        assert client.get("/profiles").status_code == 302


def test_deactivated_users_lose_their_sessions(client: FlaskClient, make_user: Any, session: Session) -> None:
    user = make_user()
    sign_in(client, user.email)
    user.active = False
    session.commit()
    assert client.get("/profiles").status_code == 302
