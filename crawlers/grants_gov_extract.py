"""Grants.gov daily XML extract (``GrantsDBExtractYYYYMMDDv2.zip``): first load and nightly reconciliation.

One job: read the extract (a ``.zip`` holding one XML, a ``.xml``, or a URL that is downloaded to
``CRAWL_ARCHIVE_DIR`` first) as a stream with flat memory, keep DOJ, DOL, ED and HHS records (or all
with ``all_agencies``) and hand them on as normalized records.

Most of an extract is never parsed as XML: ``crawlers.extract_scan`` splits the bytes at the record
tags and reads the agency code, id and dates from the raw record, and a fingerprint of the record's
bytes (with the parser version and the status its dates give today) is compared with the one stored
for it. Other departments' records are dropped and unchanged ones only marked seen before anything
else is read; only new or changed records are read whole and normalized. A file the scanner does not
read (a DTD, another encoding, prefixed or nested records …) is parsed from there on with
``lxml.etree.iterparse`` (namespace-aware: the real file puts every element in
``http://apply.grants.gov/system/OpportunityDetail-V1.0``; copies without it are read too), as is a
single record whose bytes are not plain; either way a record gives the same normalized record.

This runs in a forked worker process feeding the store writer through a small bounded queue, so the
two use both cores (where ``fork`` is not available the same code runs in-process). With a stager
from the store side (``CrawlContext.stage``) the worker also turns its records into what the store
writes, so they cross the process boundary as plain rows rather than as objects.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import multiprocessing
import re
import zipfile
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from pathlib import Path
from queue import Empty
from typing import IO, Any
from urllib.parse import urljoin, urlsplit

from lxml import etree
from pydantic import ValidationError

from crawlers import extract_scan
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
from crawlers.runner import CrawlContext, SourceError, SourceSpec, Staged, Stager
from crawlers.worker_channel import Channel, WorkerGone

SOURCE = "grants_gov"
NAMESPACE = "http://apply.grants.gov/system/OpportunityDetail-V1.0"
SYNOPSIS = "OpportunitySynopsisDetail_1_0"
FORECAST = "OpportunityForecastDetail_1_0"
REPEATED = extract_scan.REPEATED
#: Bump when the mapping below changes, so the next ingest normalizes every record again.
#: (3: fingerprints are taken of the record's bytes as published, not of lxml's serialization.)
PARSER_VERSION = "3"
DETAIL_URL = "https://www.grants.gov/search-results-detail/{id}"
_EXTRACT_LINK = re.compile(r"""href=["']([^"']*GrantsDBExtract(\d{8})v2\.zip)["']""", re.I)


@contextlib.contextmanager
def open_extract(path: Path) -> Iterator[IO[bytes]]:
    """The XML stream of an extract file: the first ``.xml`` member of a zip, or the file itself."""
    if not path.exists():
        raise SourceError(str(path), f"extract file {path} does not exist")
    with path.open("rb") as head:
        magic = head.read(4)
    if magic.startswith(b"PK") and not zipfile.is_zipfile(path):
        raise SourceError(str(path), f"cannot read {path.name}: not a complete zip archive (truncated?)")
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
    """Fingerprint of the record as published (its bytes from start tag to end tag; where lxml had
    to parse the file, its serialized element without the whitespace after it), the parser version
    and the status its dates give today (so a record whose deadline passed is normalized again)."""
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


#: (kind, opportunity id, status, fingerprint, bytes) of a record left for the store process to read.
RawEntry = tuple[str, str, str, str, bytes]


@dataclass
class Chunk:
    """What the reader hands the store side at once: records to write, ids only seen, issues."""

    records: list[NormalizedOpportunity] = field(default_factory=list)
    seen: list[str] = field(default_factory=list)
    #: ``records`` and ``seen`` as the store side's stager made them ready (then both are empty).
    staged: Staged | None = None
    #: New or changed records the store process parses and normalizes itself (``Balance``).
    raw: list[RawEntry] = field(default_factory=list)
    prolog: extract_scan.Prolog | None = None
    #: Records seen earlier in the same file: never staged (``upsert_many`` compares them).
    repeated: list[NormalizedOpportunity] = field(default_factory=list)
    #: (kind, message, url, record_id) of records that could not be read.
    errors: list[tuple[str, str, str | None, str | None]] = field(default_factory=list)
    fetched: int = 0
    #: (url, message) of a failure that ended the file early; earlier chunks are whole.
    fatal: tuple[str | None, str] | None = None
    #: An unexpected exception in the worker process (re-raised by the parent as a crash).
    crash: str | None = None

    def full(self) -> bool:
        return len(self.records) + len(self.raw) >= CHUNK_RECORDS or len(self.seen) >= CHUNK_RECORDS * 10


#: Records per chunk (and ten times as many only-seen ids): about a megabyte crossing the queue.
CHUNK_RECORDS = 250


@dataclass
class _Reader:
    """The per-record decisions both ways of reading share: filter, fingerprint, skip or normalize."""

    path: Path
    known: Mapping[str, str]
    today: dt.date
    all_agencies: bool
    stage: Stager | None
    #: Asked at each new chunk: whether the store process is idle and should read its records.
    share: Callable[[], bool] | None = None
    chunk: Chunk = field(default_factory=Chunk)
    #: Record elements read so far (kept or not).
    count: int = 0
    #: Ids handed on to be written so far (a second copy of one is compared, never inserted).
    emitted: set[str] = field(default_factory=set)
    sharing: bool = False

    def admit(
        self, kind: str, agency_code: str | None, opp_id: str | None, dates: tuple[str | None, str | None]
    ) -> tuple[str, str] | None:
        """(id, status) of a record element to keep; None for another department's (dropped) or one
        without an id (reported). ``dates`` are its close and archive dates as published."""
        if not self.all_agencies and not is_core(agency_code):
            return None
        opp_id = (opp_id or "").strip()
        if not opp_id:
            message = f"record {self.count} of {self.path.name} has no OpportunityID"
            self.chunk.errors.append(("parse", message, str(self.path), None))
            return None
        self.chunk.fetched += 1
        return opp_id, status_for(kind, dates[0], dates[1], self.today)

    def changed(self, opp_id: str, digest: str) -> bool:
        """Whether the record must be read and normalized (else it is only marked seen)."""
        if self.known.get(opp_id) == digest:
            self.chunk.seen.append(opp_id)
            return False
        return True

    def shares(self, opp_id: str) -> bool:
        """Whether this record goes to the store process unread (see ``Balance``)."""
        return self.sharing and opp_id not in self.emitted

    def add_raw(self, entry: RawEntry) -> None:
        self.emitted.add(entry[1])
        self.chunk.raw.append(entry)

    def add(self, kind: str, opp_id: str, status: str, digest: str, fields: dict[str, Any]) -> None:
        try:
            record = to_record(kind, fields, status, digest)
        except (ValidationError, ValueError) as exc:
            self.chunk.errors.append(("parse", f"opportunity {opp_id}: {exc}", str(self.path), opp_id))
            self.chunk.seen.append(opp_id)
            return
        if opp_id in self.emitted:
            self.chunk.repeated.append(record)
        else:
            self.emitted.add(opp_id)
            self.chunk.records.append(record)

    def take_element(self, kind: str, element: Any, raw: bytes | None = None) -> None:
        """One parsed record element; ``raw`` its bytes as published when the scanner had them."""
        kept = self.admit(
            kind,
            element.findtext("{*}AgencyCode"),
            element.findtext("{*}OpportunityID"),
            (element.findtext("{*}CloseDate"), element.findtext("{*}ArchiveDate")),
        )
        if kept is None:
            return
        opp_id, status = kept
        if raw is None:
            raw = etree.tostring(element, with_tail=False)
        digest = raw_hash(raw, kind, status)
        if self.changed(opp_id, digest):
            self.add(kind, opp_id, status, digest, element_fields(element))

    def full(self) -> bool:
        return self.chunk.full()

    def hand_over(self) -> Chunk:
        """The chunk so far (staged when a stager is set), and a fresh one to fill."""
        chunk, self.chunk = self.chunk, Chunk()
        if self.stage is not None and (chunk.records or chunk.seen):
            chunk.staged = self.stage(chunk.records, chunk.seen)
            chunk.records, chunk.seen = [], []
        self.sharing = self.share is not None and self.share()
        return chunk


def _scan_records(reader: _Reader, stream: IO[bytes]) -> Iterator[Chunk]:
    """The byte-level reading (see the module docstring); ``NotPlain`` hands over to lxml."""
    scanner = extract_scan.Scanner(stream)
    field_text = extract_scan.field_text
    for record in scanner.records():
        reader.count += 1
        data = record.data
        try:
            try:
                agency_code = field_text(data, b"AgencyCode")
                if not reader.all_agencies and not is_core(agency_code):
                    continue
                opp_id = field_text(data, b"OpportunityID")
                dates = (field_text(data, b"CloseDate"), field_text(data, b"ArchiveDate"))
            except extract_scan.Irregular:
                element = extract_scan.parse_record(record, scanner.prolog)
                reader.take_element(record.kind, element, data)
            else:
                kept = reader.admit(record.kind, agency_code, opp_id, dates)
                if kept is not None:
                    opp_id, status = kept
                    digest = raw_hash(data, record.kind, status)
                    # An unchanged record is only marked seen (by ``changed``).
                    if reader.changed(opp_id, digest):
                        if reader.shares(opp_id):
                            reader.chunk.prolog = scanner.prolog
                            reader.add_raw((record.kind, opp_id, status, digest, data))
                        else:
                            element = extract_scan.parse_record(record, scanner.prolog)
                            reader.add(record.kind, opp_id, status, digest, element_fields(element))
        except etree.XMLSyntaxError as exc:
            # The record is not read: the file is whole up to the one before it.
            reader.count -= 1
            line = scanner.line_of(record) + max((exc.lineno or 1) - 1, 0)
            raise extract_scan.ExtractSyntaxError(_without_position(exc.msg), line) from exc
        if reader.full():
            yield reader.hand_over()


def _parse_records(reader: _Reader, stream: IO[bytes], skip: int) -> Iterator[Chunk]:
    """lxml's reading of the whole file, leaving out the first ``skip`` records (already read)."""
    seen = 0
    for kind, element in iter_elements(stream):
        seen += 1
        if seen <= skip:
            continue
        reader.count += 1
        reader.take_element(kind, element)
        if reader.full():
            yield reader.hand_over()


