"""Grants.gov daily XML extract (``GrantsDBExtractYYYYMMDDv2.zip``): first load and nightly reconciliation.

One job: stream the extract (a ``.zip`` holding one XML, a ``.xml``, or a URL that is downloaded to
``CRAWL_ARCHIVE_DIR`` first) with ``lxml.etree.iterparse``, namespace-aware (the real file puts every
element in ``http://apply.grants.gov/system/OpportunityDetail-V1.0``; copies without the namespace
are read too), clearing each record element and its finished siblings so memory stays flat whatever
the file size. Records are filtered to DOJ, DOL, ED and HHS unless all agencies are asked for.

A fingerprint of each raw record (its element texts, the parser version and the status its dates
give today) is compared with the one stored for it: an unchanged record is only marked seen, never
normalized again, which keeps a nightly re-ingest close to parse speed.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any
from urllib.parse import urljoin, urlsplit

from lxml import etree
from pydantic import ValidationError

from crawlers.codes import APPLICANT_TYPES, department_for, is_core, labels
from crawlers.normalize import (
    NormalizedOpportunity,
    clean_description,
    clean_text,
    parse_bool,
    parse_count,
    parse_date,
    parse_money,
)
from crawlers.runner import CrawlContext, SourceError, SourceSpec

SOURCE = "grants_gov"
NAMESPACE = "http://apply.grants.gov/system/OpportunityDetail-V1.0"
SYNOPSIS = "OpportunitySynopsisDetail_1_0"
FORECAST = "OpportunityForecastDetail_1_0"
REPEATED = frozenset(
    {"FundingInstrumentType", "CategoryOfFundingActivity", "CFDANumbers", "EligibleApplicants"}
)
#: Bump when the mapping below changes, so the next ingest normalizes every record again.
PARSER_VERSION = "2"
DETAIL_URL = "https://www.grants.gov/search-results-detail/{id}"
_EXTRACT_LINK = re.compile(r"""href=["']([^"']*GrantsDBExtract(\d{8})v2\.zip)["']""", re.I)


@contextlib.contextmanager
def open_extract(path: Path) -> Iterator[IO[bytes]]:
    """The XML stream of an extract file: the first ``.xml`` member of a zip, or the file itself."""
    if not path.exists():
        raise SourceError(str(path), f"extract file {path} does not exist")
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            members = [m for m in archive.namelist() if m.lower().endswith(".xml")]
            if not members:
                raise SourceError(str(path), f"{path.name} holds no .xml file")
            with archive.open(members[0]) as stream:
                yield stream
        return
    with path.open("rb") as stream:
        yield stream


def iter_records(stream: IO[bytes]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(kind, fields) per record element; repeatable elements become lists. Bounded memory."""
    context = etree.iterparse(
        stream,
        events=("end",),
        tag=(f"{{*}}{SYNOPSIS}", f"{{*}}{FORECAST}"),
        resolve_entities=False,
        no_network=True,
        huge_tree=True,
        remove_comments=True,
    )
    for _event, element in context:
        tag = element.tag
        kind = "forecast" if tag.endswith(FORECAST) else "synopsis"
        fields: dict[str, Any] = {}
        for child in element:
            child_tag = child.tag
            if not isinstance(child_tag, str):
                continue
            name = child_tag[child_tag.rfind("}") + 1 :]
            if name in REPEATED:
                fields.setdefault(name, []).append(child.text)
            else:
                fields[name] = child.text
        yield kind, fields
        element.clear(keep_tail=False)
        parent = element.getparent()
        if parent is not None:
            while element.getprevious() is not None:
                del parent[0]


def status_for(kind: str, fields: dict[str, Any], today: dt.date) -> str:
    """The status the record's dates give today (as ``derive_status`` in the store would)."""
    if kind == "forecast":
        return "forecasted"
    archive = parse_date(fields.get("ArchiveDate"))
    if archive and archive < today:
        return "archived"
    close = parse_date(fields.get("CloseDate"))
    if close and close < today:
        return "closed"
    return "posted"


def raw_hash(kind: str, fields: dict[str, Any], status: str) -> str:
    parts = [PARSER_VERSION, kind, status]
    for name, value in fields.items():
        parts.append(name)
        parts.append("\x1d".join(v or "" for v in value) if isinstance(value, list) else (value or ""))
    return hashlib.blake2b("\x1f".join(parts).encode("utf-8", "replace"), digest_size=16).hexdigest()


def _codes(values: Any) -> list[str]:
    if not values:
        return []
    found: list[str] = []
    for value in values:
        code = (value or "").strip()
        if code and code not in found:
            found.append(code)
    return found


def _contact(fields: dict[str, Any]) -> str | None:
    pieces: list[str] = []
    for name in (
        "GrantorContactName",
        "GrantorContactText",
        "GrantorContactPhoneNumber",
        "GrantorContactEmail",
    ):
        text = clean_text(fields.get(name))
        if text and not any(text in piece for piece in pieces):
            pieces.append(text)
    return "\n".join(pieces) or None


