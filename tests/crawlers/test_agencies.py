"""Agency sources (OJP, DOL ETA, ED forecast, SAMHSA) over real HTTP, merging with Grants.gov, export."""

from __future__ import annotations

import datetime as dt
import json

from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import CrawlError, CrawlRun, Opportunity, OpportunityVersion
from tests.crawlers.conftest import FakeServer, Reply, agency_routes, grants_gov_routes, html_reply


def crawl(app: Flask, *sources: str) -> tuple[int, str]:
    args = ["crawl"]
    for source in sources:
        args += ["--source", source]
    result = app.test_cli_runner().invoke(args=args)
    return result.exit_code, result.output + result.stderr


def rows(session: Session, source: str) -> dict[str, Opportunity]:
    session.expire_all()
    return {o.source_id: o for o in session.scalars(select(Opportunity).where(Opportunity.source == source))}


def last_run(session: Session, source: str) -> CrawlRun:
    session.expire_all()
    run = session.scalar(select(CrawlRun).where(CrawlRun.source == source).order_by(CrawlRun.id.desc()))
    assert run is not None
    return run


def test_ojp_feed_two_deadlines(crawl_app: Flask, server: FakeServer, session: Session) -> None:
    agency_routes(server)
    code, output = crawl(crawl_app, "ojp")
    assert code == 0, output
    stored = rows(session, "ojp")
    cvi = stored["O-BJA-2026-172177"]
    assert cvi.number == "O-BJA-2026-172177" and cvi.department == "DOJ" and cvi.sub_agency == "USDOJ-OJP-BJA"
    assert cvi.close_date == dt.date(2026, 7, 30)
    assert cvi.second_close_date == dt.date(2026, 8, 6)
    assert cvi.second_close_date_label == "JustGrants application deadline (step 2)"
    assert cvi.close_date_note and "JustGrants by August 6, 2026" in cvi.close_date_note
    assert cvi.fiscal_year == 2026 and cvi.status == "posted"
    # base64 + double-escaped HTML body decoded and sanitized.
    assert cvi.description.startswith("With this solicitation, BJA seeks to support community-based violence")
    assert "&amp;" not in cvi.description and "& prevention" in cvi.description
    assert cvi.description_html and cvi.description_html.startswith("<p>With this solicitation")
    scip = stored["O-BJA-2026-172582"]
    assert scip.url == f"{server.url}/funding/opportunities/o-bja-2026-172582"


def test_ojp_falls_back_to_listing_when_feed_fails(
    crawl_app: Flask, server: FakeServer, session: Session
) -> None:
    agency_routes(server)
    server.route(
        "GET", "/funding-api/current_funding_data", Reply(503, b"maintenance", content_type="text/plain")
    )
    code, output = crawl(crawl_app, "ojp")
    assert code == 0, output
    run = last_run(session, "ojp")
    assert run.status == "partial" and run.new == 2
    (error,) = session.scalars(select(CrawlError).where(CrawlError.run_id == run.id))
    assert error.kind == "http_status" and "reading the HTML listing instead" in error.message
    cvi = rows(session, "ojp")["O-BJA-2026-172177"]
    assert (cvi.close_date, cvi.second_close_date) == (dt.date(2026, 7, 30), dt.date(2026, 8, 6))


def test_dol_eta_page_and_layout_change(crawl_app: Flask, server: FakeServer, session: Session) -> None:
    agency_routes(server)
    code, output = crawl(crawl_app, "dol_eta")
    assert code == 0, output
    stored = rows(session, "dol_eta")
    assert set(stored) == {"FOA-ETA-26-05", "TEGL-02-26"}
    yarp = stored["FOA-ETA-26-05"]
    assert yarp.title == "Young Adult Reentry Partnership (YARP)" and yarp.department == "DOL"
    assert (yarp.post_date, yarp.close_date) == (dt.date(2026, 5, 1), dt.date(2026, 9, 24))
    assert yarp.agency_url == f"{server.url}/sites/dolgov/files/ETA/grants/FOA-ETA-26-05.pdf"
    assert yarp.description.startswith("The Employment and Training Administration (ETA) announces")
    assert "Webcast" not in yarp.description
    tegl = stored["TEGL-02-26"]
    assert tegl.close_date == dt.date(2026, 10, 5) and tegl.title == "Industry-Driven Skills Training Fund"
    assert "skills.fund@dol.gov" in tegl.description

    # The page is redesigned: an error, and nothing stored is lost or vanished.
    server.route("GET", "/eta/find-opportunities", html_reply("dol_eta/find_opportunities_redesigned.html"))
    code, output = crawl(crawl_app, "dol_eta")
    assert code == 1 and "FAILED: dol_eta" in output
    run = last_run(session, "dol_eta")
    assert (run.status, run.vanished) == ("failed", 0)
    (error,) = session.scalars(select(CrawlError).where(CrawlError.run_id == run.id))
    assert error.kind == "layout" and error.url == f"{server.url}/eta/find-opportunities"
    assert all(o.vanished_at is None for o in rows(session, "dol_eta").values())


