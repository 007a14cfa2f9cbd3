"""Grants.gov API crawl over real HTTP on 127.0.0.1: stored records field by field, and every fault."""

from __future__ import annotations

import datetime as dt
import gzip
import json
from typing import Any

from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app.models import CrawlError, CrawlPayload, CrawlRun, Opportunity, OpportunityVersion
from tests.crawlers.conftest import FakeServer, Reply, fixture_bytes, grants_gov_routes, json_reply

SEARCH = "/v1/api/search2"
DETAIL = "/v1/api/fetchOpportunity"


def crawl(app: Flask, *args: str) -> Any:
    runner: FlaskCliRunner = app.test_cli_runner()
    return runner.invoke(args=["crawl", "--source", "grants_gov", *args])


def stored(session: Session, source_id: str, source: str = "grants_gov") -> Opportunity:
    session.expire_all()
    row = session.scalar(
        select(Opportunity).where(Opportunity.source == source, Opportunity.source_id == source_id)
    )
    assert row is not None, f"{source}/{source_id} not stored"
    return row


def runs(session: Session) -> list[CrawlRun]:
    session.expire_all()
    return list(session.scalars(select(CrawlRun).order_by(CrawlRun.id)))


def errors(session: Session, run_id: int) -> list[CrawlError]:
    return list(
        session.scalars(select(CrawlError).where(CrawlError.run_id == run_id).order_by(CrawlError.id))
    )


def count(session: Session) -> int:
    session.expire_all()
    return int(session.scalar(select(func.count()).select_from(Opportunity)) or 0)


