"""Every page and form of the site fuzzed through the Flask URL map, signed in as who may use it.

Each route of ``app.url_map`` (outside the API, fuzzed by test_api_operations) is either walked here
or listed in ``EXCLUDED`` with a reason; a new route fails ``test_every_route_is_fuzzed_or_excluded``
until someone says which. For a GET page, the query parameters are the fields of the page's GET
forms plus common ones; for a POST form, the fields are read from the form as rendered on the page
that holds it (``FORM_PAGES``), so a field added to a form is fuzzed without touching this file. The
CSRF token is taken from the page, as a browser would; a few examples send none or a forged one.

Values are hostile strings (operators, quotes, NUL and control characters, huge text, malformed
dates, out-of-range numbers), the form's own options, several values for one field, or nothing.
Every answer must be below 500; a 4xx (or a form re-shown with errors) must say what was wrong.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest
from bs4 import BeautifulSoup, Tag
from flask import Flask, url_for
from flask.testing import FlaskClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict
from werkzeug.routing import IntegerConverter

from app.models import Opportunity, Organization, Role
from app.services import curation, cvi_scoring, subscriptions
from app.services.accounts import create_user
from crawlers.registry import SOURCES
from tests.conftest import session_cookie_data
from tests.reliability.fuzz.mutations import HOSTILE_TEXT
from tests.security import world as worlds
from tests.site.helpers import add_catalogue

EXAMPLES = int(os.environ.get("FUZZ_FORM_EXAMPLES", "10"))

#: Routes not fuzzed here, and why.
EXCLUDED = {
    "static": "files under app/static: the path is matched against files, no code reads it",
}
#: Every API route is an OpenAPI operation fuzzed by schemathesis (test_api_operations.py).
API_PREFIX = "api_v1."

#: Who uses a route: anonymous visitors (sign-in, token links), admins (/admin), else a member.
ANONYMOUS = {
    "auth.sign_in", "auth.sign_up", "auth.reset_request", "auth.reset_password", "org.accept",
    "alerts.unsubscribe", "alerts.calendar", "home.index", "home.healthz", "home.security_txt",
}  # fmt: skip

#: For each POST endpoint, the GET endpoint whose page holds its form.
FORM_PAGES = {
    "auth.sign_in": "auth.sign_in",
    "auth.sign_up": "auth.sign_up",
    "auth.reset_request": "auth.reset_request",
    "auth.reset_password": "auth.reset_password",
    "auth.sign_out": "home.index",
    "org.accept": "org.accept",
    "org.invite": "org.members",
    "org.withdraw": "org.members",
    "org.remove": "org.members",
    "org.set_role": "org.members",
    "alerts.unsubscribe": "alerts.unsubscribe",
    "alerts.subscribe": "alerts.preferences",
    "alerts.change": "alerts.preferences",
    "alerts.unsubscribe_one": "alerts.preferences",
    "alerts.resubscribe_one": "alerts.preferences",
    "alerts.regenerate_calendar": "alerts.preferences",
    "opportunities.track": "opportunities.show",
    "opportunities.untrack": "opportunities.show",
    "profiles.new": "profiles.new",
    "profiles.edit": "profiles.edit",
    "profiles.delete": "profiles.index",
    "profiles.dismiss": "profiles.matches",
    "profiles.undo": "profiles.dismissed",
    "tracking.save_search": "search.index",
    "tracking.delete_search": "tracking.saved_searches",
    "tracking.edit": "tracking.edit",
    "admin.issue_api_key": "admin.api_keys",
    "admin.revoke_api_key": "admin.api_key",
    "admin.run_source": "admin.crawls",
    "admin.decide_cvi": "admin.opportunity",
    "admin.clear_cvi": "admin.opportunity",
    "admin.correct_field": "admin.opportunity",
    "admin.set_flag": "admin.opportunity",
    "admin.merge": "admin.opportunity",
    "admin.release_field": "admin.opportunity",
    "admin.set_tags": "admin.opportunity",
    "admin.create_opportunity": "admin.new_opportunity",
    "admin.retry_email": "admin.outbox",
    "admin.save_program": "admin.program",
    "admin.add_listing": "admin.program",
    "admin.remove_listing": "admin.program",
    "admin.review_decide": "admin.review",
    "admin.set_active": "admin.users",
    "admin.set_role": "admin.users",
}
#: Query parameters tried on every GET page besides its forms' fields.
COMMON_QUERY = ["page", "cursor", "sort", "q", "status", "next", "per_page", "format"]
TOKEN_KIND = {
    "auth.reset_password": "reset", "org.accept": "invite", "alerts.unsubscribe": "unsubscribe",
    "alerts.calendar": "calendar",
}  # fmt: skip


@dataclass
class FormField:
    name: str
    kind: str
    value: str = ""
    options: list[str] = field(default_factory=list)


@dataclass
class Form:
    action: str
    method: str
    fields: list[FormField]


def read_forms(html: str, page_url: str) -> list[Form]:
    """The forms of a page with their fields (``csrf_token`` left out: the test sets it)."""
    forms = []
    for element in BeautifulSoup(html, "html.parser").find_all("form"):
        assert isinstance(element, Tag)
        action = urlsplit(str(element.get("action") or page_url)).path
        fields: dict[str, FormField] = {}
        for control in element.find_all(["input", "select", "textarea", "button"]):
            assert isinstance(control, Tag)
            name = str(control.get("name") or "")
            if not name or name == "csrf_token":
                continue
            kind = control.name if control.name != "input" else str(control.get("type") or "text")
            found = fields.setdefault(name, FormField(name, kind, str(control.get("value") or "")))
            if control.name == "select":
                found.options += [str(o.get("value", o.get_text())) for o in control.find_all("option")]
            elif kind in ("radio", "checkbox", "submit", "button") and control.get("value"):
                found.options.append(str(control.get("value")))
        forms.append(Form(action, str(element.get("method") or "get").lower(), list(fields.values())))
    return forms


NUMBERS = st.sampled_from(["-1", "0", "2147483648", "9223372036854775808", "1e999", "NaN", "0x10", "٣"])
DATES = st.one_of(
    st.dates().map(str),
    st.sampled_from(["2026-02-30", "2026-13-01", "0000-01-01", "99999-01-01", "01/02/2026", "today", ""]),
)


def value_strategy(control: FormField, banned: frozenset[str]) -> st.SearchStrategy[list[str]]:
    """Values for one field: hostile text, its own options or default, dates and numbers, several
    values at once, or none."""
    choices: list[st.SearchStrategy[str]] = [HOSTILE_TEXT, NUMBERS, DATES]
    if control.options:
        choices.append(st.sampled_from(control.options))
    if control.value:
        choices.append(st.just(control.value))
    one = st.one_of(*choices).filter(lambda v: v.strip() not in banned)
    return st.one_of(
        one.map(lambda v: [v]), one.map(lambda v: [v]), st.just([]), st.lists(one, min_size=2, max_size=3)
    )


ALERT = re.compile(r'role="alert"[^>]*>(.*?)</(?:div|li)>', re.S)


def assert_clear(response: Any, where: str) -> None:
    """Below 500; a 4xx or a form shown again with errors says in words what was wrong."""
    status = response.status_code
    assert status < 500, f"{where}: HTTP {status}"
    body = response.get_data(as_text=True)
    if response.mimetype == "text/html" and (400 <= status < 500 or 'aria-invalid="true"' in body):
        texts = [re.sub(r"<[^>]+>", " ", m).strip() for m in ALERT.findall(body)]
        assert any(texts), f"{where}: HTTP {status} without a message"
    elif 400 <= status < 500:
        assert body.strip(), f"{where}: HTTP {status} with an empty body"


# -- the site's objects, and who is signed in ---------------------------------------------------


@dataclass
class Site:
    app: Flask
    world: worlds.World
    admin: Any
    org_admin: Any
    values: dict[str, Any]
    #: Path values for one endpoint whose form shows only for another object (an untracked opportunity).
    overrides: dict[str, dict[str, Any]]

    def url(self, endpoint: str, page_of: str | None = None) -> str:
        rule = next(r for r in self.app.url_map.iter_rules() if r.endpoint == endpoint)
        values = {**self.values, **self.overrides.get(page_of or endpoint, {})}
        if endpoint in TOKEN_KIND:
            args = {"token": self.world.tokens[TOKEN_KIND[endpoint]]}
        else:
            args = {name: values[name] for name in rule.arguments}
        with self.app.test_request_context():
            return url_for(endpoint, **args)

    def user_for(self, endpoint: str) -> Any:
        if endpoint in ANONYMOUS:
            return None
        if endpoint in ("org.remove", "org.set_role"):
            return self.org_admin
        return self.admin if endpoint.startswith("admin.") else self.world.lead


@pytest.fixture
def site(app: Flask, session: Session, objects: dict[str, Any], admin: Any) -> Site:
    """The fuzzing organization and the admin objects, in the states that show every form."""
    catalogue = add_catalogue(session)
    world = worlds.build(app, session, "fuzz", "Fuzz", [catalogue["cvi"], catalogue["dol"], catalogue["ed"]])
    organization = session.get(Organization, world.organization_id)
    org_admin = create_user(
        session, "org-admin@fuzz.example.org", worlds.PASSWORD, role=Role.ADMIN, organization=organization
    )
    curated = session.get(Opportunity, catalogue["cvi"])
    assert curated is not None
    curation.set_cvi(session, curated, admin, True, "decided")  # shows "clear the decision"
    curation.correct_field(session, curated, admin, "title", "A curated title", None)  # shows "release"
    queued = session.get(Opportunity, catalogue["dol"])
    assert queued is not None
    queued.cvi_override, queued.cvi_score = None, cvi_scoring.threshold()  # in the review queue
    paused = subscriptions.subscribe(session, world.lead, "tracked", "weekly")
    subscriptions.unsubscribe(session, world.lead, paused.id)  # shows "resubscribe"
    session.commit()
    values = {
        **{k: objects[k] for k in ("key_id", "run_id", "payload_id", "message_id", "program_id", "number")},
        **world.ids,
        "opportunity_id": catalogue["cvi"],
        "filename": "site.css",
    }
    overrides = {
        "opportunities.track": {"opportunity_id": catalogue["nasa"]},
        "admin.review_decide": {"opportunity_id": catalogue["dol"]},
        "alerts.resubscribe_one": {"subscription_id": paused.id},
    }
    return Site(app, world, admin, org_admin, values, overrides)


def signed_in(app: Flask, user: Any) -> FlaskClient:
    client = app.test_client()
    if user is not None:
        data = session_cookie_data(app, user)
        with client.session_transaction() as flask_session:
            flask_session.update(data)
    return client


def refresh_sign_in(app: Flask, client: FlaskClient, user: Any) -> None:
    """Sign in again without losing the CSRF secret (an example may have signed out or reset)."""
    if user is None:
        return
    data = session_cookie_data(app, user)
    with client.session_transaction() as flask_session:
        flask_session.update(data)


def routes(app: Flask) -> Iterator[tuple[str, str]]:
    for rule in app.url_map.iter_rules():
        if rule.endpoint in EXCLUDED or rule.endpoint.startswith(API_PREFIX):
            continue
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            yield rule.endpoint, method


def _url_map_app() -> Flask:
    from app import create_app

    return create_app({"TESTING": True, "DATABASE_URL": "sqlite://", "SECRET_KEY": "x"})


def _numeric_arguments(app: Flask, endpoint: str, method: str) -> list[str]:
    rule = next(r for r in app.url_map.iter_rules() if r.endpoint == endpoint and method in (r.methods or ()))
    return [name for name, conv in rule._converters.items() if isinstance(conv, IntegerConverter)]


_APP = _url_map_app()
ROUTES = sorted(set(routes(_APP)))
#: Routes with an integer path argument (an id).
ID_ROUTES = [(e, m) for e, m in ROUTES if _numeric_arguments(_APP, e, m)]


def test_every_route_is_fuzzed_or_excluded(app: Flask) -> None:
    assert sorted(set(routes(app))) == ROUTES
    for endpoint, method in ROUTES:
        if method == "POST":
            assert endpoint in FORM_PAGES, f"say in FORM_PAGES which page holds the form of {endpoint}"
        else:
            assert method == "GET", (endpoint, method)


FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
BANNED = {"admin.run_source": frozenset(SOURCES)}  # a valid source would start a real crawl


def form_for(client: FlaskClient, site: Site, endpoint: str) -> tuple[str, Form, str]:
    """(URL, form, CSRF token) of ``endpoint``'s form as its page renders it."""
    page_url = site.url(FORM_PAGES[endpoint], page_of=endpoint)
    target = site.url(endpoint)
    if endpoint == "tracking.save_search":
        page_url += "?q=violence"
    page = client.get(page_url)
    assert page.status_code == 200, (endpoint, page_url, page.status_code)
    html = page.get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html)  # none on CSRF-exempt forms
    path = urlsplit(target).path
    forms = [f for f in read_forms(html, page_url) if f.method == "post" and f.action == path]
    assert forms, f"no form posting to {path} on {page_url}: update FORM_PAGES or the site's objects"
    fields = {f.name: f for form in forms for f in form.fields}
    return target, Form(path, "post", list(fields.values())), token.group(1) if token else ""


