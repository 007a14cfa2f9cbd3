"""Every crawler parser fed mutated copies of its recorded payloads (tests/fixtures/crawlers).

The contract (crawlers.runner): a source either yields valid ``NormalizedOpportunity`` records that
fit the store, reports a bad record through ``CrawlContext.error`` naming its URL or id, or stops
with ``FetchError``/``SourceError`` naming the URL. Anything else (KeyError, TypeError,
AttributeError, UnicodeError, OverflowError …) reaches the runner as a "crash": a bug.

One payload of a source is mutated per example (the others stay as recorded), so a damaged detail
page is met beside healthy ones. Derandomized: every run tries the same inputs.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from crawlers import dol_eta, ed_forecast, extract_scan, grants_gov, grants_gov_extract, ojp, samhsa
from crawlers.http import FetchError, NotArchived, Response
from crawlers.normalize import NormalizedOpportunity
from crawlers.runner import CrawlContext, CrawlSettings, SourceError, SourceSpec
from tests.reliability.fuzz.mutations import mutated
from tests.reliability.fuzz.store_fit import misfits

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "crawlers"
TODAY = dt.date(2026, 6, 15)
#: Examples per payload; ``FUZZ_EXAMPLES=1000`` for a deeper (slower) hunt, still derandomized.
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "60"))
FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
BASE = "http://recorded.test"
URLS = {
    "GRANTS_GOV_API_URL": f"{BASE}/v1/api",
    "OJP_FUNDING_URL": f"{BASE}/funding-api",
    "DOL_ETA_URL": f"{BASE}/eta/find-opportunities",
    "ED_FORECAST_URL": f"{BASE}/ed/forecast",
    "SAMHSA_NOFO_URL": f"{BASE}/samhsa/grants-dashboard",
}


def recorded(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


@dataclass
class RecordedHttp:
    """A ``Fetcher`` serving recorded bodies by URL (POST bodies choose through ``post``)."""

    pages: dict[str, bytes]
    post: Callable[[str, Any], bytes | None] = lambda _url, _body: None
    content_type: str = "text/html; charset=utf-8"
    requests_made: int = 0

    def _body(self, method: str, url: str, json_body: Any) -> bytes | None:
        return self.post(url, json_body) if method == "POST" else self.pages.get(url)

    def can_fetch(self, method: str, url: str, json_body: Any | None = None) -> bool:
        return self._body(method, url, json_body) is not None

    def get(self, url: str, *, params: dict[str, Any] | None = None, conditional: bool = True) -> Response:
        if params:
            url = requests.Request("GET", url, params=params).prepare().url or url
        return self.fetch("GET", url)

    def post_json(self, url: str, body: Any) -> Response:
        return self.fetch("POST", url, json_body=body)

    def fetch(
        self,
        method: str,
        url: str,
        *,
        json_body: Any | None = None,
        conditional: bool = False,
        archive: bool = True,
    ) -> Response:
        body = self._body(method, url, json_body)
        if body is None:
            raise NotArchived(url, f"{method} {url} is not recorded")
        self.requests_made += 1
        return Response(url, 200, {"content-type": self.content_type}, body, method=method)

    def download(self, url: str, destination: Path, *, chunk_size: int = 1 << 20) -> Path:
        raise NotArchived(url, "no downloads in the fuzz suite")


@dataclass
class Outcome:
    records: list[NormalizedOpportunity] = field(default_factory=list)
    stopped: Exception | None = None


def crawl_by_contract(spec: SourceSpec, http: RecordedHttp, **options: Any) -> Outcome:
    """Run one source and check the runner's contract on everything it produced."""
    ctx = CrawlContext(http=http, settings=CrawlSettings(urls=dict(URLS), today=TODAY, **options))
    outcome = Outcome()
    try:
        for item in spec.crawl(ctx):
            assert isinstance(item, NormalizedOpportunity), item
            outcome.records.append(item)
    except (FetchError, SourceError) as exc:
        assert exc.message.strip(), "a source error without a message"
        assert exc.url, f"a source error that names no URL: {exc.message}"
        outcome.stopped = exc
    for issue in ctx.issues:
        assert issue.message.strip() and (issue.url or issue.record_id), issue
    for record in outcome.records:
        NormalizedOpportunity.model_validate(record.model_dump())
        assert not misfits(record), (record.id, misfits(record))
    return outcome


