"""The review queue and the CVI program catalogue."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import AssistanceListing, Curation, CviProgram, Opportunity
from app.services import cvi_scoring, review_queue
from app.services.opportunities import upsert_many
from tests.admin.conftest import AdminClient
from tests.factories import record


def _scored(
    session: Session, source_id: str, score: float | None, *, days_ago: int = 0, **overrides: Any
) -> int:
    now = dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC) - dt.timedelta(days=days_ago)
    result = upsert_many(
        session, [record(id=source_id, title=f"Opportunity {source_id}", **overrides)], now=now
    )
    session.commit()  # the classifier scores it on commit; the test then sets the score it needs
    opp = session.get(Opportunity, result.new_ids[0])
    assert opp is not None
    opp.cvi_score = score
    opp.cvi_classified = score is not None and score >= cvi_scoring.threshold()
    opp.cvi_reasons = [f"reason for {source_id}"]
    session.commit()
    return opp.id


def test_review_queue_lists_unsure_unreviewed_records_newest_first(
    session: Session, admin_client: AdminClient
) -> None:
    t = cvi_scoring.threshold()
    older = _scored(session, "older", t - 0.1, days_ago=3)
    newer = _scored(session, "newer", t + 0.05, days_ago=1)
    _scored(session, "sure-yes", t + 0.4)
    _scored(session, "sure-no", t - 0.4)
    _scored(session, "unscored", None)
    reviewed = _scored(session, "reviewed", t)
    session.get(Opportunity, reviewed).cvi_override = True  # type: ignore[union-attr]
    merged = _scored(session, "merged", t)
    session.get(Opportunity, merged).merged_into_id = older  # type: ignore[union-attr]
    session.commit()

    queue = review_queue.pending(session, review_queue.band(0.15))
    assert [o.id for o in queue.items] == [newer, older]
    page = admin_client.get("/admin/review").get_data(as_text=True)
    assert page.index("Opportunity newer") < page.index("Opportunity older")
    assert "reason for newer" in page and "Street outreach and hospital-based" in page
    assert "Opportunity sure-yes" not in page and "Opportunity reviewed" not in page
    # A wider band takes in the confident ones too.
    wide = admin_client.get("/admin/review?band=0.5").get_data(as_text=True)
    assert "Opportunity sure-yes" in wide and "Opportunity sure-no" in wide
    assert "Opportunity unscored" not in wide


def test_one_click_decisions_clear_the_queue(session: Session, admin_client: AdminClient) -> None:
    t = cvi_scoring.threshold()
    first = _scored(session, "first", t)
    second = _scored(session, "second", t - 0.05)
    response = admin_client.post(f"/admin/review/{first}", {"decision": "confirm", "page": "1"})
    assert response.status_code == 302 and "/admin/review" in response.headers["Location"]
    admin_client.post(f"/admin/review/{second}", {"decision": "reject", "note": "training only"})
    session.expire_all()
    assert session.get(Opportunity, first).cvi_eligible is True  # type: ignore[union-attr]
    assert session.get(Opportunity, second).cvi_override is False  # type: ignore[union-attr]
    assert review_queue.count(session, review_queue.band(0.15)) == 0
    assert "The queue is empty" in admin_client.get("/admin/review").get_data(as_text=True)
    notes = session.scalars(select(Curation.note).where(Curation.opportunity_id == second)).all()
    assert notes == ["training only"]


def test_review_queue_pages(session: Session, admin_client: AdminClient) -> None:
    for n in range(25):
        _scored(session, f"q{n:02d}", cvi_scoring.threshold(), days_ago=n)
    first = admin_client.get("/admin/review").get_data(as_text=True)
    second = admin_client.get("/admin/review?page=2").get_data(as_text=True)
    assert "Opportunity q00" in first and "Opportunity q19" in first and "Opportunity q20" not in first
    assert "Opportunity q20" in second and "Page 2 of 2" in second


def _program(session: Session, slug: str = "cvipi", numbers: tuple[str, ...] = ()) -> CviProgram:
    program = CviProgram(
        slug=slug,
        name=f"Program {slug}",
        department="DOJ",
        summary="Funds CVI.",
        eligible_applicants="Cities",
        source_url="https://bja.ojp.gov/",
        last_verified=dt.date(2026, 11, 1),
    )
    session.add(program)
    session.flush()
    for number in numbers:
        session.add(AssistanceListing(number=number, title=f"Listing {number}", cvi_program_id=program.id))
    session.commit()
    return program


@pytest.fixture
def rescored(monkeypatch: pytest.MonkeyPatch) -> list[list[int]]:
    """The ids each re-score was asked for (the classifier itself is tested with matching)."""
    calls: list[list[int]] = []
    original = cvi_scoring.rescore

    def spy(session: Session, ids: Any) -> int:
        calls.append(sorted(ids))
        return original(session, ids)

    monkeypatch.setattr(cvi_scoring, "rescore", spy)
    return calls


def test_program_listings_add_remove_and_rescore(
    session: Session, admin_client: AdminClient, rescored: list[list[int]]
) -> None:
    program = _program(session)
    other = _program(session, "byrne-jag", ("16.738",))
    with_aln = _scored(session, "cvi", 0.3, aln=["16.045"])
    _scored(session, "jag", 0.3, aln=["16.738"])

    response = admin_client.post(
        f"/admin/programs/{program.id}/listings", {"number": "16.045", "title": "CVIPI"}
    )
    assert response.status_code == 302
    assert rescored == [[with_aln]]
    session.expire_all()
    with_program = session.get(Opportunity, with_aln)
    assert with_program is not None
    score_with_program = with_program.cvi_score
    assert score_with_program is not None and score_with_program > 0.3
    assert any("Program cvipi" in reason for reason in with_program.cvi_reasons)
    assert [a.number for a in session.get(CviProgram, program.id).assistance_listings] == ["16.045"]  # type: ignore[union-attr]

    for number, message in [
        ("16.45", "not an assistance listing number"),
        ("16.738", "belongs to “Program byrne-jag”"),
        ("16.045", "already in this program"),
        ("93.999", "give its program title"),
    ]:
        response = admin_client.post(f"/admin/programs/{program.id}/listings", {"number": number})
        assert response.status_code == 400, number
        assert message in response.get_data(as_text=True), number

    response = admin_client.post(f"/admin/programs/{program.id}/listings/16.045/remove", {"note": "moved"})
    assert response.status_code == 302
    assert rescored[-1] == [with_aln]
    session.expire_all()
    without_program = session.get(Opportunity, with_aln)
    assert without_program is not None and without_program.cvi_score is not None
    assert without_program.cvi_score < score_with_program
    assert session.get(CviProgram, program.id).assistance_listings == []  # type: ignore[union-attr]
    assert session.scalars(select(AssistanceListing).where(AssistanceListing.number == "16.045")).one()
    trail = session.scalars(
        select(Curation).where(Curation.cvi_program_id == program.id).order_by(Curation.id)
    ).all()
    assert [(c.field, c.old_value, c.new_value, c.note) for c in trail] == [
        ("assistance_listings", [], ["16.045"], None),
        ("assistance_listings", ["16.045"], [], "moved"),
    ]
    assert other.id != program.id


def test_create_and_edit_a_program(
    session: Session, admin_client: AdminClient, rescored: list[list[int]]
) -> None:
    form = {
        "slug": "safe-streets",
        "name": "Safe Streets",
        "department": "hhs",
        "summary": "Youth violence prevention",
        "activities": "street outreach\nhospital-based violence intervention\n",
        "eligible_applicants": "Nonprofits",
        "source_url": "https://www.cdc.gov/",
        "last_verified": "2026-10-01",
    }
    response = admin_client.post("/admin/programs/new", form)
    assert response.status_code == 302
    program = session.scalars(select(CviProgram).where(CviProgram.slug == "safe-streets")).one()
    assert program.department == "HHS"
    assert program.activities == ["street outreach", "hospital-based violence intervention"]

    response = admin_client.post(f"/admin/programs/{program.id}", {**form, "name": "Safe Streets Initiative"})
    assert response.status_code == 302
    session.refresh(program)
    assert program.name == "Safe Streets Initiative"
    entries = session.scalars(
        select(Curation).where(Curation.cvi_program_id == program.id).order_by(Curation.id)
    ).all()
    assert [(e.action, e.field) for e in entries] == [("create", None), ("set field", "name")]
    assert (entries[1].old_value, entries[1].new_value) == ("Safe Streets", "Safe Streets Initiative")

    for change, message in [
        ({"slug": "Safe Streets"}, "lower-case letters"),
        ({"last_verified": "last week"}, "date like"),
        ({"summary": ""}, "Summary is required"),
        ({"source_url": "ftp://x"}, "must start with http"),
    ]:
        response = admin_client.post(f"/admin/programs/{program.id}", {**form, **change})
        assert response.status_code == 400 and message in response.get_data(as_text=True), change
    _program(session, "taken")
    response = admin_client.post("/admin/programs/new", {**form, "slug": "taken"})
    assert response.status_code == 400 and "is taken" in response.get_data(as_text=True)
    page = admin_client.get("/admin/programs").get_data(as_text=True)
    assert "Safe Streets Initiative" in page