def fuzz_route(site: Site, endpoint: str, method: str) -> None:
    """Hypothesis examples of one route: its form's (or page's) fields with hostile values."""
    app = site.app
    user = site.user_for(endpoint)
    client = signed_in(app, user)
    if method == "POST":
        url, form, token = form_for(client, site, endpoint)
        fields = form.fields
    else:
        url = site.url(endpoint)
        page = client.get(url)
        assert_clear(page, f"GET {url}")
        html = page.get_data(as_text=True) if page.mimetype == "text/html" else ""
        names = {f.name: f for form in read_forms(html, url) if form.method == "get" for f in form.fields}
        fields = list(names.values()) + [FormField(n, "text") for n in COMMON_QUERY if n not in names]
        token = ""
    banned = BANNED.get(endpoint, frozenset())
    values = st.fixed_dictionaries({f.name: value_strategy(f, banned) for f in fields})
    csrf = st.sampled_from([token] * 8 + ["", "forged.token"]) if method == "POST" else st.just("")

    @FUZZ
    @given(values=values, csrf=csrf, extra=st.one_of(st.none(), st.tuples(HOSTILE_TEXT, HOSTILE_TEXT)))
    def check(values: dict[str, list[str]], csrf: str, extra: tuple[str, str] | None) -> None:
        refresh_sign_in(app, client, user)
        data = MultiDict([(name, v) for name, vs in values.items() for v in vs])
        if extra is not None and extra[0] not in ("csrf_token", *BANNED_NAMES):
            data.add(*extra)
        if method == "POST":
            if csrf:
                data["csrf_token"] = csrf
            response = client.post(url, data=data)
        else:
            response = client.get(url, query_string=data)
        assert_clear(response, f"{method} {url} {dict(data.lists())!r:.600}")

    check()


