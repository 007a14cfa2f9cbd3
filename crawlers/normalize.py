"""The normalized opportunity record shared by every source, import and export.

``NormalizedOpportunity`` is the JSON-lines contract of DESIGN.md: required ``id``, ``title``,
``agency`` and ``description``; everything else optional; unknown fields are kept (``extra``), not
rejected. Crawlers add the richer fields a source has (HTML description, archive date, forecast
dates, a second deadline) so nothing the source said is lost.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import re
from typing import Any

import nh3
import pydantic_core
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

#: Department codes the product catalogues first; others are accepted as contrast.
CORE_DEPARTMENTS = ("DOJ", "DOL", "ED", "HHS")

#: Fields that make up an opportunity's content; the content hash covers exactly these.
CONTENT_FIELDS: tuple[str, ...] = (
    "number",
    "title",
    "agency",
    "sub_agency",
    "agency_name",
    "aln",
    "status",
    "doc_type",
    "post_date",
    "close_date",
    "close_date_note",
    "second_close_date",
    "second_close_date_label",
    "archive_date",
    "forecast_post_date",
    "forecast_award_date",
    "fiscal_year",
    "award_floor",
    "award_ceiling",
    "total_funding",
    "expected_awards",
    "cost_sharing",
    "eligible_applicants",
    "eligibility_codes",
    "funding_instruments",
    "categories",
    "opportunity_category",
    "description",
    "description_html",
    "url",
    "agency_url",
    "contact",
    "version",
)


#: Column ranges of the store (BIGINT, INTEGER): a larger number is refused here, per record, rather
#: than by PostgreSQL for the whole batch it arrives in.
MAX_BIGINT = 2**63 - 1
MAX_INT = 2**31 - 1


def _without_nul(value: Any) -> Any:
    """``value`` with NUL characters removed from its strings (PostgreSQL text and jsonb refuse them)."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, list):
        return [_without_nul(item) for item in value]
    if isinstance(value, dict):
        return {_without_nul(key): _without_nul(item) for key, item in value.items()}
    return value


