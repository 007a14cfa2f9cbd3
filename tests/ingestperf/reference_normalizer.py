"""The Grants.gov extract normalizer as it was before the byte-level fast path (main at c9bb55e),
kept verbatim as the oracle the fast path is compared against field by field.

lxml ``iterparse`` over the whole file, ``element_fields`` per record, the field parsers of
``crawlers/normalize.py`` of that commit, full pydantic validation of every record, and the content
hash through ``model_dump``. Only ``NormalizedOpportunity`` and the code tables are shared with the
product code (their behaviour is not what the fast path changes).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import re
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import nh3
import pydantic_core
from lxml import etree

from crawlers.codes import APPLICANT_TYPES, department_for, is_core, labels
from crawlers.normalize import CONTENT_FIELDS, NormalizedOpportunity

SOURCE = "grants_gov"
SYNOPSIS = "OpportunitySynopsisDetail_1_0"
FORECAST = "OpportunityForecastDetail_1_0"
DETAIL_URL = "https://www.grants.gov/search-results-detail/{id}"

REPEATED = frozenset(
    {"FundingInstrumentType", "CategoryOfFundingActivity", "CFDANumbers", "EligibleApplicants"}
)


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
    record = NormalizedOpportunity(**values)
    record.source_hash = digest
    return record


_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ),
        start=1,
    )
    for name in names
}
_SLASH_DATE = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})\b")
_COMPACT_DATE = re.compile(r"^(\d{1,2})(\d{2})(\d{4})$")
_ISO_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:$|[T\s-])")
_MONTH_NAME_DATE = re.compile(r"\b([A-Za-z]{3,9})\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4})\b")
_EMPTY_VALUES = {"", "none", "n/a", "na", "null", "tbd", "tba", "-", "--", "not applicable"}


def _make_date(year: int, month: int, day: int) -> dt.date | None:
    try:
        return dt.date(year, month, day)
    except ValueError:
        return None


def parse_date(value: Any) -> dt.date | None:
    """A date from any form the sources use, or None when there is none.

    Handles ``MM/DD/YYYY`` (and ``M/D/YYYY``), ``MMDDYYYY`` (and the 7-digit form a spreadsheet leaves
    when it drops the leading zero), ``Sep 30, 2024 12:00:00 AM EDT``, ``YYYY-MM-DD-HH-MM-SS``,
    ISO dates and timestamps, and prose such as ``Wednesday, May 10, 2023`` or
    ``8:59 p.m. Eastern Time on July 30, 2024``. The calendar date is kept as published (no
    time-zone shift: a deadline of "Sep 30 12:00 AM EDT" is Sep 30).
    """
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = str(value).strip()
    if text.lower() in _EMPTY_VALUES:
        return None
    if match := _SLASH_DATE.match(text):
        return _make_date(int(match[3]), int(match[1]), int(match[2]))
    if match := _COMPACT_DATE.match(text):
        return _make_date(int(match[3]), int(match[1]), int(match[2]))
    if match := _ISO_DATE.match(text):
        return _make_date(int(match[1]), int(match[2]), int(match[3]))
    for match in _MONTH_NAME_DATE.finditer(text):
        month = _MONTHS.get(match[1].lower())
        if month:
            return _make_date(int(match[3]), month, int(match[2]))
    return None


_MONEY_NUMBER = re.compile(r"\$?\s*(\d[\d,]*(?:\.\d+)?)\s*(million|billion|thousand|[mbk]\b)?", re.I)
_SCALE = {
    "million": 1_000_000,
    "m": 1_000_000,
    "billion": 1_000_000_000,
    "b": 1_000_000_000,
    "thousand": 1_000,
    "k": 1_000,
}


def parse_money(value: Any, *, zero_is_none: bool = True) -> int | None:
    """Whole dollars from ``"4000000"``, ``"$1,500,000.00"``, ``"up to $8 million"``, 25.0 …

    ``"none"``, empty, missing and (by default) ``"0"`` mean "not stated" and give None: Grants.gov
    writes 0 where an agency left the amount blank. A range gives its first (lowest) figure.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        amount = int(value)
        return None if amount < 0 or (zero_is_none and amount == 0) else amount
    text = str(value).strip()
    if text.lower() in _EMPTY_VALUES:
        return None
    match = _MONEY_NUMBER.search(text)
    if not match:
        return None
    number = float(match[1].replace(",", ""))
    if match[2]:
        number *= _SCALE[match[2].lower()]
    amount = round(number)
    if zero_is_none and amount == 0:
        return None
    return amount