def iter_chunks(
    path: Path,
    known: Mapping[str, str],
    today: dt.date,
    all_agencies: bool,
    stage: Stager | None = None,
    share: Callable[[], bool] | None = None,
) -> Iterator[Chunk]:
    """Filter, fingerprint and normalize the extract into chunks (a failure ends with ``fatal``).

    ``share`` (asked at each new chunk) says whether to leave that chunk's new or changed records
    unread for the consumer (``Chunk.raw``; ``read_raw`` reads them the same way).
    """
    reader = _Reader(path, known, today, all_agencies, stage, share)
    try:
        with open_extract(path) as stream:
            try:
                yield from _scan_records(reader, stream)
            except extract_scan.NotPlain as exc:
                done = exc.records_done
            else:
                done = -1
        if done >= 0:
            reader.sharing = False
            reader.share = None
            with open_extract(path) as stream:
                yield from _parse_records(reader, stream, done)
    except SourceError as exc:
        reader.chunk.fatal = (exc.url, exc.message)
    except extract_scan.ExtractSyntaxError as exc:
        reader.chunk.fatal = (str(path), _malformed(path, reader.count, exc.line, exc.message))
    except etree.XMLSyntaxError as exc:
        reader.chunk.fatal = (str(path), _malformed(path, reader.count, exc.lineno or 0, exc.msg))
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:
        reader.chunk.fatal = (str(path), f"cannot read {path.name}: {exc}")
    fatal = reader.chunk.fatal
    last = reader.hand_over()
    last.fatal = fatal
    yield last