def test_full_crawl_stores_every_field(crawl_app: Flask, server: FakeServer, session: Session) -> None:
    grants_gov_routes(server)
    result = crawl(crawl_app)
    assert result.exit_code == 0, result.output + result.stderr
    assert "crawl finished: grants_gov succeeded (5 new" in result.output
    assert "grants_gov: " in result.stderr  # progress

    bja = stored(session, "350001")
    assert bja.number == "O-BJA-2026-172177"
    assert bja.title == (
        "BJA FY26 Community Based Violence Intervention and Prevention Initiative"
        " & Training and Technical Assistance"
    )
    assert (bja.department, bja.sub_agency, bja.agency_name) == (
        "DOJ",
        "USDOJ-OJP-BJA",
        "Bureau of Justice Assistance",
    )
    assert (bja.status, bja.doc_type) == ("posted", "synopsis")
    assert bja.post_date == dt.date(2026, 6, 7)
    assert bja.close_date == dt.date(2026, 7, 30)
    assert bja.archive_date == dt.date(2026, 8, 29)
    assert (bja.award_ceiling, bja.award_floor, bja.total_funding, bja.expected_awards) == (
        2_000_000,
        None,
        50_000_000,
        25,
    )
    assert bja.cost_sharing is False
    assert bja.eligibility_codes == ["01", "02", "07", "12"]
    assert bja.funding_instruments == ["G"] and bja.categories == ["LJL"] and bja.aln == ["16.045"]
    assert bja.opportunity_category == "D"
    assert bja.version == "Synopsis 2"
    assert bja.url == "https://www.grants.gov/search-results-detail/350001"
    assert bja.agency_url == "https://bja.ojp.gov/funding/opportunities/o-bja-2026-172177"
    assert bja.eligible_applicants and bja.eligible_applicants.startswith("Units of local government")
    assert bja.contact and "grants@ncjrs.gov" in bja.contact and "800-851-3420" in bja.contact
    # A description with <script>: sanitized HTML and plain text, no script, no handlers, no js: links.
    assert bja.description_html is not None
    assert "<script" not in bja.description_html and "stolen" not in bja.description_html
    assert "onclick" not in bja.description_html and "javascript:" not in bja.description_html
    assert "<strong>street outreach</strong>" in bja.description_html
    assert "stolen" not in bja.description and "<" not in bja.description
    assert "street outreach" in bja.description and "Grants.gov and the full application" in bja.description

    dol = stored(session, "350002")
    assert dol.department == "DOL" and dol.award_ceiling is None and dol.award_floor is None
    assert dol.total_funding is None and dol.expected_awards is None and dol.cost_sharing is True
    assert dol.funding_instruments == ["G", "CA"]
    assert dol.description_html == (
        "<p>The Employment and Training Administration announces approximately $25,000,000 for Young Adult "
        "Reentry Partnership projects serving young adults 18 to 24 involved in the justice system.</p>"
    )

    forecast = stored(session, "350003")
    assert (forecast.status, forecast.doc_type, forecast.department) == ("forecasted", "forecast", "HHS")
    assert forecast.title == "Community Firearm Violence Prevention Research\u2019s Next Phase"
    assert forecast.close_date == dt.date(2027, 1, 15)
    assert forecast.close_date_note == "Estimated; see the NOFO when posted."
    assert forecast.forecast_post_date == dt.date(2026, 11, 2)
    assert forecast.forecast_award_date == dt.date(2027, 8, 1)
    assert forecast.fiscal_year == 2027 and forecast.award_ceiling == 750_000 and forecast.award_floor is None
    assert forecast.version == "Forecast 1"

    education = stored(session, "350004")
    assert education.department == "ED"
    assert education.description_html and education.description_html.startswith("<p>Note: Each funding")
    assert education.description.startswith("Note: Each funding opportunity")

    # Only DOJ, DOL, ED and HHS are kept.
    assert session.scalar(select(Opportunity).where(Opportunity.source_id == "363293")) is None

    (run,) = runs(session)
    assert (run.source, run.status, run.mode) == ("grants_gov", "succeeded", "full")
    assert (run.fetched, run.new, run.updated, run.unchanged, run.failed) == (5, 5, 0, 0, 0)
    assert run.finished_at is not None and run.summary
    payloads = list(session.scalars(select(CrawlPayload).where(CrawlPayload.run_id == run.id)))
    assert len(payloads) == 7  # two search pages, five details
    details = [p for p in payloads if p.url.endswith("fetchOpportunity")]
    first = json.loads(gzip.decompress(details[0].body_gz))
    assert first["data"]["id"] in (350001, 350002, 350003, 350004, 350005)
    assert all(p.request_body for p in payloads)

    # Politeness: every request names the product and the contact address.
    agents = {r.headers.get("user-agent", "") for r in server.requests}
    assert all("CVI-Funding-Finder" in a and "crawler-test@example.org" in a for a in agents)
    body = server.calls("POST", SEARCH)[0].json()
    assert body["oppStatuses"] == "forecasted|posted"
    assert body["agencies"] == "USDOJ|DOL|ED|HHS"
    assert body["rows"] == 3 and body["startRecordNum"] == 0
    assert server.calls("POST", SEARCH)[1].json()["startRecordNum"] == 3