def parse_count(value: Any) -> int | None:
    """A count from ``"7"``, ``25.0``, ``"Up to 5 awards"``; None for none/empty/0."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return int(value) or None
    match = re.search(r"\d[\d,]*", str(value))
    if not match:
        return None
    return int(match[0].replace(",", "")) or None


def parse_bool(value: Any) -> bool | None:
    """``true``/``Yes``/``Y`` → True, ``false``/``No``/``N`` → False, anything else None."""
    if isinstance(value, bool):
        return value
    if value is None:
        return None
    text = str(value).strip().lower()
    if text in ("yes", "y", "true", "1"):
        return True
    if text in ("no", "n", "false", "0"):
        return False
    return None


_ESCAPED = re.compile(r"&(?:lt|gt|amp|quot|apos|nbsp|#\d{1,6}|#x[0-9a-fA-F]{1,6}|[a-zA-Z]{2,8});")
_TAG = re.compile(r"<[a-zA-Z!/][^>]*>")
_BLOCK_BREAK = re.compile(
    r"<(?:br|/?(?:p|div|li|ul|ol|h[1-6]|tr|table|blockquote|pre|section|article|dd|dt))\b[^>]*>", re.I
)
_SCRIPT_BLOCKS = re.compile(r"<(script|style)\b.*?</\1\s*>", re.I | re.S)
_SPACES = re.compile(r"[ \t\r\f\v\u00a0]+")
_BLANK_LINES = re.compile(r"\s*\n\s*")

#: Tags a stored description may keep; everything else (scripts, styles, forms, images) goes.
ALLOWED_TAGS = {
    "a",
    "b",
    "strong",
    "i",
    "em",
    "u",
    "p",
    "br",
    "ul",
    "ol",
    "li",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "blockquote",
    "table",
    "thead",
    "tbody",
    "tr",
    "td",
    "th",
    "span",
    "div",
    "sub",
    "sup",
    "pre",
    "code",
}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "td": {"colspan", "rowspan"}, "th": {"colspan", "rowspan"}}


def decode_entities(text: str) -> str:
    """Undo entity escaping, including the double escaping some sources ship (``&amp;lt;br/&amp;gt;``)."""
    for _ in range(3):
        if not _ESCAPED.search(text):
            break
        decoded = html.unescape(text)
        if decoded == text:
            break
        text = decoded
    return text


def tidy_whitespace(text: str) -> str:
    """Collapse runs of spaces (incl. no-break spaces) and drop blank lines; keep single line breaks."""
    if "\xa0" in text:
        text = text.replace("\xa0", " ")
    lines = (" ".join(line.split()) for line in text.splitlines())
    return "\n".join(line for line in lines if line)


def html_to_text(markup: str) -> str:
    """Plain text of (sanitized) HTML: block elements become line breaks, whitespace is tidied."""
    text = _TAG.sub("", _BLOCK_BREAK.sub("\n", markup))
    if "&" in text:
        text = html.unescape(text)
    return tidy_whitespace(text)


def sanitize_html(markup: str) -> str:
    """Markup safe to show: only ``ALLOWED_TAGS``, no scripts, styles, event handlers or js: links."""
    return nh3.clean(
        markup,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    ).strip()


def clean_description(raw: Any) -> tuple[str | None, str]:
    """(sanitized HTML, plain text) of a description as published (HTML, escaped HTML or text).

    Plain text without markup gets a minimal HTML rendering (paragraphs and line breaks) so every
    record has both forms.
    """
    if raw is None:
        return None, ""
    text = decode_entities(str(raw)).strip()
    if not text:
        return None, ""
    if _TAG.search(text):
        safe = sanitize_html(text)
        return (safe or None), html_to_text(safe)
    plain = tidy_whitespace(text)
    paragraphs = [p for p in re.split(r"\n\s*\n", text) if p.strip()]
    rendered = "".join(
        "<p>" + "<br>".join(html.escape(line) for line in tidy_whitespace(p).split("\n")) + "</p>"
        for p in paragraphs
    )
    return rendered or None, plain


def clean_text(raw: Any, *, max_length: int | None = None) -> str | None:
    """A short free-text field (title, contact, eligibility) as plain text, or None when empty.

    The result is text, never rendered as HTML, so markup is reduced to its words (scripts and
    styles dropped with their content) without a sanitizer pass.
    """
    if raw is None:
        return None
    text = str(raw)
    if "&" in text:
        text = decode_entities(text)
    if "<" in text and _TAG.search(text):
        text = html_to_text(_SCRIPT_BLOCKS.sub("", text))
    else:
        text = tidy_whitespace(text)
    if not text:
        return None
    return text[:max_length] if max_length else text


def content_hash(record: NormalizedOpportunity) -> str:
    """``NormalizedOpportunity.content_hash`` as it was: content through ``model_dump(mode="json")``."""
    data = record.model_dump(include=set(CONTENT_FIELDS), mode="json")
    content = {name: data.get(name) for name in CONTENT_FIELDS}
    extra = record.extra_fields()
    payload = {"content": content, "extra": {k: extra[k] for k in sorted(extra)}}
    return hashlib.sha256(pydantic_core.to_json(payload, fallback=str)).hexdigest()


def records(path: Path, today: dt.date, all_agencies: bool = False) -> Iterator[NormalizedOpportunity]:
    """Every record the old ingest would have stored from an uncompressed extract, in file order."""
    with path.open("rb") as stream:
        for kind, element in iter_elements(stream):
            if not all_agencies and not is_core(element.findtext("{*}AgencyCode")):
                continue
            if not (element.findtext("{*}OpportunityID") or "").strip():
                continue
            status = status_for(
                kind, element.findtext("{*}CloseDate"), element.findtext("{*}ArchiveDate"), today
            )
            yield to_record(kind, element_fields(element), status)
