"""Security headers on every kind of response: site pages, errors, static files, the API and its widget."""

from __future__ import annotations

import re
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from tests.site.helpers import add_catalogue

SITE_URLS = (
    "/",
    "/search",
    "/sign-in",
    "/sign-up",
    "/reset",
    "/no-such-page",
    "/static/site.css",
    "/healthz",
)
API_URLS = ("/api/v1/", "/api/v1/opportunities", "/api/v1/docs", "/api/v1/widget-demo", "/api/v1/widget.js",
            "/api/v1/openapi.json", "/api/v1/nope")  # fmt: skip


def directives(policy: str) -> dict[str, str]:
    return {
        part.split(" ", 1)[0]: part.split(" ", 1)[1] if " " in part else "" for part in policy.split("; ")
    }


def test_every_response_carries_the_headers(client: FlaskClient, session: Any) -> None:
    add_catalogue(session)
    for url in SITE_URLS + API_URLS:
        response = client.get(url)
        assert response.status_code < 500, url
        headers = response.headers
        assert headers["X-Content-Type-Options"] == "nosniff", url
        assert headers["Referrer-Policy"] == "strict-origin-when-cross-origin", url
        assert headers["X-Frame-Options"] == "DENY", url
        policy = directives(headers["Content-Security-Policy"])
        assert policy["frame-ancestors"] == "'none'", url
        assert policy["default-src"] == "'self'" and policy["object-src"] == "'none'", url
        assert "'unsafe-inline'" not in headers["Content-Security-Policy"], url
        assert "'unsafe-eval'" not in headers["Content-Security-Policy"], url
        assert "Strict-Transport-Security" not in headers, url  # plain http
        if response.mimetype.startswith("text/"):
            assert response.mimetype_params.get("charset") == "utf-8", url


def test_security_txt_names_the_configured_contact(app: Flask, client: FlaskClient) -> None:
    app.config["SECURITY_CONTACT"] = "security@funding.example.gov"
    response = client.get("/.well-known/security.txt")
    assert response.status_code == 200 and response.mimetype == "text/plain"
    lines = dict(line.split(": ", 1) for line in response.get_data(as_text=True).splitlines())
    assert lines["Contact"] == "mailto:security@funding.example.gov"
    assert lines["Expires"].endswith("Z") and lines["Expires"] > "2026"


def test_inline_styles_carry_the_nonce_of_their_response(client: FlaskClient) -> None:
    for url in ("/api/v1/docs", "/api/v1/widget-demo"):
        first, second = client.get(url), client.get(url)
        nonce = re.search(r"'nonce-([^']+)'", first.headers["Content-Security-Policy"])
        assert nonce, url
        html = first.get_data(as_text=True)
        blocks = re.findall(r"<(style|script)\b([^>]*)>", html)
        assert blocks, url
        for tag, attributes in blocks:
            assert f'nonce="{nonce.group(1)}"' in attributes, (url, tag)
        assert nonce.group(1) not in second.headers["Content-Security-Policy"], "a nonce is used once"


def test_site_templates_have_no_inline_script_or_style(app: Flask) -> None:
    """Every template's <script>/<style> is external or nonce'd; no style= or on*= attributes."""
    from pathlib import Path

    root = Path(app.root_path) / "templates"
    for path in root.rglob("*.html"):
        if path.parent.name == "email":
            continue  # mail clients, not browsers on our origin, read these
        text = path.read_text()
        for match in re.finditer(r"<(script|style)\b([^>]*)>", text):
            tag, attributes = match.groups()
            assert "nonce=" in attributes or (tag == "script" and "src=" in attributes), (path, match.group())
        assert not re.search(r"\sstyle=|\son[a-z]+=", text), path