class NormalizedOpportunity(BaseModel):
    """One funding opportunity as a source describes it, before it meets the store.

    String lengths and number ranges are the store's columns: a record that would not fit is a
    validation error of that record (reported, skipped), never a failed batch.
    """

    model_config = ConfigDict(extra="allow", str_strip_whitespace=True)

    id: str = Field(min_length=1, max_length=200, description="Stable id within its source.")
    title: str = Field(min_length=1, max_length=1000)
    agency: str = Field(min_length=1, max_length=40, description="Department code: DOJ, DOL, ED, HHS …")
    description: str = Field(description="Plain-text description.")
    source: str = Field(default="import", max_length=500)
    number: str | None = Field(default=None, max_length=200)
    sub_agency: str | None = Field(default=None, max_length=200)
    agency_name: str | None = Field(default=None, max_length=500)
    aln: list[str] = Field(default_factory=list)
    status: str | None = None
    doc_type: str | None = Field(default=None, max_length=20)
    post_date: dt.date | None = None
    close_date: dt.date | None = None
    close_date_note: str | None = None
    second_close_date: dt.date | None = None
    second_close_date_label: str | None = Field(default=None, max_length=200)
    archive_date: dt.date | None = None
    forecast_post_date: dt.date | None = None
    forecast_award_date: dt.date | None = None
    fiscal_year: int | None = Field(default=None, ge=0, le=9999)
    award_floor: int | None = Field(default=None, ge=0, le=MAX_BIGINT)
    award_ceiling: int | None = Field(default=None, ge=0, le=MAX_BIGINT)
    total_funding: int | None = Field(default=None, ge=0, le=MAX_BIGINT)
    expected_awards: int | None = Field(default=None, ge=0, le=MAX_INT)
    cost_sharing: bool | None = None
    eligible_applicants: str | None = None
    eligibility_codes: list[str] = Field(default_factory=list)
    funding_instruments: list[str] = Field(default_factory=list)
    categories: list[str] = Field(default_factory=list)
    opportunity_category: str | None = Field(default=None, max_length=10)
    description_html: str | None = None
    url: str | None = Field(default=None, max_length=1000)
    agency_url: str | None = Field(default=None, max_length=1000)
    contact: str | None = None
    version: str | None = Field(default=None, max_length=40)
    #: Fingerprint of the raw source record (not content): lets a re-ingest skip an unchanged record
    #: before normalizing it. Never part of the content hash or the export.
    source_hash: str | None = Field(default=None, max_length=64, exclude=True)

    @field_validator("aln", "eligibility_codes", "funding_instruments", "categories", mode="before")
    @classmethod
    def _listify(cls, value: Any) -> Any:
        """Accept a single string or null where a list is expected (common in hand-made files)."""
        if value is None:
            return []
        if isinstance(value, str):
            return [part.strip() for part in value.replace("|", ",").split(",") if part.strip()]
        return value

    @field_validator("agency", mode="after")
    @classmethod
    def _upper_department(cls, value: str) -> str:
        return value if value in ("Treasury", "AmeriCorps", "other") else value.upper()

    @field_validator("status", mode="after")
    @classmethod
    def _known_status(cls, value: str | None) -> str | None:
        if value is None:
            return None
        lowered = value.lower()
        if lowered not in ("forecasted", "posted", "closed", "archived"):
            raise ValueError("status must be one of forecasted, posted, closed, archived")
        return lowered

    @field_validator("version", mode="before")
    @classmethod
    def _version_str(cls, value: Any) -> Any:
        return None if value is None else str(value)

    @model_validator(mode="after")
    def _drop_nul_characters(self) -> NormalizedOpportunity:
        """Sources and hand-made files do ship NUL bytes; they carry no meaning, so they go."""
        for name, value in self.__dict__.items():
            if (isinstance(value, str) and "\x00" in value) or (
                isinstance(value, list) and any(isinstance(v, str) and "\x00" in v for v in value)
            ):
                self.__dict__[name] = _without_nul(value)
        if self.__pydantic_extra__ and _without_nul(self.__pydantic_extra__) != self.__pydantic_extra__:
            self.__pydantic_extra__ = _without_nul(self.__pydantic_extra__)
        if not (self.id and self.title and self.agency):
            raise ValueError("id, title and agency must not be empty (a NUL character is not a value)")
        return self

    def content(self) -> dict[str, Any]:
        """The content fields as JSON-ready values (dates as ISO strings)."""
        data = self.model_dump(include=set(CONTENT_FIELDS), mode="json")
        return {name: data.get(name) for name in CONTENT_FIELDS}

    def extra_fields(self) -> dict[str, Any]:
        """Fields the contract does not name, kept verbatim."""
        return dict(self.model_extra or {})

    def content_hash(self) -> str:
        """Hash of the content (and kept unknown fields), so unchanged records are skipped cheaply.

        Content fields come in ``CONTENT_FIELDS`` order and extra fields sorted, so the serialization
        is canonical. The field values go to pydantic-core's serializer as they are: for the types
        the fields hold (str, int, bool, date, list of str) it writes exactly what ``content()``
        (``model_dump`` in JSON mode) would, without building that dict first (a fifth of the
        store side's time on an extract load).
        """
        values = self.__dict__
        extra = self.model_extra or {}
        payload = {
            "content": {name: values[name] for name in CONTENT_FIELDS},
            "extra": {k: extra[k] for k in sorted(extra)},
        }
        blob = pydantic_core.to_json(payload, fallback=str)
        return hashlib.sha256(blob).hexdigest()



