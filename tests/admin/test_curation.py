"""Curating opportunities: CVI decisions, corrections kept by crawls, merges, hand-added records, audit."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import (
    Curation,
    MatchDismissal,
    Opportunity,
    OpportunityCode,
    OpportunityVersion,
    ProgramProfile,
    TrackedOpportunity,
)
from app.services.opportunities import upsert_many
from tests.admin.conftest import AdminClient
from tests.factories import record


def _one(session: Session, **overrides: Any) -> Opportunity:
    result = upsert_many(session, [record(**overrides)])
    session.commit()
    opp = session.get(Opportunity, (result.new_ids or result.updated_ids)[0])
    assert opp is not None
    return opp


def test_confirm_reject_and_clear_cvi(session: Session, admin_client: AdminClient) -> None:
    opp = _one(session)
    opp.cvi_score, opp.cvi_classified, opp.cvi_eligible = 0.42, False, False
    session.commit()

    response = admin_client.post(
        f"/admin/opportunities/{opp.id}/cvi", {"decision": "confirm", "note": "BJA confirmed by phone"}
    )
    assert response.status_code == 302
    session.refresh(opp)
    assert (opp.cvi_override, opp.cvi_eligible) == (True, True)
    assert opp.reviewed_by_id == admin_client.user.id and opp.reviewed_at is not None
    page = admin_client.get(f"/admin/opportunities/{opp.id}").get_data(as_text=True)
    assert "Reviewed by admin@example.org" in page

    admin_client.post(f"/admin/opportunities/{opp.id}/cvi", {"decision": "reject"})
    session.refresh(opp)
    assert (opp.cvi_override, opp.cvi_eligible) == (False, False)

    admin_client.post(f"/admin/opportunities/{opp.id}/cvi/clear", {"note": "let the classifier decide"})
    session.refresh(opp)
    assert opp.cvi_override is None and opp.reviewed_by_id is None
    assert opp.cvi_eligible is bool(opp.cvi_classified)  # back to the classifier's verdict

    trail = session.scalars(
        select(Curation).where(Curation.opportunity_id == opp.id).order_by(Curation.id)
    ).all()
    assert [(c.action, c.old_value, c.new_value) for c in trail] == [
        ("confirm cvi", None, True),
        ("reject cvi", True, False),
        ("clear cvi", False, None),
    ]
    assert trail[0].note == "BJA confirmed by phone" and trail[0].user_id == admin_client.user.id


def test_bad_decisions_are_refused_with_400(session: Session, admin_client: AdminClient) -> None:
    opp = _one(session)
    response = admin_client.post(f"/admin/opportunities/{opp.id}/cvi", {"decision": "maybe"})
    assert response.status_code == 400 and "choose confirm or reject" in response.get_data(as_text=True)
    response = admin_client.post(f"/admin/opportunities/{opp.id}/cvi/clear")
    assert response.status_code == 400 and "no CVI decision" in response.get_data(as_text=True)
    assert admin_client.post("/admin/opportunities/99999/cvi", {"decision": "confirm"}).status_code == 404
    assert session.scalars(select(Curation)).all() == []


def test_corrections_survive_a_recrawl_that_changes_the_same_opportunity(
    session: Session, admin_client: AdminClient
) -> None:
    opp = _one(session)
    edits = {
        "title": "Community Violence Intervention and Prevention Initiative (CVIPI) FY2026",
        "close_date": "2027-01-15",
        "award_ceiling": "$2,500,000",
        "eligible_applicants": "Units of local government and nonprofits with a public-health partner",
    }
    for field, value in edits.items():
        response = admin_client.post(f"/admin/opportunities/{opp.id}/field", {"field": field, "value": value})
        assert response.status_code == 302, response.get_data(as_text=True)
    admin_client.post(
        f"/admin/opportunities/{opp.id}/tags", {"tags": "Street outreach, HVIP, street outreach"}
    )
    admin_client.post(f"/admin/opportunities/{opp.id}/flags", {"flag": "featured", "value": "1"})

    # The source changes every one of those fields, and one the admin did not touch.
    changed = record(
        title="CVIPI (source title)",
        close_date="2026-12-31",
        award_ceiling=1_000_000,
        eligible_applicants="Cities only",
        total_funding=50_000_000,
    )
    result = upsert_many(session, [changed])
    session.commit()
    assert result.updated_ids == [opp.id]
    session.expire_all()
    opp = session.get(Opportunity, opp.id)
    assert opp is not None
    assert opp.title == edits["title"]
    assert opp.close_date == dt.date(2027, 1, 15)
    assert opp.award_ceiling == 2_500_000
    assert opp.eligible_applicants == edits["eligible_applicants"]
    assert opp.total_funding == 50_000_000  # not curated: follows the source
    assert opp.focus_tags == ["street outreach", "hvip"] and opp.featured is True
    version = session.scalars(
        select(OpportunityVersion).where(OpportunityVersion.opportunity_id == opp.id)
    ).one()
    assert version.changed_fields == ["total_funding"]
    assert set(version.kept_curated) == {"title", "close_date", "award_ceiling", "eligible_applicants"}

    # Released, the field follows the source again at the next change.
    admin_client.post(f"/admin/opportunities/{opp.id}/release", {"field": "title"})
    upsert_many(session, [changed.model_copy(update={"title": "CVIPI FY2026 (source, again)"})])
    session.commit()
    session.refresh(opp)
    assert opp.title == "CVIPI FY2026 (source, again)"
    assert opp.close_date == dt.date(2027, 1, 15)


def test_correcting_a_description_drops_the_source_html_for_good(
    session: Session, admin_client: AdminClient
) -> None:
    opp = _one(session, description_html="<p>Vague text</p>")
    admin_client.post(
        f"/admin/opportunities/{opp.id}/field", {"field": "description", "value": "Funds street outreach."}
    )
    upsert_many(session, [record(description="Changed", description_html="<p>Changed</p>")])
    session.commit()
    session.refresh(opp)
    assert (opp.description, opp.description_html) == ("Funds street outreach.", None)


def test_field_corrections_are_validated(session: Session, admin_client: AdminClient) -> None:
    opp = _one(session)
    cases = {
        ("close_date", "next friday"): "must be a date",
        ("award_ceiling", "-5"): "whole, non-negative number",
        ("url", "javascript:alert(1)"): "must start with http",
        ("title", ""): "cannot be empty",
        ("aln", "16.45"): "not an assistance listing number",
        ("status", "open"): "status must be",
        ("cvi_score", "1"): "not a field admins can correct",
    }
    for (field, value), message in cases.items():
        response = admin_client.post(f"/admin/opportunities/{opp.id}/field", {"field": field, "value": value})
        assert response.status_code == 400, field
        assert message in response.get_data(as_text=True), field
    session.refresh(opp)
    assert opp.curated_fields == []


def test_aln_correction_updates_search_codes(session: Session, admin_client: AdminClient) -> None:
    opp = _one(session)
    admin_client.post(f"/admin/opportunities/{opp.id}/field", {"field": "aln", "value": "16.123, 93.243a"})
    codes = session.scalars(
        select(OpportunityCode.code).where(
            OpportunityCode.opportunity_id == opp.id, OpportunityCode.kind == "aln"
        )
    ).all()
    assert sorted(codes) == ["16.123", "93.243A"]


def test_merge_redirects_the_duplicate_and_keeps_both_histories(
    session: Session, admin_client: AdminClient, make_user: Any
) -> None:
    target = _one(session, id="grants-1", source="grants_gov")
    duplicate = _one(session, id="bja-1", source="ojp", title="CVIPI (BJA page)")
    upsert_many(session, [record(id="grants-1", source="grants_gov", award_ceiling=3_000_000)])
    upsert_many(
        session, [record(id="bja-1", source="ojp", title="CVIPI (BJA page)", close_date="2026-12-20")]
    )
    session.commit()
    # Two organizations track the duplicate; one of them already tracks the target too.
    both = make_user().organization
    only_duplicate = make_user().organization
    session.add_all(
        [
            TrackedOpportunity(organization_id=both.id, opportunity_id=target.id, notes="target"),
            TrackedOpportunity(organization_id=both.id, opportunity_id=duplicate.id, notes="dup"),
            TrackedOpportunity(organization_id=only_duplicate.id, opportunity_id=duplicate.id, notes="moves"),
        ]
    )
    profile = ProgramProfile(name="Outreach", org_type="nonprofit", program_description="Street outreach")
    session.add(profile)
    session.flush()
    session.add(MatchDismissal(profile_id=profile.id, opportunity_id=duplicate.id, reason="duplicate"))
    session.commit()
    admin_client.post(f"/admin/opportunities/{duplicate.id}/tags", {"tags": "hvip"})

    response = admin_client.post(
        f"/admin/opportunities/{duplicate.id}/merge", {"target_id": f"#{target.id}", "note": "same NOFO"}
    )
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/admin/opportunities/{target.id}")
    session.expire_all()
    assert session.get(Opportunity, duplicate.id).merged_into_id == target.id  # type: ignore[union-attr]
    # Both histories stay on their own rows, and the target's admin page shows both.
    assert {v.opportunity_id for v in session.scalars(select(OpportunityVersion))} == {
        target.id,
        duplicate.id,
    }
    page = admin_client.get(f"/admin/opportunities/{target.id}").get_data(as_text=True)
    assert f"#{duplicate.id}</td>" in page and f"#{target.id}</td>" in page
    assert "2026-12-20" in page and "3000000" in page
    # The public page of the duplicate leads to the surviving record.
    public = admin_client.get(f"/opportunities/{duplicate.id}")
    assert public.status_code in (301, 308)
    assert public.headers["Location"].endswith(f"/opportunities/{target.id}")
    # Tracking and dismissals move where the unique constraints allow; nothing is lost.
    tracked = {
        (t.organization_id, t.opportunity_id, t.notes) for t in session.scalars(select(TrackedOpportunity))
    }
    assert tracked == {
        (both.id, target.id, "target"),
        (both.id, duplicate.id, "dup"),
        (only_duplicate.id, target.id, "moves"),
    }
    assert session.scalars(select(MatchDismissal.opportunity_id)).one() == target.id
    moved = session.scalars(select(Curation).where(Curation.action == "set tags")).one()
    assert moved.opportunity_id == target.id
    merges = session.scalars(select(Curation).where(Curation.action == "merge")).all()
    assert {(m.opportunity_id, m.field, m.new_value) for m in merges} == {
        (duplicate.id, "merged_into_id", target.id),
        (target.id, "merged_from", duplicate.id),
    }
    # A crawl of the duplicate's source still updates its own row, which stays merged.
    upsert_many(session, [record(id="bja-1", source="ojp", title="CVIPI (BJA page) v3")])
    session.commit()
    session.expire_all()
    assert session.get(Opportunity, duplicate.id).merged_into_id == target.id  # type: ignore[union-attr]


def test_merge_refuses_bad_targets(session: Session, admin_client: AdminClient) -> None:
    a = _one(session, id="a")
    b = _one(session, id="b")
    c = _one(session, id="c")
    assert (
        admin_client.post(f"/admin/opportunities/{a.id}/merge", {"target_id": str(a.id)}).status_code == 400
    )
    assert admin_client.post(f"/admin/opportunities/{a.id}/merge", {"target_id": "x"}).status_code == 400
    assert admin_client.post(f"/admin/opportunities/{a.id}/merge", {"target_id": "99999"}).status_code == 400
    assert (
        admin_client.post(f"/admin/opportunities/{a.id}/merge", {"target_id": str(b.id)}).status_code == 302
    )
    response = admin_client.post(f"/admin/opportunities/{c.id}/merge", {"target_id": str(a.id)})
    assert response.status_code == 400 and "merge into that one" in response.get_data(as_text=True)


def test_add_an_opportunity_by_hand(session: Session, admin_client: AdminClient) -> None:
    response = admin_client.post(
        "/admin/opportunities/new",
        {
            "agency": "IL",
            "agency_name": "Illinois Criminal Justice Information Authority",
            "title": "Reimagine Public Safety Act pass-through grants",
            "description": "State pass-through of federal and state funds for violence prevention programs.",
            "status": "posted",
            "close_date": "2027-02-01",
            "award_ceiling": "750,000",
            "aln": "16.045",
            "url": "https://icjia.illinois.gov/grants",
            "cvi": "confirm",
            "note": "from the ICJIA NOFO list",
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    opp = session.scalars(select(Opportunity).where(Opportunity.source == "manual")).one()
    assert opp.department == "IL" and opp.award_ceiling == 750_000 and opp.close_date == dt.date(2027, 2, 1)
    assert opp.cvi_override is True and opp.cvi_eligible is True
    assert {"title", "close_date", "award_ceiling", "description", "department"} <= set(opp.curated_fields)
    actions = session.scalars(select(Curation.action).where(Curation.opportunity_id == opp.id)).all()
    assert sorted(actions) == ["confirm cvi", "create"]

    response = admin_client.post(
        "/admin/opportunities/new", {"agency": "HHS", "title": "", "description": "x"}
    )
    assert response.status_code == 400 and "Title cannot be empty" in response.get_data(as_text=True)
    response = admin_client.post(
        "/admin/opportunities/new", {"agency": "HHS", "title": "T", "description": "D", "award_floor": "lots"}
    )
    assert response.status_code == 400 and "whole, non-negative number" in response.get_data(as_text=True)
    assert len(session.scalars(select(Opportunity).where(Opportunity.source == "manual")).all()) == 1


def test_the_audit_log_records_every_edit_old_to_new(session: Session, admin_client: AdminClient) -> None:
    opp = _one(session)
    other = _one(session, id="other")
    admin_client.post(f"/admin/opportunities/{opp.id}/cvi", {"decision": "confirm", "note": "clearly CVI"})
    admin_client.post(f"/admin/opportunities/{opp.id}/tags", {"tags": "hvip"})
    admin_client.post(f"/admin/opportunities/{opp.id}/flags", {"flag": "hidden", "value": "1"})
    admin_client.post(f"/admin/opportunities/{opp.id}/field", {"field": "award_ceiling", "value": "2500000"})
    admin_client.post(f"/admin/opportunities/{other.id}/flags", {"flag": "featured", "value": "1"})

    entries = session.scalars(
        select(Curation).where(Curation.opportunity_id == opp.id).order_by(Curation.id)
    ).all()
    assert [(e.action, e.field, e.old_value, e.new_value) for e in entries] == [
        ("confirm cvi", "cvi_override", None, True),
        ("set tags", "focus_tags", [], ["hvip"]),
        ("hide", "hidden", False, True),
        ("set field", "award_ceiling", 2_000_000, 2_500_000),
    ]
    assert all(e.user_id == admin_client.user.id and e.created_at is not None for e in entries)

    page = admin_client.get(f"/admin/audit?opportunity={opp.id}").get_data(as_text=True)
    assert "2000000 → 2500000" in page and "clearly CVI" in page and "admin@example.org" in page
    assert f"opportunity #{other.id}" not in page
    everything = admin_client.get(f"/admin/audit?user={admin_client.user.id}").get_data(as_text=True)
    assert f"opportunity #{other.id}" in everything
    assert "Nothing recorded" in admin_client.get("/admin/audit?user=99999").get_data(as_text=True)


def test_csrf_is_enforced_on_admin_forms(session: Session, admin_client: AdminClient) -> None:
    opp = _one(session)
    assert admin_client.client.application.config["WTF_CSRF_ENABLED"] is True
    response = admin_client.client.post(f"/admin/opportunities/{opp.id}/cvi", data={"decision": "confirm"})
    assert response.status_code == 400
    response = admin_client.client.post(
        f"/admin/opportunities/{opp.id}/cvi", data={"decision": "confirm", "csrf_token": "forged"}
    )
    assert response.status_code == 400
    session.refresh(opp)
    assert opp.cvi_override is None
    assert admin_client.post(f"/admin/opportunities/{opp.id}/cvi", {"decision": "confirm"}).status_code == 302
