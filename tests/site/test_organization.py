"""Organizations: members list, invitations by signed email link, roles."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from app.models import Role, User
from app.services import organizations
from tests.site.helpers import Mailbox, link_in, post


def test_members_page_lists_only_own_organization(client: FlaskClient, make_user, login) -> None:
    me = make_user("me@ovp.example.gov")
    make_user("stranger@other.example.org")
    login(me)
    html = client.get("/organization").get_data(as_text=True)
    assert "me@ovp.example.gov" in html and "stranger@other.example.org" not in html


def test_invite_new_colleague_creates_account_in_organization(
    client: FlaskClient, make_user, login, mailbox: Mailbox, session: Session, app: Flask
) -> None:
    me = make_user("lead@ovp.example.gov")
    login(me)
    response = post(
        client, "/organization/invite", {"email": "colleague@ovp.example.gov"}, form_page="/organization"
    )
    assert response.status_code == 302
    message = mailbox.wait_for(1)[0]
    assert message["To"] == "colleague@ovp.example.gov" and "invited you" in message["Subject"]
    link = link_in(message)
    other = app.test_client()
    page = other.get(link)
    assert page.status_code == 200 and "colleague@ovp.example.gov" in page.get_data(as_text=True)
    response = post(other, link, {"name": "Colleague", "password": "a long enough password"})
    assert response.status_code == 302, response.get_data(as_text=True)
    colleague = session.query(User).filter_by(email="colleague@ovp.example.gov").one()
    assert colleague.organization_id == me.organization_id and colleague.role == Role.MEMBER


def test_existing_user_joins_after_signing_in(
    client: FlaskClient, make_user, login, session: Session, app: Flask
) -> None:
    lead = make_user("lead@ovp.example.gov")
    existing = make_user("moving@nonprofit.example.org")
    token = _invite(app, session, lead, existing.email)
    page = client.get(f"/invite/{token}").get_data(as_text=True)
    assert "Sign in" in page
    response = post(client, f"/invite/{token}", {}, form_page="/sign-in")
    assert response.status_code == 400  # not signed in as the invited person
    login(existing)
    response = post(client, f"/invite/{token}", {})
    assert response.status_code == 302
    session.refresh(existing)
    assert existing.organization_id == lead.organization_id


def test_invite_for_someone_else_is_refused(
    client: FlaskClient, make_user, login, app: Flask, session: Session
) -> None:
    lead = make_user("lead@ovp.example.gov")
    other = make_user("other@ovp.example.gov")
    token = _invite(app, session, lead, "third@example.org")
    login(other)
    response = post(client, f"/invite/{token}", {})
    assert response.status_code == 400 and "Sign out" in response.get_data(as_text=True)


def test_bad_or_expired_invite(client: FlaskClient, make_user, session: Session, app: Flask) -> None:
    response = client.get("/invite/garbage")
    assert response.status_code == 400 and "not valid" in response.get_data(as_text=True)
    lead = make_user()
    token = _invite(app, session, lead, "x@example.org")
    import datetime as dt

    import pytest

    from app.services.accounts import AccountError

    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=organizations.INVITE_MAX_AGE_SECONDS + 1)
    with pytest.raises(AccountError, match="expired"):
        organizations.read_invite(session, app.config["SECRET_KEY"], token, now=later)


def _invite(app: Flask, session: Session, by: User, email: str) -> str:
    assert by.organization is not None
    invitation = organizations.invite(session, by.organization, email, by)
    session.commit()
    return organizations.invite_token(app.config["SECRET_KEY"], invitation)


def test_invite_form_validation(client: FlaskClient, make_user, login) -> None:
    login(make_user())
    response = post(client, "/organization/invite", {"email": "nope"}, form_page="/organization")
    assert response.status_code == 400 and "Enter an email address." in response.get_data(as_text=True)


def test_only_admins_change_roles(client: FlaskClient, make_user, login, session: Session) -> None:
    admin = make_user("admin@ovp.example.gov", role="admin")
    member = make_user("member@ovp.example.gov", organization=admin.organization)
    login(member)
    response = post(client, f"/organization/members/{admin.id}/role", {f"u{admin.id}-role": "member"},
                    form_page="/organization")  # fmt: skip
    assert response.status_code == 403
    login(admin)
    page = client.get("/organization").get_data(as_text=True)
    assert f"Role of {member.email}" in page
    response = post(client, f"/organization/members/{member.id}/role", {f"u{member.id}-role": "admin"},
                    form_page="/organization")  # fmt: skip
    assert response.status_code == 302
    session.refresh(member)
    assert member.role == Role.ADMIN
    stranger = make_user("stranger@example.org")
    response = post(client, f"/organization/members/{stranger.id}/role", {f"u{stranger.id}-role": "admin"},
                    form_page="/organization")  # fmt: skip
    assert response.status_code == 404  # another organization's people do not exist for you
    response = post(client, f"/organization/members/{member.id}/remove", {}, form_page="/organization")
    assert response.status_code == 302
    session.refresh(member)
    assert member.organization_id is None


def test_account_without_organization_gets_clear_403(client: FlaskClient, make_user, login) -> None:
    login(make_user(organization=None))
    response = client.get("/profiles")
    assert response.status_code == 403 and "not in an organization" in response.get_data(as_text=True)


def test_pages_need_sign_in(client: FlaskClient) -> None:
    for url in ("/organization", "/profiles", "/tracked", "/tracked/calendar", "/searches", "/profiles/new"):
        response = client.get(url)
        assert response.status_code == 302 and "/sign-in" in response.headers["Location"], url