def test_ed_forecast_chart_rows(crawl_app: Flask, server: FakeServer, session: Session) -> None:
    agency_routes(server)
    code, output = crawl(crawl_app, "ed_forecast")
    assert code == 0, output
    stored = rows(session, "ed_forecast")
    assert set(stored) == {"ED-FY2026-84.184H", "ED-FY2026-84.184N", "ED-FY2026-84.051D"}
    mental = stored["ED-FY2026-84.184H"]
    assert mental.title == "School-Based Mental Health Services Grant Program"
    assert (
        mental.sub_agency == "ED-OESE"
        and mental.agency_name == "Office of Elementary and Secondary Education"
    )
    assert mental.aln == ["84.184"] and mental.fiscal_year == 2026 and mental.doc_type == "forecast"
    assert mental.post_date == dt.date(2026, 6, 15) and mental.close_date == dt.date(2026, 8, 14)
    assert (mental.total_funding, mental.award_floor, mental.award_ceiling, mental.expected_awards) == (
        140_000_000,
        500_000,
        3_000_000,
        50,
    )
    assert mental.contact == "Amy Banks, 202-453-6704"
    assert mental.close_date_note and "intergovernmental review: 10/13/2026" in mental.close_date_note
    stronger = stored["ED-FY2026-84.184N"]
    assert stronger.forecast_post_date == dt.date(2026, 10, 1) and stronger.post_date is None
    assert (stronger.award_floor, stronger.award_ceiling) == (None, 1_500_000)
    reentry = stored["ED-FY2026-84.051D"]
    assert reentry.sub_agency == "ED-OCTAE" and reentry.close_date is None and reentry.status == "forecasted"
    assert reentry.total_funding == 3_000_000 and reentry.expected_awards == 3


def test_samhsa_nofos_and_conditional_get(crawl_app: Flask, server: FakeServer, session: Session) -> None:
    agency_routes(server)
    code, output = crawl(crawl_app, "samhsa")
    assert code == 0, output
    stored = rows(session, "samhsa")
    crisis = stored["SM-26-011"]
    assert (
        crisis.title == "Strengthening Community Crisis Response Systems" and crisis.sub_agency == "HHS-SAMHS"
    )
    assert (crisis.post_date, crisis.close_date) == (dt.date(2026, 4, 20), dt.date(2026, 6, 20))
    assert crisis.aln == ["93.243"] and crisis.funding_instruments == ["G"]
    assert (crisis.total_funding, crisis.expected_awards, crisis.award_ceiling) == (15_000_000, 20, 750_000)
    assert crisis.description.startswith("The purpose of this program is to strengthen")
    assert crisis.eligible_applicants and crisis.eligible_applicants.startswith(
        "Eligible applicants are states"
    )
    cvi = stored["TI-26-004"]
    assert cvi.funding_instruments == ["CA"] and (cvi.award_floor, cvi.award_ceiling) == (500_000, 800_000)

    # Second run: the server answers 304 to the validators it handed out; nothing changes.
    def conditional(slug: str):
        def handler(seen):
            if seen.headers.get("if-none-match") == f'"{slug}-v1"':
                return Reply(304, b"", headers={"ETag": f'"{slug}-v1"'})
            return html_reply(f"samhsa/{slug}.html", headers={"ETag": f'"{slug}-v1"'})

        return handler

    for slug in ("sm-26-011", "ti-26-004"):
        server.route("GET", f"/grants/grant-announcements/{slug}", handler=conditional(slug))
    code, output = crawl(crawl_app, "samhsa")
    assert code == 0, output
    run = last_run(session, "samhsa")
    assert (run.status, run.new, run.updated, run.unchanged) == ("succeeded", 0, 0, 2)
    assert server.calls("GET", "/grants/grant-announcements/sm-26-011")[-1].headers["if-none-match"] == (
        '"sm-26-011-v1"'
    )