BANNED_NAMES = ("source",)


#: The POST forms by who sends them, in the order they are fuzzed on one shared site: a form's
#: examples may delete what a later form needs (a merge, an untrack, a deleted profile, signing out),
#: so those come last. A form whose page no longer shows it fails loudly, never silently.
FORM_GROUPS = {
    "anonymous": [
        "auth.sign_in", "auth.sign_up", "auth.reset_request", "auth.reset_password", "alerts.unsubscribe",
        "org.accept",
    ],
    "member": [
        "alerts.change", "alerts.regenerate_calendar", "alerts.resubscribe_one", "alerts.subscribe",
        "alerts.unsubscribe_one", "opportunities.track", "profiles.new", "profiles.edit", "profiles.dismiss",
        "tracking.save_search", "tracking.edit", "org.invite", "profiles.undo", "opportunities.untrack",
        "tracking.delete_search", "org.withdraw", "profiles.delete", "auth.sign_out",
    ],
    "organization admin": ["org.set_role", "org.remove"],
    "admin": [
        "admin.add_listing", "admin.clear_cvi", "admin.correct_field", "admin.create_opportunity",
        "admin.decide_cvi", "admin.issue_api_key", "admin.release_field", "admin.retry_email",
        "admin.review_decide", "admin.run_source", "admin.save_program", "admin.set_flag", "admin.set_tags",
        "admin.remove_listing", "admin.revoke_api_key", "admin.set_role", "admin.set_active", "admin.merge",
    ],
}  # fmt: skip


