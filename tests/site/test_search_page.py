"""/search: filters with facet counts, sorts, pages, bookmarkable URLs, CSV, direct hits, 400s."""

from __future__ import annotations

import csv
import io

from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from tests.site.helpers import post


def test_default_search_shows_cvi_only_with_facets(client: FlaskClient, catalogue: dict[str, int]) -> None:
    html = client.get("/search").get_data(as_text=True)
    assert "3 opportunities" in html and "Heliophysics" not in html
    assert 'Department of Labor <span class="count">(1)</span>' in html
    assert "Nonprofits with 501(c)(3) status" in html  # applicant type label, not code "12"
    assert "Employment, labor and training" in html
    assert 'name="cvi_only" value="true" checked' in html


def test_filters_and_counts_live_in_the_url(client: FlaskClient, catalogue: dict[str, int]) -> None:
    response = client.get("/search?department=DOL&department=ED&status=posted")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Reentry employment" in html and "community schools" not in html
    assert 'value="DOL" checked' in html and 'value="ED" checked' in html
    # Counts beside the values of other filters reflect the active ones.
    assert 'Open for applications <span class="count">(1)</span>' in html
    off = client.get("/search?cvi_only=false&cvi_only=true").get_data(as_text=True)
    assert "3 opportunities" in off
    everything = client.get("/search?cvi_only=false").get_data(as_text=True)
    assert "4 opportunities" in everything and "Heliophysics" in everything


def test_keyword_search_uses_the_index(client: FlaskClient, catalogue: dict[str, int]) -> None:
    html = client.get("/search?q=reentry+young+adults").get_data(as_text=True)
    assert "Reentry employment" in html and "Heliophysics" not in html
    assert "Matched:" in html


def test_direct_hits_on_number_and_aln(client: FlaskClient, catalogue: dict[str, int]) -> None:
    html = client.get("/search?q=foa-eta-26-01").get_data(as_text=True)
    assert "Direct match on opportunity number" in html and "1 opportunity" in html
    html = client.get("/search?q=NASA-1").get_data(as_text=True)
    assert "Heliophysics" in html
    html = client.get("/search?q=84.215J").get_data(as_text=True)
    assert "community schools" in html and "1 opportunity" in html


def test_sorts_and_pages(client: FlaskClient, app, catalogue: dict[str, int]) -> None:
    app.config["PAGE_SIZE"] = 2
    html = client.get("/search?sort=award_ceiling").get_data(as_text=True)
    assert html.index("Reentry employment") < html.index("Community violence intervention and")
    assert "Page 1 of 2" in html and "sort=award_ceiling" in html and "page=2" in html
    page2 = client.get("/search?sort=award_ceiling&page=2").get_data(as_text=True)
    assert "community schools" in page2


def test_closing_and_award_filters(client: FlaskClient, catalogue: dict[str, int]) -> None:
    html = client.get("/search?closing_within=30").get_data(as_text=True)
    assert "1 opportunity" in html and "Community violence intervention" in html
    html = client.get("/search?award_min=3000000&eligibility=12").get_data(as_text=True)
    assert "1 opportunity" in html and "Reentry employment" in html
    html = client.get("/search?sub_agency=DOL-ETA").get_data(as_text=True)
    assert "Employment and Training Administration" in html and "1 opportunity" in html
    html = client.get("/search?posted_within=30").get_data(as_text=True)
    assert "posted-30" in html


def test_bad_parameters_are_400_with_the_field(client: FlaskClient, catalogue: dict[str, int]) -> None:
    for query, field in (
        ("closing_within=5", "closing_within"),
        ("page=0", "page"),
        ("award_min=lots", "award_min"),
        ("close_from=2026-13-01", "close_from"),
        ("status=pending", "status"),
        ("sort=random", "sort"),
    ):
        response = client.get(f"/search?{query}")
        assert response.status_code == 400, query
        assert field in response.get_data(as_text=True), query
    assert client.get("/search.csv?page=-1").status_code == 400


def test_csv_export_has_the_same_results(client: FlaskClient, catalogue: dict[str, int]) -> None:
    response = client.get("/search.csv?department=DOJ&department=DOL&sort=close_date")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [r["opportunity_number"] for r in rows] == ["O-BJA-2026-1", "FOA-ETA-26-01"]
    assert rows[1]["department"] == "Department of Labor"
    assert rows[1]["eligible_applicants"].startswith("Nonprofits")
    assert rows[0]["page"].endswith(f"/opportunities/{catalogue['cvi']}")
    html = client.get("/search?department=DOL").get_data(as_text=True)
    assert "/search.csv?department=DOL" in html


def test_save_and_delete_a_search(client: FlaskClient, make_user, login, session: Session, catalogue) -> None:
    user = make_user()
    login(user)
    response = post(client, "/searches", {"name": "DOL reentry", "query": "department=DOL&q=reentry&page=3"},
                    form_page="/search?department=DOL&q=reentry")  # fmt: skip
    assert response.status_code == 302
    html = client.get("/searches").get_data(as_text=True)
    assert "DOL reentry" in html and "/search?department=DOL&amp;q=reentry" in html
    from app.models import SavedSearch

    saved = session.query(SavedSearch).one()
    assert saved.query == {"department": ["DOL"], "q": ["reentry"]}
    bad = post(client, "/searches", {"name": "Broken", "query": "closing_within=3"}, form_page="/search")
    assert bad.status_code == 400 and "invalid filters" in bad.get_data(as_text=True)
    nameless = post(client, "/searches", {"name": "", "query": "q=x"}, form_page="/search")
    assert nameless.status_code == 400
    other = make_user()
    login(other)
    assert post(client, f"/searches/{saved.id}/delete", {}, form_page="/searches").status_code == 404
    login(user)
    assert post(client, f"/searches/{saved.id}/delete", {}, form_page="/searches").status_code == 302
    assert session.query(SavedSearch).count() == 0
