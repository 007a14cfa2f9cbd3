"""Every redirect built from input goes only to a same-site relative path (ASVS 5.1.5)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest
from flask.testing import FlaskClient

from app.views.common import safe_next
from tests.security.world import PASSWORD
from tests.site.helpers import csrf_token, post

HOSTILE = [
    "//evil.example",
    "//evil.example/path",
    "https://evil.example",
    "http:evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "/\\/evil.example",
    "/\t/evil.example",
    "/\n/evil.example",
    "/\r\n//evil.example",
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    " javascript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "%2F%2Fevil.example",
    "%2f%5cevil.example",
    "https:%2F%2Fevil.example",
    "evil.example",
    "///evil.example",
    "\x00//evil.example",
]
SAFE = [
    "/tracked",
    "/search?q=violence&department=DOJ",
    "/profiles/3/matches?page=2#results",
    "/%2F%2Fevil",
    "/%09/evil.example",
]


def stays_on_site(location: str, site: str = "http://finder.example.gov/") -> bool:
    """Where a browser goes: it drops tabs and newlines and reads a backslash as a slash."""
    cleaned = location.replace("\t", "").replace("\n", "").replace("\r", "").replace("\\", "/")
    return urlsplit(urljoin(site, cleaned)).netloc == urlsplit(site).netloc


@pytest.mark.parametrize("target", HOSTILE)
def test_hostile_targets_fall_back_to_the_default(target: str) -> None:
    assert safe_next(target, "/search") == "/search"


@pytest.mark.parametrize("target", SAFE)
def test_same_site_paths_are_kept(target: str) -> None:
    assert safe_next(target, "/search") == target
    assert stays_on_site(target)


def refused_for_nul(response: Any, target: str) -> bool:
    """A target with a NUL character is refused before any view (app.request_guard): no redirect."""
    if "\x00" not in target:
        return False
    assert response.status_code == 400 and "Location" not in response.headers, target
    return True


def test_sign_in_next(client: FlaskClient, make_user: Any) -> None:
    user = make_user()
    for n, target in enumerate(HOSTILE + SAFE):
        data = {
            "csrf_token": csrf_token(client, "/sign-in"),
            "email": user.email,
            "password": PASSWORD,
            "next": target,
        }
        # One address per attempt: the sign-in rate limit counts per IP address and email.
        response = client.post("/sign-in", data=data, environ_base={"REMOTE_ADDR": f"10.9.0.{n}"})
        if refused_for_nul(response, target):
            continue
        assert response.status_code == 302, target
        location = response.headers["Location"]
        assert stays_on_site(location), (target, location)
        assert location == (target if target in SAFE else "/search"), target


def test_not_a_fit_back_link(
    client: FlaskClient, make_user: Any, login: Any, catalogue: dict[str, int]
) -> None:
    login(make_user())
    description = "Street outreach for young adults at risk of violence."
    post(
        client,
        "/profiles/new",
        {"name": "Outreach", "org_type": "nonprofit", "program_description": description},
    )
    profile_page = client.get("/profiles").get_data(as_text=True)
    profile_id = re.search(r"/profiles/(\d+)/matches", profile_page)
    assert profile_id
    for opportunity_id, target in zip(list(catalogue.values()) * 6, HOSTILE, strict=False):
        url = f"/profiles/{profile_id.group(1)}/matches/{opportunity_id}/dismiss"
        token = csrf_token(client, f"/profiles/{profile_id.group(1)}/matches")
        response = client.post(url, data={"csrf_token": token, "reason": "not a fit", "back": target})
        if refused_for_nul(response, target):
            continue
        assert response.status_code == 302 and stays_on_site(response.headers["Location"]), target


def test_admin_forms_with_next(admin_client: Any, objects: dict[str, Any]) -> None:
    for target in HOSTILE:
        retry = admin_client.post(f"/admin/outbox/{objects['message_id']}/retry", data={"next": target})
        if refused_for_nul(retry, target):
            continue
        assert retry.status_code in (302, 400), target
        if retry.status_code == 302:
            assert retry.headers["Location"] == "/admin/outbox", target
        flag = admin_client.post(
            f"/admin/opportunities/{objects['opportunity_id']}/flags",
            data={"next": target, "flag": "featured", "value": "1"},
        )
        assert flag.status_code == 302, target
        assert flag.headers["Location"] == f"/admin/opportunities/{objects['opportunity_id']}", target