def test_agency_records_merge_into_grants_gov_and_export_once(
    crawl_app: Flask, server: FakeServer, session: Session
) -> None:
    grants_gov_routes(server)
    agency_routes(server)
    code, output = crawl(crawl_app)  # every source, Grants.gov first
    assert code == 0, output
    assert "crawl finished: grants_gov succeeded" in output and "samhsa succeeded" in output
    primary = rows(session, "grants_gov")["350001"]
    ojp = rows(session, "ojp")["O-BJA-2026-172177"]
    assert ojp.merged_into_id == primary.id
    assert primary.close_date == dt.date(2026, 7, 30)  # Grants.gov's own value stays
    assert primary.second_close_date == dt.date(2026, 8, 6)
    assert primary.second_close_date_label == "JustGrants application deadline (step 2)"
    assert primary.agency_url == "https://bja.ojp.gov/funding/opportunities/o-bja-2026-172177"
    assert primary.field_sources["second_close_date"] == "ojp"
    assert primary.field_sources["agency_url"] == "ojp"
    assert primary.fiscal_year == 2026 and primary.field_sources["fiscal_year"] == "ojp"
    version = session.scalar(
        select(OpportunityVersion).where(OpportunityVersion.opportunity_id == primary.id)
    )
    assert version is not None and "second_close_date" in version.changed_fields

    yarp = rows(session, "dol_eta")["FOA-ETA-26-05"]
    assert yarp.merged_into_id == rows(session, "grants_gov")["350002"].id
    samhsa = rows(session, "samhsa")
    assert samhsa["SM-26-011"].merged_into_id == rows(session, "grants_gov")["350005"].id
    assert samhsa["TI-26-004"].merged_into_id is None  # not on Grants.gov: its own record

    # Crawling Grants.gov again keeps the merged fields (no churn, no new version).
    versions_before = len(list(session.scalars(select(OpportunityVersion))))
    code, output = crawl(crawl_app, "grants_gov")
    assert code == 0
    assert rows(session, "grants_gov")["350001"].second_close_date == dt.date(2026, 8, 6)
    assert len(list(session.scalars(select(OpportunityVersion)))) == versions_before

    # Export: the contract format, one line per opportunity (merged agency rows are not repeated).
    result = crawl_app.test_cli_runner().invoke(args=["export-opportunities"])
    assert result.exit_code == 0
    lines = [json.loads(line) for line in result.output.splitlines() if line.strip()]
    numbers = [line.get("number") for line in lines]
    assert numbers.count("O-BJA-2026-172177") == 1 and numbers.count("SM-26-011") == 1
    exported = next(line for line in lines if line.get("number") == "O-BJA-2026-172177")
    assert exported["id"] == "350001" and exported["agency"] == "DOJ"
    assert exported["close_date"] == "2026-07-30" and exported["second_close_date"] == "2026-08-06"
    assert exported["award_ceiling"] == 2_000_000 and isinstance(exported["award_ceiling"], int)
    assert exported["aln"] == ["16.045"]
    assert "<" not in exported["description"] and "street outreach" in exported["description"]
    assert "source_hash" not in exported


def test_failing_source_does_not_stop_the_others(
    crawl_app: Flask, server: FakeServer, session: Session
) -> None:
    agency_routes(server)
    server.route("GET", "/funding-api/current_funding_data", Reply(500, b"boom", content_type="text/plain"))
    server.route("GET", "/funding/current", Reply(500, b"boom", content_type="text/plain"))
    code, output = crawl(crawl_app, "ojp", "dol_eta", "samhsa")
    assert code == 1
    assert "ojp failed" in output and "dol_eta succeeded" in output and "samhsa succeeded" in output
    assert rows(session, "dol_eta") and rows(session, "samhsa") and not rows(session, "ojp")