# -- Grants.gov REST API: search2 pages and fetchOpportunity details ------------------------------

GRANTS_GOV_FILES = [
    "search2_page1.json",
    "search2_page2.json",
    *(f"fetchOpportunity_35000{n}.json" for n in range(1, 6)),
]


def grants_gov_http(replaced: str, body: bytes) -> RecordedHttp:
    files = {name: recorded(f"grants_gov/{name}") for name in GRANTS_GOV_FILES}
    files[replaced] = body

    def post(url: str, request: Any) -> bytes | None:
        if url.endswith("/search2"):
            return files["search2_page1.json" if request.get("startRecordNum") == 0 else "search2_page2.json"]
        return files.get(f"fetchOpportunity_{request.get('opportunityId')}.json")

    return RecordedHttp({}, post, content_type="application/json")


def test_recorded_grants_gov_payloads_parse() -> None:
    outcome = crawl_by_contract(
        grants_gov.SPEC, grants_gov_http("search2_page1.json", recorded("grants_gov/search2_page1.json"))
    )
    assert outcome.stopped is None and len(outcome.records) >= 4


@pytest.mark.parametrize("name", GRANTS_GOV_FILES)
@FUZZ
@given(data=st.data())
def test_grants_gov_api_survives_mutated_payloads(name: str, data: st.DataObject) -> None:
    original = recorded(f"grants_gov/{name}")
    body = data.draw(mutated(original, structure="json"), label="payload")
    crawl_by_contract(grants_gov.SPEC, grants_gov_http(name, body))


# -- DOJ OJP: the JSON feed, and the HTML listing read when the feed fails -------------------------


def ojp_http(feed: bytes, listing: bytes) -> RecordedHttp:
    return RecordedHttp(
        {f"{BASE}/funding-api/current_funding_data": feed, f"{BASE}/funding/current": listing}
    )


@FUZZ
@given(data=st.data())
def test_ojp_feed_survives_mutations(data: st.DataObject) -> None:
    feed = data.draw(mutated(recorded("ojp/current_funding_data.json"), structure="json"), label="feed")
    crawl_by_contract(ojp.SPEC, ojp_http(feed, recorded("ojp/funding_current.html")))


@FUZZ
@given(data=st.data())
def test_ojp_listing_survives_mutations(data: st.DataObject) -> None:
    listing = data.draw(mutated(recorded("ojp/funding_current.html"), structure="markup"), label="listing")
    crawl_by_contract(ojp.SPEC, ojp_http(b"{not json", listing))


# -- DOL ETA, ED forecast, SAMHSA: HTML pages ---------------------------------------------------


@pytest.mark.parametrize("name", ["find_opportunities.html", "find_opportunities_redesigned.html"])
@FUZZ
@given(data=st.data())
def test_dol_eta_page_survives_mutations(name: str, data: st.DataObject) -> None:
    page = data.draw(mutated(recorded(f"dol_eta/{name}"), structure="markup"), label="page")
    crawl_by_contract(dol_eta.SPEC, RecordedHttp({URLS["DOL_ETA_URL"]: page}))


@FUZZ
@given(data=st.data())
def test_ed_forecast_page_survives_mutations(data: st.DataObject) -> None:
    page = data.draw(mutated(recorded("ed/forecast.html"), structure="markup"), label="page")
    crawl_by_contract(ed_forecast.SPEC, RecordedHttp({URLS["ED_FORECAST_URL"]: page}))