def read_raw(chunk: Chunk, path: Path) -> list[NormalizedOpportunity]:
    """The records of ``chunk.raw``, read as the reader would have; a record whose XML does not
    parse raises ``SourceError`` (the file is malformed there)."""
    records: list[NormalizedOpportunity] = []
    prolog = chunk.prolog
    if prolog is None:  # the reader sets it with the first raw record
        return records
    for kind, opp_id, status, digest, data in chunk.raw:
        try:
            element = extract_scan.parse_record(extract_scan.RawRecord(kind, data, 0), prolog)
        except etree.XMLSyntaxError as exc:
            message = f"malformed XML in {path.name} (opportunity {opp_id}): {_without_position(exc.msg)}"
            raise SourceError(str(path), message) from exc
        try:
            records.append(to_record(kind, element_fields(element), status, digest))
        except (ValidationError, ValueError) as exc:
            chunk.errors.append(("parse", f"opportunity {opp_id}: {exc}", str(path), opp_id))
            chunk.seen.append(opp_id)
    return records


def _malformed(path: Path, records: int, line: int, message: str) -> str:
    return f"malformed XML in {path.name} after {max(records, 0)} records (line {line}): {message}"


def _without_position(message: str) -> str:
    """lxml's message without its ", line L, column C" (of the record alone: misleading)."""
    return re.sub(r", line \d+, column \d+$", "", message)


