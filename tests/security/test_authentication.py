"""Authentication (ASVS V2): password storage, rules, reset links, enumeration, invitations."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import time_machine
from argon2 import PasswordHasher
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session
from werkzeug.security import generate_password_hash

from app.models import User
from app.services import accounts, authentication, organizations
from app.services.accounts import AccountError
from tests.security.world import PASSWORD
from tests.site.helpers import Mailbox, link_in, post


def test_passwords_are_stored_with_argon2id_at_owasp_strength(make_user: Any) -> None:
    user = make_user()
    assert user.password_hash.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert PASSWORD not in user.password_hash
    assert accounts.verify_password(user, PASSWORD) and not accounts.verify_password(user, PASSWORD + "!")


@pytest.mark.parametrize(
    "old_hash",
    [
        generate_password_hash(PASSWORD),  # Werkzeug's scrypt, used before Argon2
        generate_password_hash(PASSWORD, method="pbkdf2:sha256:600000"),
        PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1).hash(PASSWORD),  # weaker Argon2
    ],
)
def test_older_hashes_are_rehashed_at_sign_in(
    client: FlaskClient, make_user: Any, session: Session, old_hash: str
) -> None:
    user = make_user()
    user.password_hash = old_hash
    session.commit()
    assert accounts.needs_rehash(user)
    response = post(client, "/sign-in", {"email": user.email, "password": PASSWORD})
    assert response.status_code == 302
    session.refresh(user)
    assert user.password_hash.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert not accounts.needs_rehash(user) and accounts.verify_password(user, PASSWORD)


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("short pass", "at least 12 characters"),
        ("x" * 129, "at most 128"),
        ("qwerty123456", "most common"),
        ("1qaz2wsx3edc", "most common"),
        ("aaaaaaaaaaaaaaaa", "most common"),
        ("rules@ovp.example.gov", "your email"),
    ],
)
def test_password_rules(session: Session, password: str, message: str) -> None:
    with pytest.raises(AccountError, match=message):
        accounts.create_user(session, "rules@ovp.example.gov", password)


def test_long_and_unicode_passwords_are_accepted_whole(session: Session) -> None:
    long_password = ("ünïcode ✓ passphrase 😀 " * 6)[:128]  # the longest allowed, nothing cut off
    user = accounts.create_user(session, "long@ovp.example.gov", long_password)
    assert accounts.verify_password(user, long_password)
    assert not accounts.verify_password(user, long_password[:-1])


def test_sign_in_does_not_reveal_whether_an_account_exists(
    client: FlaskClient, make_user: Any, monkeypatch: Any
) -> None:
    user = make_user()
    verified: list[str] = []

    class Counting(PasswordHasher):
        def verify(self, stored: str | bytes, password: str | bytes) -> bool:
            verified.append(str(stored))
            return bool(super().verify(stored, password))

    monkeypatch.setattr(accounts, "HASHER", Counting(time_cost=2, memory_cost=19 * 1024, parallelism=1))
    wrong = post(client, "/sign-in", {"email": user.email, "password": "not the password"})
    unknown = post(client, "/sign-in", {"email": "nobody@ovp.example.gov", "password": "not the password"})
    assert wrong.status_code == unknown.status_code == 401
    text = "That email and password do not match an account."
    assert text in wrong.get_data(as_text=True) and text in unknown.get_data(as_text=True)
    # Both paths ran one Argon2 verification, so they take the same time.
    assert len(verified) == 2 and verified[1] != user.password_hash


def test_reset_link_expires_after_an_hour(
    app: Flask, client: FlaskClient, make_user: Any, mailbox: Mailbox
) -> None:
    user = make_user()
    post(client, "/reset", {"email": user.email})
    link = link_in(mailbox.wait_for(1)[0])
    assert client.get(link).status_code == 200
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=authentication.RESET_MAX_AGE_SECONDS + 60)
    with time_machine.travel(later):
        data = {"password": "a brand new passphrase", "confirm": "a brand new passphrase"}
        response = post(client, link, data, form_page="/reset")
        assert response.status_code == 400 and "expired" in response.get_data(as_text=True)
    assert accounts.verify_password(user, PASSWORD)


def test_reset_link_works_once(
    app: Flask, client: FlaskClient, make_user: Any, mailbox: Mailbox, session: Session
) -> None:
    user = make_user()
    post(client, "/reset", {"email": user.email})
    link = link_in(mailbox.wait_for(1)[0])
    first = post(client, link, {"password": "a brand new passphrase", "confirm": "a brand new passphrase"})
    assert first.status_code == 302
    other = app.test_client()
    second = post(other, link, {"password": "an attacker passphrase", "confirm": "an attacker passphrase"},
                  form_page="/reset")  # fmt: skip
    assert second.status_code == 400 and "already been used" in second.get_data(as_text=True)
    session.refresh(user)
    assert accounts.verify_password(user, "a brand new passphrase")


def test_sign_in_rate_limit_and_lock_out(session: Session, make_user: Any) -> None:
    user = make_user()
    now = dt.datetime.now(dt.UTC)
    outcomes = [authentication.sign_in(session, user.email, "wrong", "10.0.0.1", now=now) for _ in range(6)]
    assert [o.limited for o in outcomes] == [False] * 5 + [True]
    assert "Too many sign-in attempts" in (outcomes[-1].message or "")
    for n in range(authentication.LOCK_AFTER):
        authentication.sign_in(session, user.email, "wrong", f"10.0.1.{n}", now=now)
    locked = authentication.sign_in(session, user.email, PASSWORD, "10.0.2.1", now=now)
    assert locked.user is None and "locked" in (locked.message or "")
    session.commit()


def test_sign_up_is_rate_limited_per_address(app: Flask, session: Session) -> None:
    from app.views.auth import SIGN_UP_LIMIT

    for n in range(SIGN_UP_LIMIT + 1):
        data = {
            "email": f"new{n}@ovp.example.gov",
            "organization": "OVP",
            "org_type": "nonprofit",
            "password": PASSWORD,
            "confirm": PASSWORD,
        }
        response = post(app.test_client(), "/sign-up", data)
    assert response.status_code == 429
    assert session.query(User).count() == SIGN_UP_LIMIT


def test_invitation_links_work_once(
    app: Flask, client: FlaskClient, make_user: Any, login: Any, mailbox: Mailbox, session: Session
) -> None:
    lead = make_user("lead@ovp.example.gov")
    login(lead)
    post(client, "/organization/invite", {"email": "new@ovp.example.gov"}, form_page="/organization")
    link = link_in(mailbox.wait_for(1)[0])
    newcomer = app.test_client()
    assert post(newcomer, link, {"name": "New", "password": "a long enough password"}).status_code == 302
    again = app.test_client().get(link)
    assert again.status_code == 400 and "already been used" in again.get_data(as_text=True)


def test_a_removed_member_cannot_rejoin_with_an_old_link(
    app: Flask, client: FlaskClient, make_user: Any, login: Any, session: Session
) -> None:
    admin = make_user("admin@ovp.example.gov", role="admin")
    member = make_user("member@elsewhere.example.org")
    first = organizations.invite(session, admin.organization, member.email, admin)
    second = organizations.invite(session, admin.organization, member.email, admin)
    session.commit()
    tokens = [organizations.invite_token(app.config["SECRET_KEY"], i) for i in (first, second)]
    login(member)
    assert post(client, f"/invite/{tokens[0]}", {}).status_code == 302
    session.refresh(member)
    assert member.organization_id == admin.organization_id
    login(admin)
    assert (
        post(client, f"/organization/members/{member.id}/remove", {}, form_page="/organization").status_code
        == 302
    )
    login(member)
    for token in tokens:
        response = post(client, f"/invite/{token}", {}, form_page="/search")
        assert response.status_code == 400, token
    session.refresh(member)
    assert member.organization_id is None


def test_withdrawn_and_expired_invitations(
    app: Flask, client: FlaskClient, make_user: Any, login: Any, session: Session
) -> None:
    lead = make_user("lead@ovp.example.gov")
    invitation = organizations.invite(session, lead.organization, "later@ovp.example.gov", lead)
    session.commit()
    token = organizations.invite_token(app.config["SECRET_KEY"], invitation)
    login(lead)
    page = client.get("/organization").get_data(as_text=True)
    assert "later@ovp.example.gov" in page
    response = post(
        client, f"/organization/invitations/{invitation.id}/withdraw", {}, form_page="/organization"
    )
    assert response.status_code == 302
    withdrawn = app.test_client().get(f"/invite/{token}")
    assert withdrawn.status_code == 400 and "withdrawn" in withdrawn.get_data(as_text=True)
    fresh = organizations.invite(session, lead.organization, "later@ovp.example.gov", lead)
    session.commit()
    token = organizations.invite_token(app.config["SECRET_KEY"], fresh)
    with time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(days=8)):
        expired = app.test_client().get(f"/invite/{token}")
    assert expired.status_code == 400 and "expired" in expired.get_data(as_text=True)


def test_names_with_line_breaks_cannot_inject_mail_headers(
    client: FlaskClient, make_user: Any, login: Any, mailbox: Mailbox, session: Session
) -> None:
    lead = make_user("lead@ovp.example.gov")
    lead.name = "Dana\r\nBcc: victim@elsewhere.example.org"
    assert lead.organization is not None
    lead.organization.name = "OVP\nX-Injected: yes"
    session.commit()
    login(lead)
    response = post(
        client, "/organization/invite", {"email": "new@ovp.example.gov"}, form_page="/organization"
    )
    assert response.status_code == 302
    [message] = mailbox.wait_for(1)
    assert message["Bcc"] is None and message["X-Injected"] is None
    subject = " ".join(str(message["Subject"]).split())  # a long subject is folded on the wire
    assert subject.startswith("Dana Bcc: victim@elsewhere.example.org invited you to OVP X-Injected: yes")
