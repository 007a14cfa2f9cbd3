"""The catalogue version moves with every catalogue change (and only then); API ETags follow it."""

from __future__ import annotations

import datetime as dt

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.models import CviProgram, Opportunity
from app.services import catalogue_version
from app.services.opportunities import upsert_many
from app.services.search import SearchParams, find_exact, search
from tests.factories import record


def _version(session: Session) -> int:
    session.rollback()
    return catalogue_version.current(session)[0]


def test_upsert_bumps_and_a_rerun_with_nothing_new_does_not(session: Session) -> None:
    start = _version(session)
    upsert_many(session, [record(id="a", number="A-1"), record(id="b", number="B-1")])
    session.commit()
    after_insert = _version(session)
    assert after_insert > start  # the insert (and matching's re-score right after it)
    upsert_many(session, [record(id="a", number="A-1"), record(id="b", number="B-1")])
    session.commit()
    assert _version(session) == after_insert  # only last_seen moved
    upsert_many(session, [record(id="a", number="A-1", title="A new title")])
    session.commit()
    assert _version(session) > after_insert


def test_core_update_orm_edit_and_program_edit_bump_but_rollback_does_not(session: Session) -> None:
    upsert_many(session, [record(id="a")])
    session.commit()
    start = _version(session)
    session.execute(update(Opportunity).values(cvi_eligible=True, cvi_score=0.9))
    session.commit()
    assert _version(session) == start + 1
    opportunity = session.scalars(select(Opportunity)).one()
    opportunity.hidden = True
    session.commit()
    assert _version(session) == start + 2
    session.add(
        CviProgram(
            slug="cvipi",
            name="CVIPI",
            department="DOJ",
            summary="Community violence intervention.",
            eligible_applicants="Local governments",
            source_url="https://bja.ojp.gov/",
            last_verified=dt.date(2026, 1, 1),
        )
    )
    session.commit()
    assert _version(session) == start + 3
    opportunity.featured = True
    session.flush()
    session.rollback()
    assert _version(session) == start + 3
    bump_only = catalogue_version.current(session)
    catalogue_version.bump_catalogue_version(session)
    session.commit()
    assert catalogue_version.current(session)[0] == bump_only[0] + 1


def test_exact_number_uses_the_normalized_key(session: Session) -> None:
    upsert_many(session, [record(id="a", number=" o-bja-2026-7 ")])
    session.commit()
    found = find_exact(session, '"O-BJA-2026-7"')
    assert found is not None and found.number_key == "O-BJA-2026-7"
    found.number = "x-2"
    session.commit()
    assert session.scalars(select(Opportunity.number_key)).one() == "X-2"
    result = search(session, SearchParams(q="x-2", cvi_only=True))
    assert result.exact is not None and [o.id for o in result.items] == [found.id]


def test_conditional_listing_needs_no_search_and_follows_changes(
    client: FlaskClient, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    upsert_many(session, [record(id="a")])
    session.execute(update(Opportunity).values(cvi_eligible=True))
    session.commit()
    first = client.get("/api/v1/opportunities?q=violence&department=DOJ")
    assert first.status_code == 200
    etag = first.headers["ETag"]

    def no_search(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("a 304 must not run the search")

    monkeypatch.setattr("app.api.views.search", no_search)
    # Same parameters in another spelling: same normalized query, same ETag.
    again = client.get("/api/v1/opportunities?department=DOJ&q=violence", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.headers["ETag"] == etag
    assert again.headers["Cache-Control"].startswith("public, max-age=")
    monkeypatch.undo()
    session.execute(update(Opportunity).values(title="Renamed violence program"))
    session.commit()
    changed = client.get("/api/v1/opportunities?q=violence&department=DOJ", headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    assert changed.get_json()["items"][0]["title"] == "Renamed violence program"


def test_a_version_memo_sees_its_own_commits_at_once_and_others_within_max_age(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    from app.models.catalogue_state import bump

    clock = {"now": 500.0}
    monkeypatch.setattr(time, "monotonic", lambda: clock["now"])
    memo = catalogue_version.VersionMemo()
    session.rollback()
    first = memo.token(session, max_age=1)
    # Another process's change (written around this process's sessions): seen after max_age.
    engine = session.get_bind()
    with Session(engine) as other:
        bump(other)
        other.connection().commit()
    session.rollback()
    assert memo.token(session, max_age=1) == first
    clock["now"] += 1.5
    second = memo.token(session, max_age=1)
    assert second != first
    # A change committed through a Session of this process: seen at once.
    upsert_many(session, [record(id="memo", number="MEMO-1")])
    session.commit()
    assert memo.token(session, max_age=1) not in (first, second)