def test_widget_script_can_still_be_embedded_elsewhere(client: FlaskClient) -> None:
    response = client.get("/api/v1/widget.js", headers={"Origin": "https://partner.example.org"})
    assert response.status_code == 200 and response.mimetype == "application/javascript"
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "Cross-Origin-Resource-Policy" not in response.headers
    deadlines = client.get("/api/v1/deadlines", headers={"Origin": "https://partner.example.org"})
    assert deadlines.headers["Access-Control-Allow-Origin"] == "*"
    assert "script.nonce" in response.get_data(as_text=True)  # its style block follows a nonce'd script


def test_archived_payloads_keep_their_own_sandbox_policy(app: Flask, admin_client: Any, objects: Any) -> None:
    response = admin_client.get(f"/admin/crawls/payloads/{objects['payload_id']}")
    assert response.status_code == 200
    assert response.headers["Content-Security-Policy"] == "default-src 'none'; sandbox"


def test_signed_in_pages_are_not_cached(client: FlaskClient, make_user: Any, login: Any) -> None:
    assert "no-store" not in client.get("/").headers.get("Cache-Control", "")
    login(make_user())
    for url in ("/", "/profiles", "/tracked", "/organization", "/alerts/preferences"):
        assert client.get(url).headers["Cache-Control"] == "no-store", url


def test_hsts_only_over_tls(client: FlaskClient) -> None:
    secure = client.get("/", base_url="https://finder.example.gov")
    assert secure.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    spoofed = client.get("/", headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"})
    assert "Strict-Transport-Security" not in spoofed.headers  # no proxy is trusted by default


def test_forwarded_headers_are_trusted_only_from_configured_proxies(migrated_url: str, tmp_path: Any) -> None:
    app = create_app(
        {"TESTING": True, "DATABASE_URL": migrated_url, "INDEX_DIR": str(tmp_path / "index"),
         "SECRET_KEY": "test-secret-key", "TRUSTED_PROXIES": 1}
    )  # fmt: skip
    seen: dict[str, Any] = {}

    @app.get("/probe")
    def probe() -> str:
        from flask import request

        seen["ip"], seen["scheme"] = request.remote_addr, request.scheme
        return "ok"

    response = app.test_client().get(
        "/probe",
        headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "198.51.100.7, 203.0.113.9"},
        environ_base={"REMOTE_ADDR": "127.0.0.1"},
    )
    assert seen == {"ip": "203.0.113.9", "scheme": "https"}  # only the last hop: the one the proxy added
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")
    app.extensions["database"].engine.dispose()


def test_an_unexpected_error_logs_the_route_not_the_secret_token(
    app: Flask, client: FlaskClient, make_user: Any, monkeypatch: Any, caplog: Any
) -> None:
    from app.services import alert_tokens, calendar_feed, subscriptions

    user = make_user()
    db = app.extensions["database"].session()
    token = alert_tokens.calendar_token(
        app.config["SECRET_KEY"], user.id, subscriptions.calendar_version(db, user.id)
    )
    db.commit()

    def broken(*args: Any, **kwargs: Any) -> str:
        raise RuntimeError("feed failed")

    monkeypatch.setattr(calendar_feed, "build_feed", broken)
    response = client.get(f"/calendar/{token}.ics")
    assert response.status_code == 500 and "Traceback" not in response.get_data(as_text=True)
    [record] = [r for r in caplog.records if r.getMessage() == "unhandled error"]
    assert record.path == "/calendar/<token>.ics"
    assert token not in str(vars(record)) and token not in response.get_data(as_text=True)


def test_only_the_static_folder_is_served(client: FlaskClient) -> None:
    """ASVS 4.3.2 / 12.5.1: no directory listing, no way out of app/static to code, config or .git."""
    assert client.get("/static/site.css").status_code == 200
    outside = [
        "/static/", "/static/../config.py", "/static/%2e%2e/config.py", "/static/..%2f__init__.py",
        "/.git/HEAD", "/static/../../.git/HEAD", "/instance/secret_key", "/static/../../instance/secret_key",
    ]  # fmt: skip
    for path in outside:
        response = client.get(path)
        assert response.status_code == 404, path
