"""Authorization between organizations on every route, walked from the app's URL map (ASVS V4).

Organization B's people (a member, and a site admin who belongs to B) call every route of the site,
the alerts, the API, the calendar feed and the exports with ids that belong to organization A —
alone and mixed with B's own ids, GET and POST (with a valid CSRF token and a plausible form) — and:

* a route that names an organization's object answers 403 or 404; a link-token route answers 400
  or 404 for A's tokens of another purpose and for A's payloads signed with another key;
* nothing of A changed (every row A owns is compared before and after each request), no row of B
  points at A's objects, and no response shows any of A's text.

Every endpoint must be classified in ``ENDPOINTS`` and every URL argument in ``ARGUMENTS``: a route
added later fails the first test until someone says how to walk it.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask, url_for
from flask.testing import FlaskClient
from sqlalchemy import text
from sqlalchemy.orm import Session

from tests.security import world as worlds
from tests.site.helpers import Mailbox, add_catalogue, csrf_token

MARKER = "zq-victim-text"

#: How each endpoint is walked. ``object``: names an organization's or a user's object by id (403/404
#: expected with another organization's ids); ``token``: a signed link; ``own``: acts only on the
#: signed-in user's own data; ``public``: the catalogue, the API, static files; ``admin``: site admins.
ENDPOINTS = {
    "home.index": "public", "home.healthz": "public", "home.security_txt": "public", "static": "public",
    "search.index": "public", "search.export_csv": "public",
    "opportunities.show": "public", "opportunities.ics": "public",
    "opportunities.track": "own", "opportunities.untrack": "own",
    "auth.sign_up": "public", "auth.sign_in": "public", "auth.sign_out": "own",
    "auth.reset_request": "public", "auth.reset_password": "token",
    "org.members": "own", "org.invite": "own", "org.accept": "token",
    "org.set_role": "object", "org.remove": "object", "org.withdraw": "object",
    "profiles.index": "own", "profiles.new": "own", "profiles.edit": "object", "profiles.delete": "object",
    "profiles.matches": "object", "profiles.dismiss": "object", "profiles.dismissed": "object",
    "profiles.undo": "object",
    "tracking.index": "own", "tracking.edit": "object", "tracking.calendar": "own",
    "tracking.saved_searches": "own", "tracking.save_search": "own", "tracking.delete_search": "object",
    "alerts.preferences": "own", "alerts.subscribe": "own", "alerts.change": "object",
    "alerts.unsubscribe_one": "object", "alerts.resubscribe_one": "object",
    "alerts.regenerate_calendar": "own", "alerts.unsubscribe": "token", "alerts.calendar": "token",
    "api_v1.index": "public", "api_v1.list_opportunities": "public", "api_v1.get_opportunity": "public",
    "api_v1.match": "public", "api_v1.list_cvi_programs": "public", "api_v1.list_agencies": "public",
    "api_v1.list_deadlines": "public", "api_v1.openapi_document": "public", "api_v1.docs": "public",
    "api_v1.widget_script": "public", "api_v1.widget_demo": "public", "api_v1.not_found": "public",
}  # fmt: skip

#: URL arguments: ``owned`` ones are filled with A's object (and B's own in mixed combinations);
#: ``public`` ones with catalogue values; ``token`` with link tokens; ``admin`` ones with admin objects.
ARGUMENTS = {
    "profile_id": "owned", "dismissal_id": "owned", "saved_id": "owned", "tracked_id": "owned",
    "subscription_id": "owned", "invitation_id": "owned", "user_id": "owned",
    "opportunity_id": "public", "filename": "public", "rest": "public",
    "token": "token",
    "key_id": "admin", "run_id": "admin", "payload_id": "admin", "message_id": "admin",
    "program_id": "admin", "number": "admin",
}  # fmt: skip

#: Which link each token route takes (so the walk sends it every other kind of A's tokens).
TOKEN_KIND = {
    "auth.reset_password": "reset", "org.accept": "invite", "alerts.unsubscribe": "unsubscribe",
    "alerts.calendar": "calendar",
}  # fmt: skip

#: Each table A owns rows in, and how to find them.
VICTIM_ROWS = {
    "organizations": "id = :org",
    "users": "id IN (:lead, :colleague) OR organization_id = :org",
    "program_profiles": "organization_id = :org",
    "match_dismissals": "profile_id IN (SELECT id FROM program_profiles WHERE organization_id = :org)",
    "saved_searches": "user_id IN (:lead, :colleague)",
    "tracked_opportunities": "organization_id = :org",
    "alert_subscriptions": "user_id IN (:lead, :colleague)",
    "alert_settings": "user_id IN (:lead, :colleague)",
    "invitations": "organization_id = :org",
    "user_sessions": "user_id IN (:lead, :colleague)",
}

#: Rows of B that would point at A's objects (a body-level id taken without an ownership check).
CROSS_REFERENCES = (
    "SELECT id FROM alert_subscriptions WHERE user_id NOT IN (:lead, :colleague) AND (profile_id IN "
    "(SELECT id FROM program_profiles WHERE organization_id = :org) OR saved_search_id IN "
    "(SELECT id FROM saved_searches WHERE user_id IN (:lead, :colleague)))",
    "SELECT id FROM tracked_opportunities WHERE organization_id <> :org AND owner_id IN (:lead, :colleague)",
)


@dataclass
class Setting:
    victim: worlds.World
    attacker: worlds.World
    admin_ids: dict[str, Any]
    public: dict[str, Any]


@pytest.fixture
def setting(app: Flask, session: Session, mailbox: Mailbox, objects: dict[str, Any]) -> Setting:
    ids = add_catalogue(session)
    opportunity_ids = [ids["cvi"], ids["dol"], ids["ed"]]
    victim = worlds.build(app, session, "victim", MARKER, opportunity_ids)
    attacker = worlds.build(app, session, "attacker", "attacker", opportunity_ids, admin=True)
    admin_ids = {
        k: objects[k] for k in ("key_id", "run_id", "payload_id", "message_id", "program_id", "number")
    }
    public = {"opportunity_id": ids["cvi"], "filename": "site.css", "rest": "no-such-route"}
    return Setting(victim, attacker, admin_ids, public)


def test_every_route_and_argument_is_classified(app: Flask) -> None:
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    admin = {e for e in endpoints if e.startswith("admin.")}
    assert endpoints - admin - set(ENDPOINTS) == set(), "classify these new routes in ENDPOINTS"
    assert set(ENDPOINTS) - endpoints == set(), "these classified routes no longer exist"
    for rule in app.url_map.iter_rules():
        unknown = set(rule.arguments) - set(ARGUMENTS)
        assert unknown == set(), f"{rule.endpoint}: say in ARGUMENTS how to fill {sorted(unknown)}"
        if ENDPOINTS.get(rule.endpoint) == "object":
            assert any(ARGUMENTS[a] == "owned" for a in rule.arguments), rule.endpoint
        if ENDPOINTS.get(rule.endpoint) == "token":
            assert rule.endpoint in TOKEN_KIND, rule.endpoint


def form_data(setting: Setting, values: dict[str, Any], body_target: str) -> dict[str, Any]:
    """Every field any form of the site reads, valid, with A's ids where a form takes an id."""
    victim = setting.victim
    data: dict[str, Any] = {
        "name": "Attacker's thing", "org_type": "nonprofit", "city": "Gary", "state": "IN",
        "program_description": "Street outreach and violence intervention for young adults.",
        "focus_areas": "street outreach", "populations": "young adults", "reason": "not a fit",
        "stage": "submitted", "owner": str(victim.lead.id), "notes": "taken over", "internal_deadline": "",
        "frequency": "daily", "reminder_days": "7", "target": body_target, "query": "q=violence",
        "email": "someone-new@attacker.example.org", "password": "another long passphrase",
        "confirm": "another long passphrase", "organization": "Attacker org", "role": "admin",
        "back": "/", "next": "/",
    }  # fmt: skip
    for name in ("subscription_id", "user_id"):
        if name in values:
            data[f"s{values[name]}-frequency"] = "daily"
            data[f"s{values[name]}-reminder_days"] = "1"
            data[f"u{values[name]}-role"] = "admin"
    return data