SAMHSA_PAGES = {
    "grants_dashboard.html": URLS["SAMHSA_NOFO_URL"],
    "sm-26-011.html": f"{BASE}/grants/grant-announcements/sm-26-011",
    "ti-26-004.html": f"{BASE}/grants/grant-announcements/ti-26-004",
}


def test_recorded_samhsa_pages_parse() -> None:
    pages = {url: recorded(f"samhsa/{name}") for name, url in SAMHSA_PAGES.items()}
    outcome = crawl_by_contract(samhsa.SPEC, RecordedHttp(pages))
    assert outcome.stopped is None and len(outcome.records) == 2


@pytest.mark.parametrize("name", sorted(SAMHSA_PAGES))
@FUZZ
@given(data=st.data())
def test_samhsa_pages_survive_mutations(name: str, data: st.DataObject) -> None:
    pages = {url: recorded(f"samhsa/{page}") for page, url in SAMHSA_PAGES.items()}
    pages[SAMHSA_PAGES[name]] = data.draw(
        mutated(recorded(f"samhsa/{name}"), structure="markup"), label="page"
    )
    crawl_by_contract(samhsa.SPEC, RecordedHttp(pages))


# -- Grants.gov XML extract: the byte scanner and the lxml fallback ------------------------------

EXTRACTS = ["GrantsDBExtract20261101v2.xml", "GrantsDBExtract20261102v2_one_removed.xml"]


def read_extract(path: Path) -> tuple[list[NormalizedOpportunity], list[tuple[Any, ...]], Any]:
    """Records, record errors and the fatal error of one extract, read in-process (no worker)."""
    records: list[NormalizedOpportunity] = []
    errors: list[tuple[Any, ...]] = []
    fatal = None
    for chunk in grants_gov_extract.iter_chunks(path, {}, TODAY, all_agencies=True):
        records += chunk.records + chunk.repeated
        if chunk.raw:
            records += grants_gov_extract.read_raw(chunk, path)
        errors += chunk.errors
        fatal = fatal or chunk.fatal
        assert chunk.crash is None, chunk.crash
    return records, errors, fatal


@pytest.mark.parametrize("name", EXTRACTS)
@FUZZ
@given(data=st.data())
def test_extract_survives_mutations(
    name: str, data: st.DataObject, tmp_path_factory: pytest.TempPathFactory
) -> None:
    path = tmp_path_factory.getbasetemp() / name
    path.write_bytes(data.draw(mutated(recorded(f"extract/{name}"), structure="markup"), label="extract"))
    try:
        records, errors, fatal = read_extract(path)
    except SourceError as exc:  # read_raw: a record that does not parse ends the file, naming it
        assert exc.url and exc.message
        return
    for _kind, message, url, record_id in errors:
        assert message and (url or record_id)
    if fatal is not None:
        url, message = fatal
        assert path.name in f"{url} {message}", fatal
    for record in records:
        assert not misfits(record), (record.id, misfits(record))


