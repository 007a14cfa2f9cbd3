"""The first page lists the catalogue, newest first, paged."""

from __future__ import annotations

import datetime as dt

from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from app.services.opportunities import upsert_many
from tests.factories import record


def test_home_lists_newest_first_and_pages(client: FlaskClient, session: Session, app: object) -> None:
    records = [
        record(
            id=f"o{i}", number=f"N-{i}", title=f"Opportunity number {i:02d}", post_date=f"2026-10-{i + 1:02d}"
        )
        for i in range(30)
    ]
    upsert_many(session, records, now=dt.datetime(2026, 11, 1, tzinfo=dt.UTC))
    session.commit()
    first = client.get("/")
    assert first.status_code == 200
    html = first.get_data(as_text=True)
    assert "30 opportunities in the catalogue" in html
    assert html.index("Opportunity number 29") < html.index("Opportunity number 28")
    assert "Opportunity number 04" not in html
    assert "Page 1 of 2" in html
    second = client.get("/?page=2").get_data(as_text=True)
    assert "Opportunity number 04" in second and "Opportunity number 29" not in second
    # A page past the end shows the last page rather than an error.
    assert "Page 2 of 2" in client.get("/?page=99").get_data(as_text=True)


def test_home_escapes_titles(client: FlaskClient, session: Session) -> None:
    upsert_many(session, [record(title="<script>alert(1)</script> Youth jobs")])
    session.commit()
    html = client.get("/").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Youth jobs" in html


def test_empty_catalogue_says_how_to_load_it(client: FlaskClient) -> None:
    assert "flask --app wsgi seed" in client.get("/").get_data(as_text=True)