def test_every_form_is_in_one_group() -> None:
    grouped = [endpoint for group in FORM_GROUPS.values() for endpoint in group]
    assert sorted(grouped) == sorted(e for e, m in ROUTES if m == "POST"), "put each POST form in FORM_GROUPS"


@pytest.mark.parametrize("group", sorted(FORM_GROUPS))
def test_forms_survive_hostile_input(site: Site, group: str) -> None:
    """Every form of the group in turn, on one site (a fresh site per form costs a second each)."""
    for endpoint in FORM_GROUPS[group]:
        fuzz_route(site, endpoint, "POST")


def test_pages_survive_hostile_query_strings(site: Site) -> None:
    """Every GET route in one site (reading changes nothing, so they can share it)."""
    for endpoint in [e for e, m in ROUTES if m == "GET"]:
        fuzz_route(site, endpoint, "GET")


def test_ids_out_of_range_are_answered_not_failed(site: Site) -> None:
    """Integer path arguments at and past the id columns' range: a 4xx, never a failed query."""
    tokens: dict[int | None, str] = {}
    for endpoint, method in ID_ROUTES:
        user = site.user_for(endpoint)
        client = signed_in(site.app, user)
        key = getattr(user, "id", None)
        if method == "POST" and key not in tokens:
            tokens[key] = form_for(client, site, endpoint)[2]
        numeric = _numeric_arguments(site.app, endpoint, method)
        rule = next(
            r for r in site.app.url_map.iter_rules() if r.endpoint == endpoint and method in (r.methods or ())
        )
        for huge in (0, 2**31 - 1, 2**31, 2**63, 10**30):
            values = {**site.values, **dict.fromkeys(numeric, huge)}
            with site.app.test_request_context():
                url = url_for(endpoint, **{name: values[name] for name in rule.arguments})
            data = {"csrf_token": tokens.get(key, "")} if method == "POST" else None
            assert_clear(client.open(url, method=method, data=data), f"{method} {url}")


