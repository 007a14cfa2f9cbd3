"""/profiles: create, edit, delete, matches with explanations and filters, not-a-fit, permissions."""

from __future__ import annotations

from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from app.models import MatchDismissal, ProgramProfile
from tests.site.helpers import post

PROFILE = {
    "name": "Safe Streets Outreach",
    "org_type": "nonprofit",
    "city": "Baltimore",
    "state": "md",
    "program_description": "Credible messengers do street outreach and violence intervention with young "
    "adults at highest risk of community violence.",
    "focus_areas": "street outreach, violence intervention",
    "populations": "young adults 16-24",
    "funding_need": "Outreach worker salaries",
    "budget_range": "$250,000 to $1,000,000",
}


def create(client: FlaskClient, **changes: str):
    return post(client, "/profiles/new", {**PROFILE, **changes})


def test_create_edit_delete(client: FlaskClient, session: Session, make_user, login, catalogue) -> None:
    user = make_user()
    login(user)
    form = client.get("/profiles/new").get_data(as_text=True)
    assert "For example: Safe Streets Outreach" in form and 'for="program_description"' in form
    response = create(client)
    assert response.status_code == 302 and "/matches" in response.headers["Location"]
    profile = session.query(ProgramProfile).one()
    assert profile.organization_id == user.organization_id and profile.state == "MD"
    assert profile.focus_areas == ["street outreach", "violence intervention"]
    assert "Safe Streets Outreach" in client.get("/profiles").get_data(as_text=True)
    edit = client.get(f"/profiles/{profile.id}/edit").get_data(as_text=True)
    assert "street outreach, violence intervention" in edit
    response = post(client, f"/profiles/{profile.id}/edit", {**PROFILE, "name": "Renamed program"})
    assert response.status_code == 302
    session.refresh(profile)
    assert profile.name == "Renamed program"
    response = post(client, f"/profiles/{profile.id}/delete", {}, form_page="/profiles")
    assert response.status_code == 302
    session.expire_all()
    assert session.query(ProgramProfile).count() == 0


def test_validation_messages(client: FlaskClient, session: Session, make_user, login) -> None:
    login(make_user())
    response = create(client, name="", state="Maryland", program_description="short")
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "Name the program." in html and "two-letter state code" in html
    response = create(client, program_description="!!!!!!!!!!!!!!!!!!!!!!!! ???????")
    assert (
        response.status_code == 400
        and "describe the program in at least a few words" in response.get_data(as_text=True)
    )
    assert session.query(ProgramProfile).count() == 0


def test_matches_explain_each_result(
    client: FlaskClient, session: Session, make_user, login, catalogue
) -> None:
    login(make_user())
    create(client)
    profile = session.query(ProgramProfile).one()
    response = client.get(f"/profiles/{profile.id}/matches")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Community violence intervention and prevention initiative" in html
    assert "Why it fits:" in html and "days left" in html
    assert "verdict-eligible" in html  # a nonprofit (code 12) may apply
    assert "Heliophysics" not in html
    filtered = client.get(f"/profiles/{profile.id}/matches?department=DOL").get_data(as_text=True)
    assert "Community violence intervention and prevention initiative" not in filtered
    assert client.get(f"/profiles/{profile.id}/matches?closing_within=3").status_code == 400
    assert client.get(f"/profiles/{profile.id}/matches?status=nope").status_code == 400


def test_not_a_fit_hides_and_can_be_undone(
    client: FlaskClient, session: Session, make_user, login, catalogue
):
    login(make_user())
    create(client)
    profile = session.query(ProgramProfile).one()
    url = f"/profiles/{profile.id}/matches"
    dismiss = f"{url}/{catalogue['cvi']}/dismiss"
    assert post(client, dismiss, {"reason": ""}, form_page=url).status_code == 400
    response = post(client, dismiss, {"reason": "Requires a state applicant", "back": "https://evil.example"},
                    form_page=url)  # fmt: skip
    assert response.status_code == 302 and response.headers["Location"] == url
    assert "Community violence intervention and prevention initiative" not in client.get(url).get_data(
        as_text=True
    )
    listing = client.get(f"/profiles/{profile.id}/dismissed").get_data(as_text=True)
    assert "Requires a state applicant" in listing
    dismissal = session.query(MatchDismissal).one()
    response = post(client, f"/profiles/{profile.id}/dismissed/{dismissal.id}/undo", {},
                    form_page=f"/profiles/{profile.id}/dismissed")  # fmt: skip
    assert response.status_code == 302
    assert "Community violence intervention and prevention initiative" in client.get(url).get_data(
        as_text=True
    )


def test_other_organizations_profiles_are_404(
    client: FlaskClient, session: Session, make_user, login, catalogue
):
    owner = make_user()
    login(owner)
    create(client)
    profile = session.query(ProgramProfile).one()
    login(make_user())
    assert f"/profiles/{profile.id}/matches" not in client.get("/profiles").get_data(as_text=True)
    for url in (
        f"/profiles/{profile.id}/matches",
        f"/profiles/{profile.id}/edit",
        f"/profiles/{profile.id}/dismissed",
    ):
        assert client.get(url).status_code == 404, url
    assert post(client, f"/profiles/{profile.id}/delete", {}, form_page="/profiles").status_code == 404
    assert post(client, f"/profiles/{profile.id}/matches/{catalogue['cvi']}/dismiss", {"reason": "x"},
                form_page="/profiles").status_code == 404  # fmt: skip
    assert session.query(ProgramProfile).count() == 1
