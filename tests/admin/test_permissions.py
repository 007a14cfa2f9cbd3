"""Every /admin route: anonymous → sign-in, member → 403, admin → allowed.

The routes come from the app's url_map, so a route added later is checked without editing this file.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, g, url_for
from flask.testing import FlaskClient

from tests.admin.conftest import AdminClient


def admin_routes(app: Flask, objects: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(endpoint, method, url) for every admin rule, with real ids filled in."""
    routes = []
    with app.test_request_context():
        for rule in app.url_map.iter_rules():
            if not rule.endpoint.startswith("admin."):
                continue
            url = url_for(rule.endpoint, **{name: objects[name] for name in rule.arguments})
            for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
                routes.append((rule.endpoint, method, url))
    return routes


def test_the_blueprint_has_the_expected_routes(app: Flask, objects: dict[str, Any]) -> None:
    endpoints = {endpoint for endpoint, _, _ in admin_routes(app, objects)}
    assert len(endpoints) >= 30
    for expected in ("admin.index", "admin.review", "admin.opportunities", "admin.programs", "admin.crawls"):
        assert expected in endpoints


def test_anonymous_users_are_sent_to_sign_in(
    app: Flask, client: FlaskClient, objects: dict[str, Any]
) -> None:
    app.config["WTF_CSRF_ENABLED"] = False  # so POSTs reach the role check, not the CSRF check
    with app.test_request_context():
        sign_in = url_for("auth.sign_in")
    for endpoint, method, url in admin_routes(app, objects):
        response = client.open(url, method=method)
        assert response.status_code == 302, (endpoint, method, response.status_code)
        assert response.headers["Location"].startswith(sign_in + "?next="), (endpoint, method)


def test_members_get_403(app: Flask, client: FlaskClient, login: Any, objects: dict[str, Any]) -> None:
    app.config["WTF_CSRF_ENABLED"] = False
    login(objects["member"])
    for endpoint, method, url in admin_routes(app, objects):
        response = client.open(url, method=method)
        assert response.status_code == 403, (endpoint, method, response.status_code)


def test_admins_get_every_page(app: Flask, admin_client: AdminClient, objects: dict[str, Any]) -> None:
    for endpoint, method, url in admin_routes(app, objects):
        if method == "GET":
            response = admin_client.get(url)
            assert response.status_code == 200, (endpoint, url, response.status_code)
        else:
            response = admin_client.post(url, data={})
            # Empty forms are refused with a clear 400 or carried out; never a 403 or a 500.
            assert response.status_code in (200, 201, 302, 400), (endpoint, url, response.status_code)


def test_admin_nav_link_only_for_admins(
    client: FlaskClient, login: Any, objects: dict[str, Any], admin: Any
) -> None:
    login(objects["member"])
    assert "/admin/" not in client.get("/").get_data(as_text=True)
    g.pop("_login_user", None)  # the test's app context (and Flask-Login's cached user) spans requests
    login(admin)
    assert 'href="/admin/"' in client.get("/").get_data(as_text=True)