# ---------------------------------------------------------------------------------------------
# Field parsers: every source's quirks end here, so records compare equal across sources.
# ---------------------------------------------------------------------------------------------

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
    if type(value) is str and len(value) == 8 and value.isascii() and value.isdigit():
        # MMDDYYYY, the extract's only form (what _COMPACT_DATE reads, without the regex).
        return _make_date(int(value[4:]), int(value[:2]), int(value[2:4]))
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
_SCALE = {"million": 1_000_000, "m": 1_000_000, "billion": 1_000_000_000, "b": 1_000_000_000,
          "thousand": 1_000, "k": 1_000}


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
    if type(value) is str and 0 < len(value) <= 15 and value.isascii() and value.isdigit():
        # Plain whole dollars: what the regex below reads (a float is exact up to 15 digits).
        amount = int(value)
        return None if zero_is_none and amount == 0 else amount
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


def parse_money_range(value: Any) -> tuple[int | None, int | None]:
    """(floor, ceiling) from ``"$250,000-$500,000"``, ``"Up to $500,000"`` or a single figure."""
    if value is None:
        return None, None
    text = str(value)
    figures = [f for m in _MONEY_NUMBER.finditer(text) if (f := parse_money(m.group(0))) is not None]
    if not figures:
        return None, None
    if len(figures) == 1:
        return (None, figures[0]) if re.search(r"up to|maximum|not to exceed", text, re.I) else (
            figures[0],
            figures[0],
        )
    return min(figures[:2]), max(figures[:2])


def parse_count(value: Any) -> int | None:
    """A count from ``"7"``, ``25.0``, ``"Up to 5 awards"``; None for none/empty/0."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return int(value) or None
    if type(value) is str and value.isascii() and value.isdigit():
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
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")

#: Tags a stored description may keep; everything else (scripts, styles, forms, images) goes.
ALLOWED_TAGS = {
    "a", "b", "strong", "i", "em", "u", "p", "br", "ul", "ol", "li", "h2", "h3", "h4", "h5", "h6",
    "blockquote", "table", "thead", "tbody", "tr", "td", "th", "span", "div", "sub", "sup", "pre", "code",
}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "td": {"colspan", "rowspan"}, "th": {"colspan", "rowspan"}}
#: Built once: ``nh3.clean`` converts its options into a new sanitizer on every call (half its cost).
_SANITIZER = nh3.Cleaner(
    tags=ALLOWED_TAGS,
    attributes=ALLOWED_ATTRIBUTES,
    url_schemes={"http", "https", "mailto"},
    link_rel="noopener noreferrer nofollow",
)


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
    lines = text.splitlines()
    if len(lines) == 1:
        return " ".join(lines[0].split())
    tidied = [" ".join(line.split()) for line in lines]
    return "\n".join([line for line in tidied if line])


def html_to_text(markup: str) -> str:
    """Plain text of (sanitized) HTML: block elements become line breaks, whitespace is tidied."""
    text = _TAG.sub("", _BLOCK_BREAK.sub("\n", markup))
    if "&" in text:
        text = html.unescape(text)
    return tidy_whitespace(text)


def sanitize_html(markup: str) -> str:
    """Markup safe to show: only ``ALLOWED_TAGS``, no scripts, styles, event handlers or js: links."""
    return _SANITIZER.clean(markup).strip()


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
    paragraphs = [tidied for part in _PARAGRAPH_BREAK.split(text) if (tidied := tidy_whitespace(part))]
    rendered = "".join("<p>" + html.escape(p).replace("\n", "<br>") + "</p>" for p in paragraphs)
    # Paragraphs are split at blank lines, which tidying drops anyway: joined, they are the text
    # tidied as a whole (without reading it twice).
    return rendered or None, "\n".join(paragraphs)


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


def parse_aln(value: Any) -> list[str]:
    """Assistance listing numbers (``16.045``) found in a value (string, list, or prose)."""
    if value is None:
        return []
    items = value if isinstance(value, list | tuple) else [value]
    found: list[str] = []
    for item in items:
        for match in re.finditer(r"\b(\d{2}\.\d{3})[A-Z]?\b", str(item)):
            if match[1] not in found:
                found.append(match[1])
    return found