def combinations(setting: Setting, arguments: list[str], *, own_too: bool) -> Iterator[dict[str, Any]]:
    """A's ids alone and mixed with B's for the owned arguments (B's alone only when ``own_too``)."""
    owned = [a for a in arguments if ARGUMENTS[a] == "owned"]
    for choice in itertools.product(("victim", "attacker"), repeat=len(owned)):
        if "victim" not in choice and not own_too:
            continue
        values: dict[str, Any] = {}
        for name, side in zip(owned, choice, strict=True):
            values[name] = (setting.victim if side == "victim" else setting.attacker).ids[name]
        for name in arguments:
            if ARGUMENTS[name] == "public":
                values[name] = setting.public[name]
            elif ARGUMENTS[name] == "admin":
                values[name] = setting.admin_ids[name]
        yield values


def token_candidates(setting: Setting, endpoint: str) -> list[str]:
    """A's tokens of every other kind, A's payload signed with another key, and B's own token."""
    kind = TOKEN_KIND[endpoint]
    others = [token for name, token in setting.victim.tokens.items() if name != kind]
    return [*others, worlds.forged_tokens(setting.victim)[kind], "not-a-token"]


def victim_rows(app: Flask, victim: worlds.World) -> dict[str, list[tuple[Any, ...]]]:
    params = {"org": victim.organization_id, "lead": victim.lead.id, "colleague": victim.colleague.id}
    with app.extensions["database"].engine.connect() as conn:
        rows = {}
        for table, where in VICTIM_ROWS.items():
            found = conn.execute(text(f"SELECT * FROM {table} WHERE {where}"), params)
            rows[table] = sorted(tuple(map(str, row)) for row in found)
        rows["cross references"] = [tuple(r) for q in CROSS_REFERENCES for r in conn.execute(text(q), params)]
    return rows