def test_unchanged_listing_skips_details_and_moved_close_date_writes_version(
    crawl_app: Flask, server: FakeServer, session: Session
) -> None:
    grants_gov_routes(server)
    assert crawl(crawl_app).exit_code == 0
    before = len(server.calls("POST", DETAIL))
    assert crawl(crawl_app).exit_code == 0
    assert len(server.calls("POST", DETAIL)) == before, "details fetched although no listing changed"
    second = runs(session)[-1]
    assert (second.new, second.updated, second.unchanged) == (0, 0, 5)

    # The BJA opportunity's close date moves: its listing changes, its details are fetched again.
    page1 = json.loads(fixture_bytes("grants_gov/search2_page1.json"))
    page1["data"]["oppHits"][0]["closeDate"] = "08/13/2026"
    detail = json.loads(fixture_bytes("grants_gov/fetchOpportunity_350001.json"))
    detail["data"]["synopsis"]["responseDate"] = "Aug 13, 2026 12:00:00 AM EDT"
    detail["data"]["synopsis"]["responseDateStr"] = "2026-08-13-00-00-00"
    detail["data"]["synopsis"]["version"] = 3
    grants_gov_routes(server, page1=Reply(body=json.dumps(page1).encode()))
    original = server.routes[("POST", DETAIL)]
    server.route(
        "POST",
        DETAIL,
        handler=lambda seen: (
            Reply(body=json.dumps(detail).encode())
            if seen.json()["opportunityId"] == 350001
            else original(seen)
        ),
    )
    assert crawl(crawl_app).exit_code == 0
    third = runs(session)[-1]
    assert (third.new, third.updated, third.unchanged) == (0, 1, 4)
    assert len(server.calls("POST", DETAIL)) == before + 1
    bja = stored(session, "350001")
    assert bja.close_date == dt.date(2026, 8, 13)
    version = session.scalar(select(OpportunityVersion).where(OpportunityVersion.opportunity_id == bja.id))
    assert version is not None
    assert "close_date" in version.changed_fields
    assert version.changes["close_date"] == {"old": "2026-07-30", "new": "2026-08-13"}
    assert version.crawl_run_id == third.id


def test_500_then_success_is_retried(crawl_app: Flask, server: FakeServer, session: Session) -> None:
    grants_gov_routes(server)
    good = server.routes[("POST", SEARCH)]
    attempts: list[int] = []

    def flaky(seen: Any) -> Reply:
        attempts.append(1)
        return (
            Reply(500, b"Internal Server Error", content_type="text/plain")
            if len(attempts) == 1
            else good(seen)
        )

    server.route("POST", SEARCH, handler=flaky)
    result = crawl(crawl_app)
    assert result.exit_code == 0, result.stderr
    (run,) = runs(session)
    assert run.status == "succeeded" and run.new == 5
    assert errors(session, run.id) == []
    assert len(attempts) == 3  # page 1 twice (500, then 200), page 2 once


def test_429_honours_retry_after(crawl_app: Flask, server: FakeServer, session: Session) -> None:
    from app.db import get_db
    from app.services import crawling
    from crawlers.http import HttpClient

    grants_gov_routes(server)
    good = server.routes[("POST", SEARCH)]
    calls: list[int] = []

    def limited(seen: Any) -> Reply:
        calls.append(1)
        if len(calls) == 1:
            return Reply(429, b"slow down", headers={"Retry-After": "7"}, content_type="text/plain")
        return good(seen)

    server.route("POST", SEARCH, handler=limited)
    slept: list[float] = []
    clients: list[HttpClient] = []

    def factory(config: Any, recorder: Any, log_session: Any) -> HttpClient:
        client = HttpClient(crawling.http_settings(config), archive=recorder.archive, sleep=slept.append)
        clients.append(client)
        return client

    with crawl_app.app_context():
        (result,) = crawling.run_crawl(
            session, get_db().session_factory, crawl_app.config, ["grants_gov"], http_factory=factory
        )
    assert result[1].status == "succeeded"
    assert 7.0 in slept, f"Retry-After not honoured: slept {slept}"
    assert len(calls) == 3


def test_search_timeout_records_error_and_keeps_store(
    crawl_app: Flask, server: FakeServer, session: Session
) -> None:
    grants_gov_routes(server)
    assert crawl(crawl_app, "--include-closed").exit_code == 0
    assert count(session) == 5
    server.route("POST", SEARCH, Reply(body=b"{}", delay=1.5))
    result = crawl(crawl_app, "--include-closed")
    assert result.exit_code == 1
    assert "FAILED: grants_gov" in result.output
    run = runs(session)[-1]
    assert run.status == "failed"
    (error,) = errors(session, run.id)
    assert error.kind == "timeout" and error.url and error.url.endswith(SEARCH)
    assert "within 0.5 s" in error.message and "after 3 attempts" in error.message
    assert count(session) == 5
    assert (
        session.scalar(
            select(func.count()).select_from(Opportunity).where(Opportunity.vanished_at.is_not(None))
        )
        == 0
    )


