"""Grants.gov daily XML extract (``GrantsDBExtractYYYYMMDDv2.zip``): first load and nightly reconciliation.

One job: stream the extract (a ``.zip`` holding one XML, a ``.xml``, or a URL that is downloaded to
``CRAWL_ARCHIVE_DIR`` first) with ``lxml.etree.iterparse``, namespace-aware (the real file puts every
element in ``http://apply.grants.gov/system/OpportunityDetail-V1.0``; copies without the namespace
are read too), clearing each record element and its finished siblings so memory stays flat whatever
the file size. Records are filtered to DOJ, DOL, ED and HHS unless all agencies are asked for.

A fingerprint of each raw record (its element texts, the parser version and the status its dates
give today) is compared with the one stored for it: an unchanged record is only marked seen, never
normalized again, which keeps a nightly re-ingest close to parse speed.

Parsing, fingerprinting and normalizing run in a forked worker process that hands chunks to the
store writer through a small bounded queue, so the two use both cores (where ``fork`` is not
available the same code runs in-process).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import multiprocessing
import re
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty
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


def iter_elements(stream: IO[bytes]) -> Iterator[tuple[str, Any]]:
    """(kind, element) per record element; the element is cleared (with its finished siblings) once
    the consumer moves on, so memory stays flat whatever the file size."""
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
        yield ("forecast" if element.tag.endswith(FORECAST) else "synopsis"), element
        element.clear(keep_tail=False)
        parent = element.getparent()
        if parent is not None:
            while element.getprevious() is not None:
                del parent[0]


def element_fields(element: Any) -> dict[str, Any]:
    """Child texts by local name; repeatable elements become lists."""
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
    return fields


def iter_records(stream: IO[bytes]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(kind, fields) per record element."""
    for kind, element in iter_elements(stream):
        yield kind, element_fields(element)


def status_for(kind: str, close: str | None, archive: str | None, today: dt.date) -> str:
    """The status the record's dates give today (as ``derive_status`` in the store would)."""
    if kind == "forecast":
        return "forecasted"
    archive_date = parse_date(archive)
    if archive_date and archive_date < today:
        return "archived"
    close_date = parse_date(close)
    if close_date and close_date < today:
        return "closed"
    return "posted"


def raw_hash(raw: bytes, kind: str, status: str) -> str:
    """Fingerprint of the record as published (its serialized element, without the whitespace after
    it: whether that is in depends on how far the parser had read), the parser version and the
    status its dates give today (so a record whose deadline passed is normalized again)."""
    digest = hashlib.blake2b(raw, digest_size=16)
    digest.update(f"\x1f{PARSER_VERSION}\x1f{kind}\x1f{status}".encode())
    return digest.hexdigest()


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


#: Length limits of ``NormalizedOpportunity`` on the string fields an extract record fills.
_MAX_LENGTHS = {
    "id": 200,
    "title": 1000,
    "agency": 40,
    "source": 500,
    "number": 200,
    "sub_agency": 200,
    "agency_name": 500,
}
_STATUSES = frozenset({None, "forecasted", "posted", "closed", "archived"})
_KEEP_CASE = frozenset({"Treasury", "AmeriCorps", "other"})


