from tests.site.helpers import add_catalogue


def test_pages_render(client, session):
    ids = add_catalogue(session)
    assert client.get("/search").status_code == 200
    r = client.get(f"/opportunities/{ids['cvi']}")
    assert r.status_code == 200, r.get_data(as_text=True)