def test_link_tokens_survive_hostile_input(site: Site) -> None:
    """Signed links (reset, invitation, unsubscribe, calendar) with any text where the token goes."""
    client = signed_in(site.app, None)
    for endpoint in sorted(TOKEN_KIND):
        rule = next(r for r in site.app.url_map.iter_rules() if r.endpoint == endpoint)
        methods = sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})

        @FUZZ
        @given(
            token=HOSTILE_TEXT.filter(lambda t: t.strip() and "/" not in t), method=st.sampled_from(methods)
        )
        def check(token: str, method: str) -> None:
            with site.app.test_request_context():
                url = url_for(endpoint, token=token)  # noqa: B023  (called before the loop moves on)
            assert_clear(client.open(url, method=method), f"{method} {url:.300}")

        check()


def test_id_filters_past_the_id_range_are_refused_with_a_message(site: Site) -> None:
    """Regression: ``/admin/audit?opportunity=10**20`` reached SQLite as an unbindable number (500)."""
    client = signed_in(site.app, site.admin)
    for name in ("opportunity", "user", "program"):
        response = client.get(f"/admin/audit?{name}={10**20}")
        assert response.status_code == 400
        assert f"The {name} filter must be an id" in response.get_data(as_text=True)
    assert client.get(f"/admin/audit?opportunity={site.values['opportunity_id']}").status_code == 200


def test_nul_characters_are_refused_with_a_message(site: Site) -> None:
    """Regression (PostgreSQL): a NUL in a query string, a form or a path segment failed the query
    in the view (``PostgreSQL text fields cannot contain NUL``), a 500."""
    admin = signed_in(site.app, site.admin)
    program = site.values["program_id"]
    _url, _form, token = form_for(admin, site, "admin.set_tags")
    answers = [
        admin.get("/admin/audit/accounts?target=%00"),
        admin.get("/search?q=a%00b"),
        admin.post(
            f"/admin/opportunities/{site.values['opportunity_id']}/tags",
            data={"csrf_token": token, "tags": "a\x00"},
        ),
        admin.post(f"/admin/programs/{program}/listings/16.0%0045/remove", data={"csrf_token": token}),
    ]
    for response in answers:
        assert response.status_code == 400
        assert "contains a NUL character" in response.get_data(as_text=True)