def to_record(
    kind: str, fields: dict[str, Any], status: str, digest: str | None = None
) -> NormalizedOpportunity:
    """One extract record as a normalized record (same field meanings as the API's details)."""
    opp_id = (fields.get("OpportunityID") or "").strip()
    is_forecast = kind == "forecast"
    agency_code = clean_text(fields.get("AgencyCode"))
    description_html, description = clean_description(fields.get("Description"))
    eligibility_codes = _codes(fields.get("EligibleApplicants"))
    fiscal_year = parse_count(fields.get("FiscalYear"))
    record = NormalizedOpportunity(
        id=opp_id,
        source=SOURCE,
        number=clean_text(fields.get("OpportunityNumber")),
        title=(clean_text(fields.get("OpportunityTitle")) or f"Opportunity {opp_id}")[:1000],
        agency=department_for(agency_code) or "other",
        sub_agency=agency_code,
        agency_name=clean_text(fields.get("AgencyName")),
        aln=_codes(fields.get("CFDANumbers")),
        status=status,
        doc_type="forecast" if is_forecast else "synopsis",
        post_date=parse_date(fields.get("PostDate")),
        close_date=parse_date(fields.get("EstimatedSynopsisCloseDate" if is_forecast else "CloseDate")),
        close_date_note=clean_text(
            fields.get("EstimatedSynopsisCloseDateExplanation" if is_forecast else "CloseDateExplanation")
        ),
        archive_date=parse_date(fields.get("ArchiveDate")),
        forecast_post_date=parse_date(fields.get("EstimatedSynopsisPostDate")) if is_forecast else None,
        forecast_award_date=parse_date(fields.get("EstimatedAwardDate")) if is_forecast else None,
        fiscal_year=fiscal_year if fiscal_year and 1990 < fiscal_year < 2100 else None,
        award_floor=parse_money(fields.get("AwardFloor")),
        award_ceiling=parse_money(fields.get("AwardCeiling")),
        total_funding=parse_money(fields.get("EstimatedTotalProgramFunding")),
        expected_awards=parse_count(fields.get("ExpectedNumberOfAwards")),
        cost_sharing=parse_bool(fields.get("CostSharingOrMatchingRequirement")),
        eligible_applicants=clean_text(fields.get("AdditionalInformationOnEligibility"))
        or ("; ".join(labels(APPLICANT_TYPES, eligibility_codes)) or None),
        eligibility_codes=eligibility_codes,
        funding_instruments=_codes(fields.get("FundingInstrumentType")),
        categories=_codes(fields.get("CategoryOfFundingActivity")),
        opportunity_category=clean_text(fields.get("OpportunityCategory")),
        description=description,
        description_html=description_html,
        url=DETAIL_URL.format(id=opp_id),
        agency_url=clean_text(fields.get("AdditionalInformationURL"), max_length=1000),
        contact=_contact(fields),
        version=clean_text(fields.get("Version")),
    )
    record.source_hash = digest
    return record


def resolve_path(ctx: CrawlContext, location: str) -> Path:
    """A local path for the extract: the path itself, or the downloaded file of a URL."""
    if not re.match(r"^https?://", location, re.I):
        return Path(location)
    url = location
    if not re.search(r"\.(zip|xml)$", urlsplit(url).path, re.I):
        page = ctx.http.get(url).text()
        links = sorted(_EXTRACT_LINK.findall(page), key=lambda item: item[1])
        if not links:
            raise SourceError(url, "no GrantsDBExtract…v2.zip link found on the extract page")
        url = urljoin(url, links[-1][0])
    directory = ctx.settings.archive_dir or Path("instance/crawl-archive")
    destination = directory / Path(urlsplit(url).path).name
    return ctx.http.download(url, destination)


def crawl(ctx: CrawlContext) -> Iterator[NormalizedOpportunity]:
    location = ctx.settings.extract_path or ctx.settings.urls.get("GRANTS_GOV_EXTRACT_URL") or ""
    if not location:
        raise SourceError(None, "no extract path or GRANTS_GOV_EXTRACT_URL given")
    path = resolve_path(ctx, location)
    known = ctx.known_hashes(SOURCE)
    today = ctx.settings.today
    all_agencies = ctx.settings.all_agencies
    count = 0
    try:
        with open_extract(path) as stream:
            for kind, fields in iter_records(stream):
                count += 1
                if not all_agencies and not is_core(fields.get("AgencyCode")):
                    continue
                opp_id = (fields.get("OpportunityID") or "").strip()
                if not opp_id:
                    ctx.error("parse", f"record {count} of {path.name} has no OpportunityID", url=str(path))
                    continue
                ctx.fetched += 1
                status = status_for(kind, fields, today)
                digest = raw_hash(kind, fields, status)
                if known.get(opp_id) == digest:
                    ctx.mark_seen(opp_id)
                    continue
                try:
                    yield to_record(kind, fields, status, digest)
                except (ValidationError, ValueError) as exc:
                    ctx.error("parse", f"opportunity {opp_id}: {exc}", url=str(path), record_id=opp_id)
                    ctx.mark_seen(opp_id)
    except etree.XMLSyntaxError as exc:
        raise SourceError(
            str(path), f"malformed XML in {path.name} after {count} records (line {exc.lineno}): {exc.msg}"
        ) from exc
    except (zipfile.BadZipFile, OSError) as exc:
        raise SourceError(str(path), f"cannot read {path.name}: {exc}") from exc


SPEC = SourceSpec(
    name="grants_gov_extract",
    record_source=SOURCE,
    crawl=crawl,
    is_full=lambda settings: True,
    vanish_scope="core",
)
