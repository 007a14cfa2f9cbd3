"""/opportunities/<id>: plain words, sanitized HTML, deadlines, history, merges, hidden, .ics, tracking."""

from __future__ import annotations

import datetime as dt

from flask.testing import FlaskClient
from icalendar import Calendar
from sqlalchemy.orm import Session

from app.models import Opportunity, TrackedOpportunity
from app.services.opportunities import upsert_many
from tests.factories import record
from tests.site.helpers import post


def test_fields_in_plain_words_and_sanitized_html(client: FlaskClient, catalogue: dict[str, int]) -> None:
    response = client.get(f"/opportunities/{catalogue['cvi']}")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Department of Justice" in html and "Bureau of Justice Assistance" in html
    assert (
        "These may apply: county governments, city or township governments and nonprofits with 501(c)(3)"
        in html
    )
    assert "$2,000,000" in html and "$250,000" in html and "Grant" in html
    assert "Street <b>outreach</b>" in html
    assert "<script>alert(1)" not in html and "javascript:" not in html and "onerror" not in html
    assert "closes in 20 days" in html
    assert "grants.gov/search-grants?keywords=O-BJA-2026-1" in html
    assert f"/opportunities/{catalogue['cvi']}.ics" in html
    assert "Sign in to track" in html


def test_user_text_is_escaped(client: FlaskClient, session: Session) -> None:
    upsert_many(
        session, [record(id="x", title="<script>alert('t')</script> Grants", description="<b>bold</b>")]
    )
    session.commit()
    opp = session.query(Opportunity).one()
    html = client.get(f"/opportunities/{opp.id}").get_data(as_text=True)
    assert "<script>alert('t')" not in html and "&lt;script&gt;" in html and "&lt;b&gt;bold" in html


def test_two_doj_deadlines_and_calendar_file(client: FlaskClient, session: Session, catalogue) -> None:
    opp = session.get(Opportunity, catalogue["cvi"])
    assert opp is not None
    opp.second_close_date = opp.close_date + dt.timedelta(days=14)  # type: ignore[operator]
    opp.second_close_date_label = "JustGrants deadline"
    session.commit()
    html = client.get(f"/opportunities/{opp.id}").get_data(as_text=True)
    assert "Grants.gov deadline" in html and "JustGrants deadline" in html and "closes in 34 days" in html
    response = client.get(f"/opportunities/{opp.id}.ics")
    assert response.status_code == 200 and response.mimetype == "text/calendar"
    calendar = Calendar.from_ical(response.data)
    events = [c for c in calendar.walk("VEVENT")]
    assert [e.decoded("dtstart") for e in events] == [opp.close_date, opp.second_close_date]
    assert "JustGrants deadline" in str(events[1]["summary"])
    assert str(events[0]["url"]).endswith(f"/opportunities/{opp.id}")


def test_forecast_without_deadline(client: FlaskClient, catalogue) -> None:
    html = client.get(f"/opportunities/{catalogue['ed']}").get_data(as_text=True)
    assert "This is a forecast" in html and "Add deadline to calendar" not in html
    assert "Forecasted" in html


def test_change_history_reads_old_to_new(client: FlaskClient, session: Session, catalogue) -> None:
    changed = record(
        id="cvi",
        number="O-BJA-2026-1",
        close_date="2030-01-31",
        award_ceiling=3_000_000,
        title="Community violence intervention and prevention initiative",
    )
    upsert_many(session, [changed])
    session.commit()
    html = client.get(f"/opportunities/{catalogue['cvi']}").get_data(as_text=True)
    assert "Close date:" in html and "→ January 31, 2030" in html
    assert "Largest award: $2,000,000 → $3,000,000" in html


def test_cvi_reasons_and_reviewer(client: FlaskClient, session: Session, make_user, catalogue) -> None:
    admin = make_user("reviewer@example.org", role="admin")
    admin.name = "Rita Reviewer"
    opp = session.get(Opportunity, catalogue["dol"])
    assert opp is not None
    opp.cvi_reasons = ["Funds reentry services for people at risk of violence"]
    opp.cvi_override = True
    opp.reviewed_by_id = admin.id
    opp.reviewed_at = dt.datetime(2026, 11, 2, tzinfo=dt.UTC)
    session.commit()
    html = client.get(f"/opportunities/{opp.id}").get_data(as_text=True)
    assert "Funds reentry services" in html and "Reviewed by Rita Reviewer on November 2, 2026" in html


def test_merged_redirects_and_hidden_is_404(
    client: FlaskClient, session: Session, make_user, login, catalogue
):
    old = session.get(Opportunity, catalogue["ed"])
    assert old is not None
    old.merged_into_id = catalogue["cvi"]
    hidden = session.get(Opportunity, catalogue["dol"])
    assert hidden is not None
    hidden.hidden = True
    session.commit()
    response = client.get(f"/opportunities/{catalogue['ed']}")
    assert response.status_code == 301 and response.headers["Location"].endswith(
        f"/opportunities/{catalogue['cvi']}"
    )
    assert client.get(f"/opportunities/{catalogue['dol']}").status_code == 404
    login(make_user())
    assert client.get(f"/opportunities/{catalogue['dol']}").status_code == 404
    login(make_user(role="admin"))
    html = client.get(f"/opportunities/{catalogue['dol']}").get_data(as_text=True)
    assert "Hidden from grant writers" in html
    assert client.get("/opportunities/999999").status_code == 404
    assert client.get("/opportunities/999999.ics").status_code == 404


def test_track_and_untrack(client: FlaskClient, session: Session, make_user, login, catalogue) -> None:
    user = make_user()
    login(user)
    url = f"/opportunities/{catalogue['cvi']}"
    assert "Track this opportunity" in client.get(url).get_data(as_text=True)
    assert post(client, f"{url}/track", {}, form_page=url).status_code == 302
    assert post(client, f"{url}/track", {}, form_page=url).status_code == 302  # idempotent
    rows = session.query(TrackedOpportunity).all()
    assert len(rows) == 1 and rows[0].organization_id == user.organization_id and rows[0].owner_id == user.id
    assert "Stop tracking" in client.get(url).get_data(as_text=True)
    assert client.post(f"{url}/track").status_code == 400  # no CSRF token
    assert post(client, f"{url}/untrack", {}, form_page=url).status_code == 302
    session.expire_all()
    assert session.query(TrackedOpportunity).count() == 0
