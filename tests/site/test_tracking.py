"""/tracked: pipeline stages, owner, notes, internal deadline, order, calendar, permissions."""

from __future__ import annotations

import datetime as dt

from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from app.models import PipelineStage, TrackedOpportunity
from app.services import tracking
from tests.site.helpers import post


def track_all(session: Session, user, catalogue: dict[str, int]) -> dict[str, TrackedOpportunity]:
    rows = {
        key: tracking.track(session, user.organization_id, opp_id, user) for key, opp_id in catalogue.items()
    }
    session.commit()
    return rows


def test_pipeline_sorted_by_next_deadline(client: FlaskClient, session: Session, make_user, login, catalogue):
    user = make_user()
    login(user)
    rows = track_all(session, user, catalogue)
    rows["dol"].internal_deadline = dt.date.today() + dt.timedelta(days=3)
    session.commit()
    html = client.get("/tracked").get_data(as_text=True)
    order = [html.index(t) for t in ("Reentry employment", "Community violence intervention", "Heliophysics")]
    assert order == sorted(order)
    assert "(internal)" in html and "All (4)" in html and "Interested (4)" in html


def test_edit_stage_owner_deadline_notes(client: FlaskClient, session: Session, make_user, login, catalogue):
    user = make_user("lead@ovp.example.gov")
    colleague = make_user("colleague@ovp.example.gov", organization=user.organization)
    stranger = make_user("stranger@example.org")
    login(user)
    row = track_all(session, user, catalogue)["cvi"]
    page = client.get(f"/tracked/{row.id}").get_data(as_text=True)
    assert "colleague@ovp.example.gov" in page and "stranger@example.org" not in page
    data = {"stage": "preparing", "owner": str(colleague.id), "internal_deadline": "2030-01-05",
            "notes": "<b>Draft</b> budget narrative"}  # fmt: skip
    assert post(client, f"/tracked/{row.id}", data).status_code == 302
    session.refresh(row)
    assert row.stage == PipelineStage.PREPARING and row.owner_id == colleague.id
    assert row.internal_deadline == dt.date(2030, 1, 5)
    html = client.get("/tracked?stage=preparing").get_data(as_text=True)
    assert "&lt;b&gt;Draft&lt;/b&gt;" in html and "colleague@ovp.example.gov" in html
    bad = post(client, f"/tracked/{row.id}", {**data, "owner": str(stranger.id)})
    assert bad.status_code == 400 and "member of your organization" in bad.get_data(as_text=True)
    bad = post(client, f"/tracked/{row.id}", {**data, "stage": "won"})
    assert bad.status_code == 400
    bad = post(client, f"/tracked/{row.id}", {**data, "internal_deadline": "soon"})
    assert bad.status_code == 400
    assert client.get("/tracked?stage=won").status_code == 400


def test_calendar_month(client: FlaskClient, session: Session, make_user, login, catalogue) -> None:
    user = make_user()
    login(user)
    rows = track_all(session, user, catalogue)
    close = rows["cvi"]
    from app.models import Opportunity

    opp = session.get(Opportunity, close.opportunity_id)
    assert opp is not None and opp.close_date is not None
    html = client.get(f"/tracked/calendar?month={opp.close_date:%Y-%m}").get_data(as_text=True)
    assert "Community violence intervention" in html and "Application deadline" in html
    assert f"Deadlines in {opp.close_date:%B %Y}" in html
    assert client.get("/tracked/calendar?month=2026-13").status_code == 400
    assert client.get("/tracked/calendar?month=junk").status_code == 400


def test_other_organization_cannot_see_tracking(
    client: FlaskClient, session: Session, make_user, login, catalogue
):
    owner = make_user()
    row = track_all(session, owner, catalogue)["cvi"]
    login(make_user())
    assert "Community violence intervention" not in client.get("/tracked").get_data(as_text=True)
    assert client.get(f"/tracked/{row.id}").status_code == 404
    assert post(client, f"/tracked/{row.id}", {"stage": "declined"}, form_page="/search").status_code == 404
    session.refresh(row)
    assert row.stage == PipelineStage.INTERESTED