def test_detail_timeout_fails_one_record_only(crawl_app: Flask, server: FakeServer, session: Session) -> None:
    grants_gov_routes(server)
    good = server.routes[("POST", DETAIL)]
    server.route(
        "POST",
        DETAIL,
        handler=lambda seen: (
            Reply(body=b"{}", delay=1.5) if seen.json()["opportunityId"] == 350002 else good(seen)
        ),
    )
    result = crawl(crawl_app)
    assert result.exit_code == 0  # partial, not failed
    (run,) = runs(session)
    assert (run.status, run.new, run.failed) == ("partial", 4, 1)
    (error,) = errors(session, run.id)
    assert error.kind == "timeout" and error.record_id == "350002" and "FOA-ETA-26-05" in error.message


def test_connection_reset_on_second_page(crawl_app: Flask, server: FakeServer, session: Session) -> None:
    grants_gov_routes(server, page2=Reply(reset=True))
    result = crawl(crawl_app)
    assert result.exit_code == 0
    (run,) = runs(session)
    assert run.status == "partial" and run.new == 2
    (error,) = errors(session, run.id)
    assert error.kind == "connection" and "after 3 attempts" in error.message
    assert {o.source_id for o in session.scalars(select(Opportunity))} == {"350001", "350002"}


def test_truncated_json_keeps_what_was_stored(crawl_app: Flask, server: FakeServer, session: Session) -> None:
    grants_gov_routes(server)
    assert crawl(crawl_app).exit_code == 0
    session.execute(update(Opportunity).values(title="Kept by the store"))
    session.commit()
    body = fixture_bytes("grants_gov/search2_page1.json")
    grants_gov_routes(server, page1=Reply(body=body[: len(body) // 2]))
    result = crawl(crawl_app)
    assert result.exit_code == 1
    run = runs(session)[-1]
    assert run.status == "failed"
    (error,) = errors(session, run.id)
    assert error.kind == "fetch" and "not valid JSON" in error.message and error.url.endswith(SEARCH)
    assert count(session) == 5
    assert {o.title for o in session.scalars(select(Opportunity))} == {"Kept by the store"}


def test_http_200_with_error_code_is_an_error(crawl_app: Flask, server: FakeServer, session: Session) -> None:
    grants_gov_routes(server, page1=json_reply("grants_gov/search2_error.json"))
    result = crawl(crawl_app)
    assert result.exit_code == 1
    (run,) = runs(session)
    (error,) = errors(session, run.id)
    assert error.kind == "source"
    assert error.message == "Grants.gov API error 1: Invalid request: startRecordNum out of range"


def test_empty_result_where_records_expected_vanishes_nothing(
    crawl_app: Flask, server: FakeServer, session: Session
) -> None:
    grants_gov_routes(server)
    assert crawl(crawl_app, "--include-closed").exit_code == 0
    grants_gov_routes(server, page1=json_reply("grants_gov/search2_empty.json"))
    result = crawl(crawl_app, "--include-closed")
    assert result.exit_code == 1
    run = runs(session)[-1]
    assert (run.status, run.vanished) == ("failed", 0)
    (error,) = errors(session, run.id)
    assert error.kind == "empty_result" and "holds 5 active" in error.message
    assert (
        session.scalar(
            select(func.count()).select_from(Opportunity).where(Opportunity.vanished_at.is_not(None))
        )
        == 0
    )


def test_complete_full_run_marks_missing_records_vanished(
    crawl_app: Flask, server: FakeServer, session: Session
) -> None:
    grants_gov_routes(server)
    assert crawl(crawl_app, "--include-closed").exit_code == 0
    page2 = json.loads(fixture_bytes("grants_gov/search2_page2.json"))
    page2["data"]["oppHits"] = page2["data"]["oppHits"][:2]
    page2["data"]["hitCount"] = 5
    page1 = json.loads(fixture_bytes("grants_gov/search2_page1.json"))
    page1["data"]["hitCount"] = 5
    grants_gov_routes(
        server, page1=Reply(body=json.dumps(page1).encode()), page2=Reply(body=json.dumps(page2).encode())
    )
    # An incremental run never vanishes anything.
    assert crawl(crawl_app, "--since", "7").exit_code == 0
    assert runs(session)[-1].vanished == 0
    assert crawl(crawl_app, "--include-closed").exit_code == 0
    run = runs(session)[-1]
    assert (run.status, run.vanished) == ("succeeded", 1)
    assert stored(session, "350005").vanished_at is not None
    assert stored(session, "350001").vanished_at is None
    assert server.calls("POST", SEARCH)[2].json()["dateRange"] == "7"


def test_robots_txt_disallow_is_recorded(crawl_app: Flask, server: FakeServer, session: Session) -> None:
    grants_gov_routes(server)
    server.route(
        "GET", "/robots.txt", Reply(body=b"User-agent: *\nDisallow: /v1/api/\n", content_type="text/plain")
    )
    result = crawl(crawl_app)
    assert result.exit_code == 1
    (run,) = runs(session)
    (error,) = errors(session, run.id)
    assert error.kind == "robots" and "disallows" in error.message
    assert server.calls("POST", SEARCH) == []


def test_reparse_archived_run_without_network(crawl_app: Flask, server: FakeServer, session: Session) -> None:
    grants_gov_routes(server)
    assert crawl(crawl_app).exit_code == 0
    (original,) = runs(session)
    # A parser bug "lost" descriptions; the fix is deployed; the source is down meanwhile.
    session.execute(update(Opportunity).values(description="", description_html=None, content_hash="0" * 64))
    session.commit()
    server.route("POST", SEARCH, Reply(500, b"down", content_type="text/plain"))
    server.route("POST", DETAIL, Reply(500, b"down", content_type="text/plain"))
    requests_before = len(server.requests)
    result = crawl_app.test_cli_runner().invoke(args=["crawl", "--reparse", str(original.id)])
    assert result.exit_code == 0, result.output + result.stderr
    assert len(server.requests) == requests_before, "reparse went to the network"
    reparse = runs(session)[-1]
    assert (reparse.mode, reparse.reparse_of_id, reparse.status) == ("reparse", original.id, "succeeded")
    assert (reparse.updated, reparse.new) == (5, 0)
    assert stored(session, "350001").description.startswith("The Community Based Violence Intervention")
    unknown = crawl_app.test_cli_runner().invoke(args=["crawl", "--reparse", "9999"])
    assert unknown.exit_code != 0 and "no crawl run 9999" in unknown.output


def test_failing_batch_is_rolled_back_and_others_kept(
    crawl_app: Flask, server: FakeServer, session: Session, monkeypatch: Any
) -> None:
    from app.services import crawling

    grants_gov_routes(server)
    real = crawling.upsert_many
    batches: list[int] = []

    def failing(db: Session, records: Any, **kwargs: Any) -> Any:
        batches.append(len(records))
        result = real(db, records, **kwargs)
        if len(batches) == 2:
            raise RuntimeError("disk full")
        return result

    monkeypatch.setattr(crawling, "upsert_many", failing)
    result = crawl(crawl_app)
    assert result.exit_code == 0
    (run,) = runs(session)
    assert run.status == "partial"
    (error,) = errors(session, run.id)
    assert error.kind == "store" and "rolled back" in error.message and "disk full" in error.message
    # Batches of 2: the first and third are stored, the second (rolled back) left nothing behind.
    assert count(session) == 3
    assert run.new == 3 and run.failed == 2
