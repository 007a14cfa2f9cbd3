"""The upsert service: insert, version on change, skip unchanged, keep curation, never delete."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import Opportunity, OpportunityCode, OpportunityStatus, OpportunityVersion
from app.services.opportunities import CHANGED_KEY, mark_vanished, upsert, upsert_many
from tests.factories import CLOSE_DATE, record

T0 = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)
T1 = dt.datetime(2026, 11, 2, 12, 0, tzinfo=dt.UTC)
T2 = dt.datetime(2026, 11, 3, 12, 0, tzinfo=dt.UTC)


def stored(session: Session, source_id: str = "opp-1") -> Opportunity:
    opportunity = session.scalar(select(Opportunity).where(Opportunity.source_id == source_id))
    assert opportunity is not None
    return opportunity


def test_insert_new_record_with_codes(session: Session) -> None:
    result = upsert(session, record(), now=T0)
    assert set(result.new_ids) <= session.info[CHANGED_KEY]
    session.commit()
    assert (result.new, result.updated, result.unchanged) == (1, 0, 0)
    opp = stored(session)
    assert opp.title == "Community Violence Intervention Site-Based Grants"
    assert opp.department == "DOJ"
    assert opp.status == OpportunityStatus.POSTED
    assert opp.close_date == CLOSE_DATE
    assert opp.award_ceiling == 2_000_000
    assert opp.first_seen == T0 and opp.last_seen == T0
    assert opp.agency_id is not None
    codes = {(c.kind, c.code) for c in session.scalars(select(OpportunityCode))}
    assert codes == {
        ("aln", "16.045"),
        ("eligibility", "01"),
        ("eligibility", "02"),
        ("eligibility", "12"),
        ("instrument", "G"),
        ("category", "LJL"),
    }
    assert session.scalar(select(func.count()).select_from(OpportunityVersion)) == 0
    assert result.new_ids == [opp.id]
    assert len(opp.content_hash) == 64


def test_changed_record_writes_version_naming_fields(session: Session) -> None:
    upsert(session, record(), now=T0)
    session.commit()
    result = upsert(session, record(close_date="2027-01-20", award_ceiling=2_500_000), now=T1)
    session.commit()
    assert (result.new, result.updated, result.unchanged) == (0, 1, 0)
    opp = stored(session)
    assert opp.close_date == dt.date(2027, 1, 20)
    assert opp.updated_at == T1
    versions = list(session.scalars(select(OpportunityVersion)))
    assert len(versions) == 1
    version = versions[0]
    assert version.changed_fields == ["award_ceiling", "close_date"]
    assert version.changes["close_date"] == {"old": CLOSE_DATE.isoformat(), "new": "2027-01-20"}
    assert version.changes["award_ceiling"] == {"old": 2_000_000, "new": 2_500_000}
    assert version.changed_at == T1
    assert version.previous_hash != version.content_hash == opp.content_hash


def test_unchanged_record_is_left_untouched(session: Session) -> None:
    upsert(session, record(), now=T0)
    session.commit()
    before = stored(session)
    hash_before, updated_before = before.content_hash, before.updated_at
    result = upsert(session, record(), now=T1)
    session.commit()
    session.expire_all()
    after = stored(session)
    assert (result.new, result.updated, result.unchanged) == (0, 0, 1)
    assert after.content_hash == hash_before
    assert after.updated_at == updated_before
    assert after.last_seen == T1
    assert session.scalar(select(func.count()).select_from(OpportunityVersion)) == 0


def test_curated_fields_survive_a_changed_crawl(session: Session) -> None:
    upsert(session, record(), now=T0)
    session.commit()
    opp = stored(session)
    opp.title = "CVIPI: Site-Based (corrected by an admin)"
    opp.curated_fields = ["title"]
    session.commit()
    result = upsert(session, record(title="Renamed at the source", close_date="2027-02-01"), now=T1)
    session.commit()
    session.expire_all()
    opp = stored(session)
    assert result.updated == 1
    assert opp.title == "CVIPI: Site-Based (corrected by an admin)"
    assert opp.close_date == dt.date(2027, 2, 1)
    version = session.scalars(select(OpportunityVersion)).one()
    assert version.changed_fields == ["close_date"]
    assert version.kept_curated == ["title"]


def test_only_curated_field_changes_write_no_version(session: Session) -> None:
    upsert(session, record(), now=T0)
    session.commit()
    opp = stored(session)
    opp.title = "Admin title"
    opp.curated_fields = ["title"]
    session.commit()
    result = upsert(session, record(title="Source retitled it"), now=T1)
    session.commit()
    assert (result.updated, result.unchanged) == (0, 1)
    assert stored(session).title == "Admin title"
    assert session.scalar(select(func.count()).select_from(OpportunityVersion)) == 0


def test_vanished_records_are_marked_not_deleted_and_can_return(session: Session) -> None:
    upsert_many(session, [record(), record(id="opp-2", number="O-OJP-2026-0002")], now=T0)
    session.commit()
    upsert_many(session, [record()], now=T1)
    marked = mark_vanished(session, "test", seen_since=T1, now=T1)
    session.commit()
    assert marked == 1
    gone = stored(session, "opp-2")
    assert gone.vanished_at == T1
    assert stored(session).vanished_at is None
    assert session.scalar(select(func.count()).select_from(Opportunity)) == 2
    version = session.scalars(
        select(OpportunityVersion).where(OpportunityVersion.opportunity_id == gone.id)
    ).one()
    assert version.changed_fields == ["vanished"]
    # Marking again is a no-op; seeing it again clears the mark with a version row.
    assert mark_vanished(session, "test", seen_since=T1, now=T1) == 0
    result = upsert(session, record(id="opp-2", number="O-OJP-2026-0002"), now=T2)
    session.commit()
    session.expire_all()
    assert result.updated == 1
    assert stored(session, "opp-2").vanished_at is None
    versions = list(
        session.scalars(select(OpportunityVersion).where(OpportunityVersion.opportunity_id == gone.id))
    )
    assert [v.changed_fields for v in versions] == [["vanished"], ["vanished"]]


def test_code_rows_follow_a_change(session: Session) -> None:
    upsert(session, record(), now=T0)
    session.commit()
    upsert(session, record(aln=["16.045", "16.738"], eligibility_codes=["12"]), now=T1)
    session.commit()
    codes = {(c.kind, c.code) for c in session.scalars(select(OpportunityCode))}
    assert ("aln", "16.738") in codes
    assert ("eligibility", "01") not in codes
    assert ("eligibility", "12") in codes


def test_status_is_derived_when_the_source_gives_none(session: Session) -> None:
    upsert_many(
        session,
        [
            record(id="a", status=None, close_date="2026-10-01"),
            record(id="b", status=None, close_date="2027-03-01"),
            record(id="c", status=None, close_date=None, doc_type="forecast"),
        ],
        now=T0,
    )
    session.commit()
    assert stored(session, "a").status == OpportunityStatus.CLOSED
    assert stored(session, "b").status == OpportunityStatus.POSTED
    assert stored(session, "c").status == OpportunityStatus.FORECASTED


def test_same_source_id_from_two_sources_are_two_records(session: Session) -> None:
    result = upsert_many(session, [record(), record(source="other")], now=T0)
    session.commit()
    assert result.new == 2