class Walker:
    """Signs the attacker in afresh before each request (sign-out and resets end sessions)."""

    def __init__(self, app: Flask, client: FlaskClient, login: Any, setting: Setting, user: Any) -> None:
        self.app, self.client, self.login, self.setting, self.user = app, client, login, setting, user
        self.before = victim_rows(app, setting.victim)
        self.calls = 0

    def call(self, endpoint: str, method: str, url: str, data: dict[str, Any]) -> int:
        self.login(self.user)
        self.calls += 1
        if method == "POST":
            response = self.client.post(
                url, data={**data, "csrf_token": csrf_token(self.client, "/profiles")}
            )
        else:
            response = self.client.open(url, method=method)
        where = (endpoint, method, url)
        assert response.status_code < 500, where
        assert MARKER not in response.get_data(as_text=True), f"A's text leaked: {where}"
        after = victim_rows(self.app, self.setting.victim)
        assert after == self.before, f"A's data changed: {where}"
        return response.status_code


#: Routes that delete or detach B's own objects: walked last, so B's objects exist for the others.
DESTRUCTIVE = {"profiles.delete", "profiles.undo", "tracking.delete_search", "org.remove", "org.withdraw",
               "alerts.unsubscribe_one", "opportunities.untrack", "auth.sign_out"}  # fmt: skip

Step = tuple[str, str, str, dict[str, Any], set[int] | None]


def plan(app: Flask, setting: Setting, *, skip_admin: bool) -> list[Step]:
    """A's ids first (403/404 expected), then B's own objects with hostile forms (GETs must work), then
    the rest; destructive routes at the end of each group."""
    victim_named: list[Step] = []
    own_objects: list[Step] = []
    others: list[Step] = []
    with app.test_request_context():
        for rule in app.url_map.iter_rules():
            kind = "admin" if rule.endpoint.startswith("admin.") else ENDPOINTS[rule.endpoint]
            if kind == "admin" and skip_admin:
                continue
            methods = sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})
            if kind == "token":
                for token in token_candidates(setting, rule.endpoint):
                    url = url_for(rule.endpoint, token=token)
                    victim_named += [
                        (rule.endpoint, m, url, form_data(setting, {}, ""), {400, 404}) for m in methods
                    ]
                continue
            for values in combinations(setting, sorted(rule.arguments), own_too=True):
                named = any(
                    v == setting.victim.ids.get(k) for k, v in values.items() if ARGUMENTS[k] == "owned"
                )
                url = url_for(rule.endpoint, **values)
                for method in methods:
                    if kind == "admin":
                        expected: set[int] | None = {403}
                    elif named:
                        expected = {403, 404}
                    elif kind == "object" and method == "GET":
                        expected = {200}  # B's own object: proves the walk fills the route correctly
                    else:
                        expected = None
                    group = (
                        victim_named
                        if named or kind == "admin"
                        else own_objects
                        if kind == "object"
                        else others
                    )
                    victim = setting.victim
                    targets = [f"profile:{victim.profile_ids[0]}", f"search:{victim.saved_ids[0]}"]
                    for target in targets[: 1 if method == "GET" else 2]:
                        group.append(
                            (rule.endpoint, method, url, form_data(setting, values, target), expected)
                        )

    def destructive_last(steps: list[Step]) -> list[Step]:
        return sorted(steps, key=lambda step: step[0] in DESTRUCTIVE)

    return destructive_last(victim_named) + destructive_last(own_objects) + destructive_last(others)


def walk(app: Flask, walker: Walker, *, skip_admin: bool) -> None:
    for endpoint, method, url, data, expected in plan(app, walker.setting, skip_admin=skip_admin):
        status = walker.call(endpoint, method, url, data)
        if expected is not None:
            assert status in expected, (endpoint, method, url, status)


def test_a_member_of_another_organization_reaches_nothing(
    app: Flask, client: FlaskClient, login: Any, setting: Setting
) -> None:
    member = setting.attacker.colleague
    walker = Walker(app, client, login, setting, member)
    walk(app, walker, skip_admin=False)
    assert walker.calls > 150


def test_an_organization_admin_of_another_organization_reaches_nothing(
    app: Flask, client: FlaskClient, login: Any, setting: Setting
) -> None:
    """B's lead is a site admin: /admin is theirs by design, but A's organization data is not."""
    walker = Walker(app, client, login, setting, setting.attacker.lead)
    walk(app, walker, skip_admin=True)
    assert walker.calls > 100
