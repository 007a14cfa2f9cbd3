"""Grants.gov API (``GRANTS_GOV_API_URL``): search2 for DOJ, DOL, ED and HHS, then fetchOpportunity.

One job: page through ``search2`` (POST, JSON body; ``hitCount`` says how many), compare each hit
with what the store holds (through ``CrawlContext.lookup``), fetch details only for new hits or
hits whose listing changed, and turn details into ``NormalizedOpportunity`` records. Unchanged hits
are only marked seen. ``--since N`` uses search2's ``dateRange`` (posted within N days).

The API answers errors with HTTP 200 too: ``errorcode != 0`` or ``data.errorMessages`` mean error.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from crawlers.codes import APPLICANT_TYPES, DEPARTMENT_AGENCY_CODES, department_for, is_core, labels
from crawlers.http import FetchError
from crawlers.normalize import (
    NormalizedOpportunity,
    clean_description,
    clean_text,
    parse_aln,
    parse_bool,
    parse_count,
    parse_date,
    parse_money,
)
from crawlers.runner import CrawlContext, CrawlSettings, ListingSnapshot, SourceError, SourceSpec

SOURCE = "grants_gov"
DETAIL_URL = "https://www.grants.gov/search-results-detail/{id}"
#: search2's dateRange choices (posted within N days).
DATE_RANGES = (3, 7, 14, 21, 28, 35, 42, 49, 56)
MAX_RECORDS = 100_000


@dataclass
class Hit:
    id: str
    number: str | None
    title: str | None
    agency_code: str | None
    agency_name: str | None
    post_date: dt.date | None
    close_date: dt.date | None
    status: str | None
    doc_type: str | None
    aln: list[str]

    def snapshot(self) -> ListingSnapshot:
        return ListingSnapshot(
            self.number, self.title, self.status, self.doc_type, self.post_date, self.close_date
        )


def listing_changed(hit: ListingSnapshot, stored: ListingSnapshot | None) -> bool:
    """True when the store lacks the record or any listed field differs (fields the hit omits, such
    as a forecast's empty close date, are not compared)."""
    if stored is None:
        return True
    for name in ("number", "title", "status", "doc_type", "post_date", "close_date"):
        value = getattr(hit, name)
        if value is not None and value != getattr(stored, name):
            return True
    return False


def envelope_data(payload: Any, url: str) -> dict[str, Any]:
    """The ``data`` of a v1 envelope, raising ``SourceError`` for the errors sent with HTTP 200."""
    if not isinstance(payload, dict):
        raise SourceError(url, f"unexpected response: a JSON {type(payload).__name__}, not an object")
    data = payload.get("data", payload if "errorcode" not in payload else None)
    code = payload.get("errorcode", 0)
    if code not in (0, "0", None):
        raise SourceError(url, f"Grants.gov API error {code}: {payload.get('msg') or 'no message'}")
    if not isinstance(data, dict):
        raise SourceError(url, "Grants.gov API response has no data object")
    messages = data.get("errorMessages") or data.get("errorMsgs") or []
    if messages:
        text = "; ".join(str(m) for m in messages) if isinstance(messages, list) else str(messages)
        raise SourceError(url, f"Grants.gov API reported: {text}")
    return data


def parse_hit(raw: Mapping[str, Any]) -> Hit:
    status = str(raw.get("oppStatus") or "").lower() or None
    return Hit(
        id=str(raw.get("id") or "").strip(),
        number=clean_text(raw.get("number")),
        title=clean_text(raw.get("title")),
        agency_code=clean_text(raw.get("agencyCode")),
        agency_name=clean_text(raw.get("agency") or raw.get("agencyName")),
        post_date=parse_date(raw.get("openDate")),
        close_date=parse_date(raw.get("closeDate")),
        status=status if status in ("forecasted", "posted", "closed", "archived") else None,
        doc_type=clean_text(raw.get("docType")),
        aln=parse_aln(raw.get("cfdaList") or raw.get("alnist") or raw.get("alnList") or []),
    )


def search_body(settings: CrawlSettings, start: int) -> dict[str, Any]:
    statuses = ["forecasted", "posted"] + (["closed", "archived"] if settings.include_closed else [])
    body: dict[str, Any] = {
        "rows": settings.page_size,
        "startRecordNum": start,
        "oppStatuses": "|".join(statuses),
        "agencies": "|".join(DEPARTMENT_AGENCY_CODES.values()),
        "sortBy": "openDate|desc",
    }
    if settings.since_days is not None:
        window = next((r for r in DATE_RANGES if r >= settings.since_days), None)
        if window is not None:
            body["dateRange"] = str(window)
    return body


def _first(part: Mapping[str, Any], *names: str) -> Any:
    for name in names:
        value = part.get(name)
        if value not in (None, ""):
            return value
    return None


def _ids(items: Any) -> list[str]:
    if not isinstance(items, list):
        return []
    found = []
    for item in items:
        code = item.get("id") if isinstance(item, dict) else item
        if code not in (None, "") and str(code) not in found:
            found.append(str(code))
    return found


def _object(value: Any) -> dict[str, Any]:
    """``value`` if the API sent an object there, else an empty one (a null or a stray scalar)."""
    return value if isinstance(value, dict) else {}


def _objects(value: Any) -> list[dict[str, Any]]:
    """The objects of a list the API sent (nothing when it sent something else)."""
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _contact(part: Mapping[str, Any]) -> str | None:
    pieces: list[str] = []
    for name in ("agencyContactName", "agencyContactDesc", "agencyContactPhone", "agencyContactEmail"):
        text = clean_text(part.get(name))
        if text and not any(text in piece for piece in pieces):
            pieces.append(text)
    return "\n".join(pieces) or None


def parse_detail(data: Mapping[str, Any], hit: Hit | None = None) -> NormalizedOpportunity:
    """A fetchOpportunity ``data`` object (synopsis or forecast) as a normalized record."""
    synopsis = data.get("synopsis") if isinstance(data.get("synopsis"), dict) else None
    forecast = data.get("forecast") if isinstance(data.get("forecast"), dict) else None
    doc_type = str(data.get("docType") or "").lower() or None
    if doc_type not in ("synopsis", "forecast"):
        doc_type = "forecast" if forecast and not synopsis else "synopsis"
    part: Mapping[str, Any] = (forecast if doc_type == "forecast" else synopsis) or synopsis or forecast or {}
    is_forecast = part is forecast and forecast is not None
    agency_details = _object(part.get("agencyDetails")) or _object(data.get("agencyDetails"))
    agency_code = (
        clean_text(agency_details.get("agencyCode"))
        or clean_text(data.get("owningAgencyCode"))
        or clean_text(part.get("agencyCode"))
        or (hit.agency_code if hit else None)
    )
    department = department_for(agency_code) or "other"
    description_html, description = clean_description(
        _first(part, "forecastDesc", "synopsisDesc") if is_forecast else _first(part, "synopsisDesc")
    )
    if is_forecast:
        close = parse_date(_first(part, "estApplicationResponseDateStr", "estApplicationResponseDate"))
        close_note = clean_text(part.get("estApplicationResponseDateDesc"))
    else:
        close = parse_date(_first(part, "responseDateStr", "responseDate"))
        close_note = clean_text(part.get("responseDateDesc"))
    applicant_codes = _ids(part.get("applicantTypes"))
    eligibility = clean_text(part.get("applicantEligibilityDesc")) or (
        "; ".join(labels(APPLICANT_TYPES, applicant_codes)) or None
    )
    aln = parse_aln([c.get("cfdaNumber") for c in _objects(data.get("cfdas"))])
    aln += [a for a in parse_aln([c.get("alnNumber") for c in _objects(data.get("alns"))]) if a not in aln]
    if not aln and hit:
        aln = list(hit.aln)
    version = part.get("version")
    category = data.get("opportunityCategory")
    fiscal_year = parse_count(part.get("fiscalYear"))
    opp_id = str(data.get("id") or (hit.id if hit else "")).strip()
    if not opp_id:
        raise SourceError(None, "fetchOpportunity data has no id")
    title = clean_text(data.get("opportunityTitle")) or (hit.title if hit else None) or ""
    return NormalizedOpportunity(
        id=opp_id,
        source=SOURCE,
        number=clean_text(data.get("opportunityNumber")) or (hit.number if hit else None),
        title=title[:1000],
        agency=department,
        sub_agency=agency_code,
        agency_name=clean_text(agency_details.get("agencyName")) or (hit.agency_name if hit else None),
        aln=aln,
        status=(hit.status if hit else None) or ("forecasted" if is_forecast else None),
        doc_type="forecast" if is_forecast else "synopsis",
        post_date=parse_date(_first(part, "postingDateStr", "postingDate"))
        or (hit.post_date if hit else None),
        close_date=close or (hit.close_date if hit else None),
        close_date_note=close_note,
        archive_date=parse_date(_first(part, "archiveDateStr", "archiveDate")),
        forecast_post_date=parse_date(_first(part, "estSynopsisPostingDateStr", "estSynopsisPostingDate"))
        if is_forecast
        else None,
        forecast_award_date=parse_date(_first(part, "estAwardDateStr", "estAwardDate"))
        if is_forecast
        else None,
        fiscal_year=fiscal_year if fiscal_year and 1990 < fiscal_year < 2100 else None,
        award_floor=parse_money(part.get("awardFloor")),
        award_ceiling=parse_money(part.get("awardCeiling")),
        total_funding=parse_money(part.get("estimatedFunding")),
        expected_awards=parse_count(part.get("numberOfAwards")),
        cost_sharing=parse_bool(part.get("costSharing")),
        eligible_applicants=eligibility,
        eligibility_codes=applicant_codes,
        funding_instruments=_ids(part.get("fundingInstruments")),
        categories=_ids(part.get("fundingActivityCategories")),
        opportunity_category=clean_text(category.get("category")) if isinstance(category, dict) else None,
        description=description,
        description_html=description_html,
        url=DETAIL_URL.format(id=opp_id),
        agency_url=clean_text(part.get("fundingDescLinkUrl"), max_length=1000),
        contact=_contact(part),
        version=f"{'Forecast' if is_forecast else 'Synopsis'} {version}"
        if version not in (None, "")
        else None,
    )


def crawl(ctx: CrawlContext) -> Iterator[NormalizedOpportunity]:
    base = ctx.settings.urls["GRANTS_GOV_API_URL"].rstrip("/")
    search_url = f"{base}/search2"
    detail_url = f"{base}/fetchOpportunity"
    if ctx.settings.since_days is not None:
        ctx.complete = False
    start = 0
    listed: set[str] = set()
    while True:
        response = ctx.http.post_json(search_url, search_body(ctx.settings, start))
        data = envelope_data(response.json(), search_url)
        raw_hits = data.get("oppHits") or []
        if not isinstance(raw_hits, list):
            raise SourceError(search_url, "search2 oppHits is not a list")
        try:
            hit_count = int(data.get("hitCount") or 0)
        except (TypeError, ValueError) as exc:
            raise SourceError(
                search_url, f"search2 hitCount is not a number: {data.get('hitCount')!r}"
            ) from exc
        hits = []
        for raw in raw_hits:
            hit = parse_hit(raw) if isinstance(raw, dict) else None
            if hit is None or not hit.id:
                ctx.error("parse", f"search2 hit without id at offset {start}", url=search_url)
                continue
            if hit.id in listed or not is_core(hit.agency_code):
                continue
            listed.add(hit.id)
            hits.append(hit)
        ctx.fetched += len(hits)
        stored = ctx.lookup(SOURCE, [h.id for h in hits])
        for hit in hits:
            if not listing_changed(hit.snapshot(), stored.get(hit.id)):
                ctx.mark_seen(hit.id)
                continue
            body = {"opportunityId": int(hit.id) if hit.id.isascii() and hit.id.isdigit() else hit.id}
            if not ctx.http.can_fetch("POST", detail_url, body):
                ctx.mark_seen(hit.id)
                continue
            try:
                detail = envelope_data(ctx.http.post_json(detail_url, body).json(), detail_url)
                yield parse_detail(detail, hit)
            except (FetchError, SourceError, ValueError) as exc:
                message = getattr(exc, "message", str(exc))
                ctx.error(
                    getattr(exc, "kind", "parse"),
                    f"details of opportunity {hit.id} ({hit.number}): {message}",
                    url=detail_url,
                    record_id=hit.id,
                )
                ctx.mark_seen(hit.id)
        start += len(raw_hits)
        if not raw_hits or start >= hit_count:
            break
        if start >= MAX_RECORDS:
            raise SourceError(search_url, f"stopped paging after {start} records (hitCount {hit_count})")


SPEC = SourceSpec(
    name="grants_gov",
    record_source=SOURCE,
    crawl=crawl,
    is_full=lambda settings: settings.since_days is None and settings.include_closed,
    vanish_scope="core",
)
