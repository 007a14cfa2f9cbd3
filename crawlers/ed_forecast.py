"""ED "Forecast of Funding Opportunities" (``ED_FORECAST_URL``).

One job: read the forecast charts (one table per principal office: IES, OESE, OPE, OSERS, OCTAE,
OELA) and turn each row into a forecast record. No real chart rows were available offline, so the
parser is built around the documented chart structure rather than fixed column positions: each
table's header cells are matched by their words (assistance listing/program, applications
available, deadline for transmittal, intergovernmental review, available funds, average size, range,
number of awards, project period, contact). A Federal Register citation after the "applications
available" date (``87 FR 1234``) means the notice is already published. A page without any table
whose header names a program and a date column is a layout change.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator

from bs4 import Tag

from crawlers.normalize import (
    NormalizedOpportunity,
    clean_text,
    parse_aln,
    parse_count,
    parse_date,
    parse_money,
    parse_money_range,
)
from crawlers.pages import main_content, soup_of, text_of
from crawlers.runner import CrawlContext, LayoutChanged, SourceSpec

SOURCE = "ed_forecast"
_FR_CITATION = re.compile(r"\b\d{2,3}\s+FR\s+\d+\b")
_COMPETITION = re.compile(r"\b(\d{2}\.\d{3}[A-Z]{0,3}\d?)\b")
_FISCAL_YEAR = re.compile(r"Fiscal\s+Year\s*(?:\(FY\))?\s*(\d{4})|\bFY\s*(\d{4})\b", re.I)
OFFICES = {
    "institute of education sciences": "IES",
    "elementary and secondary education": "OESE",
    "postsecondary education": "OPE",
    "special education and rehabilitative services": "OSERS",
    "career, technical": "OCTAE",
    "english language acquisition": "OELA",
}


def column_kind(header: str) -> str | None:
    """What a chart column holds, from its header words."""
    text = header.lower()
    if "intergovernmental" in text:
        return "igr"
    if "contact" in text:
        return "contact"
    if "average" in text:
        return "average"
    if "range" in text:
        return "range"
    if "number of" in text or text.strip() in ("number", "no. of awards"):
        return "awards"
    if "fund" in text:
        return "funds"
    if "period" in text:
        return "period"
    if "deadline" in text or "due" in text:
        return "deadline"
    if "available" in text or "notice" in text:
        return "available"
    if "cfda" in text or "assistance listing" in text or "program" in text or "aln" in text:
        return "program"
    return None


def _office_before(table: Tag) -> tuple[str | None, str | None]:
    caption = table.find("caption")
    candidates = [text_of(caption)] if isinstance(caption, Tag) else []
    heading = table.find_previous(["h2", "h3", "h4"])
    if isinstance(heading, Tag):
        candidates.append(text_of(heading))
    for text in candidates:
        lowered = text.lower()
        for words, code in OFFICES.items():
            if words in lowered:
                name = re.sub(r"^chart\s*\d+\s*[-\u2013\u2014:]?\s*", "", text, flags=re.I).strip()
                return code, name or None
    return None, None


def _header_cells(table: Tag) -> tuple[list[str], list[Tag]]:
    rows = [r for r in table.find_all("tr") if isinstance(r, Tag)]
    for index, row in enumerate(rows):
        cells = row.find_all(["th", "td"])
        if row.find("th") or index == 0:
            return [text_of(c) for c in cells], rows[index + 1 :]
    return [], []


def parse_page(markup: str, page_url: str, today: dt.date) -> list[NormalizedOpportunity]:
    soup = soup_of(markup)
    content = main_content(soup)
    page_text = content.get_text(" ")
    fy_match = _FISCAL_YEAR.search(
        text_of(soup.find("h1")) if soup.find("h1") else page_text
    ) or _FISCAL_YEAR.search(page_text)
    fiscal_year = int(fy_match[1] or fy_match[2]) if fy_match else None
    records: list[NormalizedOpportunity] = []
    usable_tables = 0
    seen_ids: set[str] = set()
    for table in content.find_all("table"):
        if not isinstance(table, Tag):
            continue
        headers, body_rows = _header_cells(table)
        kinds = [column_kind(h) for h in headers]
        if "program" not in kinds or not ({"deadline", "available"} & set(kinds)):
            continue
        usable_tables += 1
        office_code, office_name = _office_before(table)
        for row in body_rows:
            cells = [c for c in row.find_all(["td", "th"]) if isinstance(c, Tag)]
            if len(cells) < 2:
                continue
            values: dict[str, str] = {}
            for kind, cell in zip(kinds, cells, strict=False):
                if kind and kind not in values:
                    values[kind] = text_of(cell)
            record = _row_record(values, fiscal_year, office_code, office_name, page_url, today, seen_ids)
            if record is not None:
                records.append(record)
    if not usable_tables:
        raise LayoutChanged(
            page_url, "ED forecast page has no chart with program and date columns (layout changed?)"
        )
    return records


def _row_record(
    values: dict[str, str],
    fiscal_year: int | None,
    office_code: str | None,
    office_name: str | None,
    page_url: str,
    today: dt.date,
    seen_ids: set[str],
) -> NormalizedOpportunity | None:
    program = values.get("program", "")
    competition = _COMPETITION.search(program)
    if not competition:
        return None  # a sub-heading or note row inside the chart
    title = clean_text(program[competition.end() :].strip(" -\u2013\u2014:")) or program
    available = values.get("available", "")
    published = bool(_FR_CITATION.search(available))
    available_date = parse_date(available)
    deadline = parse_date(values.get("deadline"))
    floor, ceiling = parse_money_range(values.get("range"))
    if ceiling is None:
        ceiling = parse_money(values.get("average"))
    if deadline and deadline < today:
        status = "closed"
    elif published:
        status = "posted"
    else:
        status = "forecasted"
    base_id = f"ED-FY{fiscal_year or 'NA'}-{competition[1]}"
    record_id, suffix = base_id, 2
    while record_id in seen_ids:
        record_id, suffix = f"{base_id}-{suffix}", suffix + 1
    seen_ids.add(record_id)
    notes = []
    if values.get("igr"):
        notes.append(f"Deadline for intergovernmental review: {values['igr']}")
    if values.get("period"):
        notes.append(f"Project period: {values['period']}")
    if not deadline and values.get("deadline"):
        notes.append(f"Deadline: {values['deadline']}")
    description = (
        f"{title}. Forecast of the Department of Education for fiscal year {fiscal_year}."
        if fiscal_year
        else title
    )
    if published:
        description += f" Application notice published ({_FR_CITATION.search(available)[0]})."  # type: ignore[index]
    return NormalizedOpportunity(
        id=record_id,
        source=SOURCE,
        title=title[:1000],
        agency="ED",
        sub_agency=f"ED-{office_code}" if office_code else "ED",
        agency_name=office_name or "Department of Education",
        aln=parse_aln(competition[1]),
        status=status,
        doc_type="forecast",
        post_date=available_date if published else None,
        forecast_post_date=None if published else available_date,
        close_date=deadline,
        close_date_note="; ".join(notes) or None,
        fiscal_year=fiscal_year,
        award_floor=floor,
        award_ceiling=ceiling,
        total_funding=parse_money(values.get("funds")),
        expected_awards=parse_count(values.get("awards")),
        description=description,
        url=page_url,
        agency_url=page_url,
        contact=clean_text(values.get("contact")),
    )


def crawl(ctx: CrawlContext) -> Iterator[NormalizedOpportunity]:
    url = ctx.settings.urls["ED_FORECAST_URL"]
    records = parse_page(ctx.http.get(url).text(), url, ctx.settings.today)
    ctx.fetched += len(records)
    yield from records


SPEC = SourceSpec(name="ed_forecast", record_source=SOURCE, crawl=crawl)