@FUZZ
@given(raw=st.binary(max_size=3000))
@example(raw=b"<?xml version='1.0'?><Grants><OpportunitySynopsisDetail_1_0>")
def test_extract_scanner_takes_any_bytes(raw: bytes, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Arbitrary bytes: the scanner raises only its own documented errors, each saying where."""
    try:
        for record in extract_scan.Scanner(io.BytesIO(raw)).records():
            with contextlib.suppress(extract_scan.Irregular):
                extract_scan.field_text(record.data, b"OpportunityID")
    except extract_scan.NotPlain as exc:
        assert str(exc) and exc.records_done >= 0
    except extract_scan.ExtractSyntaxError as exc:
        assert exc.message and exc.line >= 1


# -- Regressions: what the fuzzing found, pinned as plain examples --------------------------------


def _detail(**changes: Any) -> bytes:
    payload = json.loads(recorded("grants_gov/fetchOpportunity_350002.json"))
    for dotted, value in changes.items():
        *path, last = dotted.split("__")
        node = payload["data"]
        for key in path:
            node = node[key]
        node[last] = value
    return json.dumps(payload).encode()


@pytest.mark.parametrize(
    "changes",
    [
        {"synopsis__agencyDetails": 1},  # AttributeError: 'int' object has no attribute 'get'
        {"agencyDetails": [True], "synopsis__agencyDetails": None},
        {"cfdas": 7, "alns": "16.045"},  # TypeError: 'int' object is not iterable
    ],
)
def test_grants_gov_detail_with_scalars_where_objects_belong_still_parses(changes: dict[str, Any]) -> None:
    outcome = crawl_by_contract(
        grants_gov.SPEC, grants_gov_http("fetchOpportunity_350002.json", _detail(**changes))
    )
    assert outcome.stopped is None and "350002" in [r.id for r in outcome.records]


def test_grants_gov_category_too_long_for_the_store_is_one_reported_record() -> None:
    body = _detail(opportunityCategory={"category": -1000000000})
    ctx_http = grants_gov_http("fetchOpportunity_350002.json", body)
    ctx = CrawlContext(http=ctx_http, settings=CrawlSettings(urls=dict(URLS), today=TODAY))
    ids = [r.id for r in grants_gov.SPEC.crawl(ctx)]
    assert "350002" not in ids and "350001" in ids
    (issue,) = ctx.issues
    assert issue.record_id == "350002" and "opportunity_category" in issue.message


def test_samhsa_title_too_long_is_one_reported_page_not_a_crash() -> None:
    pages = {url: recorded(f"samhsa/{page}") for page, url in SAMHSA_PAGES.items()}
    url = SAMHSA_PAGES["ti-26-004.html"]
    pages[url] = pages[url].replace(b"<h1>", b"<h1>" + b"A" * 2000, 1)
    ctx = CrawlContext(http=RecordedHttp(pages), settings=CrawlSettings(urls=dict(URLS), today=TODAY))
    assert [r.id for r in samhsa.SPEC.crawl(ctx)] == ["SM-26-011"]
    (issue,) = ctx.issues
    assert issue.url == url and issue.record_id == "TI-26-004" and "title" in issue.message


def test_ojp_listing_card_without_an_opportunity_id_is_skipped_and_reported() -> None:
    listing = recorded("ojp/funding_current.html")
    bad = listing.replace(b"/funding/opportunities/o-", b"/funding/opportunities/not-an-id-o-", 1)
    ctx = CrawlContext(http=ojp_http(b"{not json", bad), settings=CrawlSettings(urls=dict(URLS), today=TODAY))
    records = list(ojp.SPEC.crawl(ctx))
    healthy = ojp.parse_listing(listing.decode(), f"{BASE}/funding/current", "posted")
    assert len(records) == len(healthy) - 1
    assert any("not-an-id" in (issue.url or "") and issue.kind == "parse" for issue in ctx.issues)


def test_records_lose_nul_characters_and_refuse_numbers_the_store_cannot_hold() -> None:
    record = NormalizedOpportunity(
        id="A\x00-1",
        title="Street\x00 outreach",
        agency="doj",
        description="x\x00",
        aln=["16.045\x00"],
        note="\x00",
    )
    assert (record.id, record.title, record.description, record.aln) == (
        "A-1",
        "Street outreach",
        "x",
        ["16.045"],
    )
    assert record.model_extra == {"note": ""} and not misfits(record)
    for field_name, value in [("award_ceiling", 2**63), ("expected_awards", 2**31), ("fiscal_year", 20260)]:
        with pytest.raises(ValueError, match=field_name):
            NormalizedOpportunity(id="A", title="T", agency="DOJ", description="", **{field_name: value})
    with pytest.raises(ValueError, match="must not be empty"):
        NormalizedOpportunity(id="\x00", title="T", agency="DOJ", description="")