class Balance:
    """Shares reading between the worker and the store process, which has spare time while its
    queue runs dry (typically while the database works on the other core): at each new chunk
    the worker asks whether fewer than two chunks wait, and if so leaves that chunk's new and
    changed records unread for the store process to read before writing them."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel

    def __call__(self) -> bool:
        try:
            return self.channel.in_flight() < 2
        except NotImplementedError:  # macOS has no sem_getvalue
            return False


def _produce(
    channel: Channel,
    path: Path,
    known: Mapping[str, str],
    today: dt.date,
    all_agencies: bool,
    stage: Stager | None,
) -> None:
    """Worker process body: every chunk into the (bounded) channel, then ``None``."""
    try:
        for chunk in iter_chunks(path, known, today, all_agencies, stage, Balance(channel)):
            channel.put(chunk)
    except Exception as exc:
        channel.put(Chunk(crash=f"extract parser crashed: {type(exc).__name__}: {exc}"))
    channel.put(None)
    channel.finish()


def chunks_from_worker(
    path: Path,
    known: Mapping[str, str],
    today: dt.date,
    all_agencies: bool,
    stage: Stager | None = None,
) -> Iterator[Chunk]:
    """``iter_chunks`` run in a forked worker process, so reading and normalizing (one core) overlap
    the database writes (the other). At most 4 chunks are in flight (~1,000 records, a store
    batch, so the reader keeps going while a batch is written), keeping memory flat;
    ``known`` and the stager reach the worker through the fork, not a pipe. A worker that dies,
    even half-way through handing over a chunk, fails the run instead of hanging it."""
    context = multiprocessing.get_context("fork")
    channel = Channel(context, maxsize=4)
    worker = context.Process(
        target=_produce,
        args=(channel, path, known, today, all_agencies, stage),
        name="extract-parser",
        daemon=True,
    )
    worker.start()
    channel.worker_started()
    try:
        while (chunk := _next_chunk(channel, worker, path)) is not None:
            yield chunk
    finally:
        if worker.is_alive():
            worker.terminate()
        worker.join()
        channel.close()


def _next_chunk(channel: Channel, worker: BaseProcess, path: Path) -> Chunk | None:
    """The worker's next chunk (``None``: it has finished); ``SourceError`` once it is gone."""
    gone = False
    while not gone:
        try:
            chunk: Chunk | None = channel.get(timeout=1.0)
            return chunk
        except Empty:
            gone = not worker.is_alive()
        except WorkerGone:
            gone = True
    worker.join(timeout=5.0)
    raise SourceError(str(path), f"extract parser exited unexpectedly (code {worker.exitcode})")


def crawl(ctx: CrawlContext) -> Iterator[NormalizedOpportunity | Staged]:
    location = ctx.settings.extract_path or ctx.settings.urls.get("GRANTS_GOV_EXTRACT_URL") or ""
    if not location:
        raise SourceError(None, "no extract path or GRANTS_GOV_EXTRACT_URL given")
    path = resolve_path(ctx, location)
    if not path.exists():
        raise SourceError(str(path), f"extract file {path} does not exist")
    known = ctx.known_hashes(SOURCE)
    settings = ctx.settings
    if "fork" in multiprocessing.get_all_start_methods():
        chunks = chunks_from_worker(path, known, settings.today, settings.all_agencies, ctx.stage)
    else:
        chunks = iter_chunks(path, known, settings.today, settings.all_agencies, ctx.stage)
    for chunk in chunks:
        if chunk.raw:
            records = read_raw(chunk, path)
            if ctx.stage is not None:
                yield ctx.stage(records, [])
            else:
                yield from records
        ctx.fetched += chunk.fetched
        for kind, message, url, record_id in chunk.errors:
            ctx.error(kind, message, url=url, record_id=record_id)
        ctx.seen.extend(chunk.seen)
        if chunk.staged is not None:
            yield chunk.staged
        yield from chunk.records
        yield from chunk.repeated
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