def _validated(values: dict[str, Any]) -> NormalizedOpportunity:
    """The record, skipping pydantic's validation when it provably would change nothing.

    The parsers above already give typed values (dates, non-negative ints, bools, lists of
    stripped codes); validation then only re-checks them, at a third of the cost of a record.
    Whenever a value is one validation would strip, upper-case, reject or cut (too long, empty
    title), the record goes through full validation instead, so the result, or the
    ``ValidationError``, is exactly what ``NormalizedOpportunity(**values)`` gives.
    """
    for name, value in values.items():
        if isinstance(value, str):
            if value != value.strip():
                return NormalizedOpportunity(**values)
            limit = _MAX_LENGTHS.get(name)
            if limit is not None and not 0 < len(value) <= limit:
                return NormalizedOpportunity(**values)
        elif isinstance(value, list):
            if any(not isinstance(item, str) or item != item.strip() for item in value):
                return NormalizedOpportunity(**values)
        elif isinstance(value, int) and not isinstance(value, bool) and value < 0:
            return NormalizedOpportunity(**values)
    agency = values["agency"]
    if (
        values["status"] not in _STATUSES
        or (agency not in _KEEP_CASE and agency != agency.upper())
        or not values["id"]
        or not values["title"]
    ):
        return NormalizedOpportunity(**values)
    return NormalizedOpportunity.model_construct(**values)


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
    values: dict[str, Any] = dict(
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
    record = _validated(values)
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


@dataclass
class Chunk:
    """What the parser hands the store side at once: records to write, ids only seen, issues."""

    records: list[NormalizedOpportunity] = field(default_factory=list)
    seen: list[str] = field(default_factory=list)
    #: (kind, message, url, record_id) of records that could not be read.
    errors: list[tuple[str, str, str | None, str | None]] = field(default_factory=list)
    fetched: int = 0
    #: (url, message) of a failure that ended the file early; earlier chunks are whole.
    fatal: tuple[str | None, str] | None = None
    #: An unexpected exception in the worker process (re-raised by the parent as a crash).
    crash: str | None = None

    def size(self) -> int:
        return len(self.records) * 8 + len(self.seen)


def iter_chunks(
    path: Path, known: Mapping[str, str], today: dt.date, all_agencies: bool, chunk_size: int = 1600
) -> Iterator[Chunk]:
    """Parse, filter, fingerprint and normalize the extract into chunks (a failure ends with ``fatal``)."""
    chunk = Chunk()
    count = 0
    try:
        with open_extract(path) as stream:
            for kind, element in iter_elements(stream):
                count += 1
                if not all_agencies and not is_core(element.findtext("{*}AgencyCode")):
                    continue
                opp_id = (element.findtext("{*}OpportunityID") or "").strip()
                if not opp_id:
                    chunk.errors.append(
                        ("parse", f"record {count} of {path.name} has no OpportunityID", str(path), None)
                    )
                    continue
                chunk.fetched += 1
                close = element.findtext("{*}CloseDate")
                status = status_for(kind, close, element.findtext("{*}ArchiveDate"), today)
                digest = raw_hash(etree.tostring(element, with_tail=False), kind, status)
                if known.get(opp_id) == digest:
                    chunk.seen.append(opp_id)
                else:
                    try:
                        chunk.records.append(to_record(kind, element_fields(element), status, digest))
                    except (ValidationError, ValueError) as exc:
                        chunk.errors.append(("parse", f"opportunity {opp_id}: {exc}", str(path), opp_id))
                        chunk.seen.append(opp_id)
                if chunk.size() >= chunk_size:
                    yield chunk
                    chunk = Chunk()
    except SourceError as exc:
        chunk.fatal = (exc.url, exc.message)
    except etree.XMLSyntaxError as exc:
        chunk.fatal = (
            str(path),
            f"malformed XML in {path.name} after {count} records (line {exc.lineno}): {exc.msg}",
        )
    except (zipfile.BadZipFile, OSError) as exc:
        chunk.fatal = (str(path), f"cannot read {path.name}: {exc}")
    yield chunk


def _produce(queue: Any, path: Path, known: Mapping[str, str], today: dt.date, all_agencies: bool) -> None:
    """Worker process body: every chunk into the (bounded) queue, then ``None``."""
    try:
        for chunk in iter_chunks(path, known, today, all_agencies):
            queue.put(chunk)
    except Exception as exc:
        queue.put(Chunk(crash=f"extract parser crashed: {type(exc).__name__}: {exc}"))
    queue.put(None)


def chunks_from_worker(
    path: Path, known: Mapping[str, str], today: dt.date, all_agencies: bool
) -> Iterator[Chunk]:
    """``iter_chunks`` run in a forked worker process, so parsing and normalizing (one core) overlap
    the database writes (the other). The queue holds at most 12 chunks (~2,400 records, more than
    one store batch, so the parser keeps going while a batch is written), keeping memory flat;
    ``known`` reaches the worker through the fork, not a pipe."""
    context = multiprocessing.get_context("fork")
    queue = context.Queue(maxsize=12)
    worker = context.Process(
        target=_produce, args=(queue, path, known, today, all_agencies), name="extract-parser", daemon=True
    )
    worker.start()
    try:
        while True:
            try:
                chunk = queue.get(timeout=1.0)
            except Empty:
                if not worker.is_alive():
                    raise SourceError(
                        str(path), f"extract parser exited unexpectedly (code {worker.exitcode})"
                    ) from None
                continue
            if chunk is None:
                break
            yield chunk
    finally:
        if worker.is_alive():
            worker.terminate()
        worker.join()
        queue.close()


def crawl(ctx: CrawlContext) -> Iterator[NormalizedOpportunity]:
    location = ctx.settings.extract_path or ctx.settings.urls.get("GRANTS_GOV_EXTRACT_URL") or ""
    if not location:
        raise SourceError(None, "no extract path or GRANTS_GOV_EXTRACT_URL given")
    path = resolve_path(ctx, location)
    if not path.exists():
        raise SourceError(str(path), f"extract file {path} does not exist")
    known = ctx.known_hashes(SOURCE)
    settings = ctx.settings
    if "fork" in multiprocessing.get_all_start_methods():
        chunks = chunks_from_worker(path, known, settings.today, settings.all_agencies)
    else:
        chunks = iter_chunks(path, known, settings.today, settings.all_agencies)
    for chunk in chunks:
        ctx.fetched += chunk.fetched
        for kind, message, url, record_id in chunk.errors:
            ctx.error(kind, message, url=url, record_id=record_id)
        ctx.seen.extend(chunk.seen)
        yield from chunk.records
        if chunk.crash is not None:
            raise RuntimeError(chunk.crash)
        if chunk.fatal is not None:
            raise SourceError(*chunk.fatal)


SPEC = SourceSpec(
    name="grants_gov_extract",
    record_source=SOURCE,
    crawl=crawl,
    is_full=lambda settings: True,
    vanish_scope="core",
)
