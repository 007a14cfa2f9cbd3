"""HHS SAMHSA notices of funding opportunity (``SAMHSA_NOFO_URL``, the grants dashboard).

One job: read the dashboard's links to NOFO pages (``/grants/grant-announcements/<nofo>``), fetch
each page (conditional GET: unchanged pages cost a 304) and read its labelled values: NOFO Number,
Posted on Grants.gov, Application Due Date, CFDA/Assistance Listing Number, Description, Eligibility,
Funding Mechanism, Anticipated Total Available Funding, Number of Awards, Award Amount. The NOFO
number is the Grants.gov opportunity number, so the record merges with Grants.gov's.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import urljoin

from bs4 import Tag

from crawlers.http import FetchError
from crawlers.normalize import (
    NormalizedOpportunity,
    clean_description,
    clean_text,
    parse_aln,
    parse_count,
    parse_date,
    parse_money,
    parse_money_range,
)
from crawlers.pages import main_content, soup_of, text_of
from crawlers.runner import CrawlContext, LayoutChanged, SourceError, SourceSpec

SOURCE = "samhsa"
_NOFO_LINK = re.compile(r"/grants/grant-announcements/([a-z]{1,4}-\d{2}-\d{3}[a-z0-9-]*)/?$", re.I)
_LABELS = {
    "number": r"NOFO Number",
    "posted": r"Posted on Grants\.gov",
    "due": r"Application Due Date",
    "aln": r"(?:Catalog of Federal Domestic Assistance \(CFDA\)|Assistance Listing|CFDA) Numbers?",
    "mechanism": r"Funding Mechanism",
    "total": r"Anticipated Total Available Funding",
    "awards": r"Anticipated Number of Awards",
    "amount": r"Anticipated Award Amount",
    "short_title": r"Short Title",
}
_SECTIONS = ("Description", "Eligibility", "Award Information", "Contact", "Contacts")
INSTRUMENTS = {"grant": "G", "cooperative agreement": "CA"}


def dashboard_links(markup: str, page_url: str) -> list[str]:
    soup = soup_of(markup)
    links: list[str] = []
    for anchor in soup.find_all("a", href=True):
        if not isinstance(anchor, Tag):
            continue
        href = urljoin(page_url, str(anchor["href"]))
        if _NOFO_LINK.search(href.split("?", 1)[0]) and href not in links:
            links.append(href)
    if not links and not re.search(r"(grants dashboard|notice of funding|NOFO)", soup.get_text(" "), re.I):
        raise LayoutChanged(page_url, "SAMHSA dashboard has no NOFO links (layout changed?)")
    return links


def _label_value(lines: list[str], pattern: str) -> str | None:
    regex = re.compile(rf"^{pattern}\s*:\s*(.*)$", re.I)
    for index, line in enumerate(lines):
        match = regex.match(line)
        if match:
            value = match[1].strip()
            if not value and index + 1 < len(lines):
                value = lines[index + 1].strip()
            return value or None
    return None


def _section(content: Tag, name: str) -> str | None:
    """HTML of the elements after the heading ``name`` up to the next known section heading."""
    heading = None
    for element in content.find_all(["h2", "h3", "h4", "strong", "p", "div"]):
        if isinstance(element, Tag) and text_of(element).rstrip(":").lower() == name.lower():
            heading = element
            break
    if heading is None:
        return None
    parts: list[str] = []
    for sibling in heading.find_next_siblings():
        if not isinstance(sibling, Tag):
            continue
        if text_of(sibling).rstrip(":") in _SECTIONS or (sibling.name in ("h2", "h3") and parts):
            break
        parts.append(str(sibling))
    return "".join(parts) or None


def parse_nofo(markup: str, page_url: str) -> NormalizedOpportunity:
    soup = soup_of(markup)
    content = main_content(soup)
    lines = [line.strip() for line in content.get_text("\n").split("\n") if line.strip()]
    values = {key: _label_value(lines, pattern) for key, pattern in _LABELS.items()}
    number = clean_text(values["number"])
    if not number:
        raise LayoutChanged(page_url, "SAMHSA NOFO page has no 'NOFO Number:' (layout changed?)")
    title = text_of(soup.find("h1")) if soup.find("h1") else ""
    if not title or title.lower().startswith(("notice of funding", "nofo")):
        title = values["short_title"] or number
    description_html, description = clean_description(_section(content, "Description"))
    eligibility = clean_text(_section(content, "Eligibility"))
    mechanism = (values["mechanism"] or "").lower()
    floor, ceiling = parse_money_range(values["amount"]) if values["amount"] else (None, None)
    return NormalizedOpportunity(
        id=number.upper(),
        source=SOURCE,
        number=number.upper(),
        title=clean_text(title) or number,
        agency="HHS",
        sub_agency="HHS-SAMHS",
        agency_name="Substance Abuse and Mental Health Services Administration",
        aln=parse_aln(values["aln"]),
        doc_type="synopsis",
        post_date=parse_date(values["posted"]),
        close_date=parse_date(values["due"]),
        award_floor=floor,
        award_ceiling=ceiling,
        total_funding=parse_money(values["total"]),
        expected_awards=parse_count(values["awards"]),
        eligible_applicants=eligibility,
        funding_instruments=[code for words, code in INSTRUMENTS.items() if words in mechanism],
        description=description,
        description_html=description_html,
        url=page_url,
        agency_url=page_url,
    )


def crawl(ctx: CrawlContext) -> Iterator[NormalizedOpportunity]:
    url = ctx.settings.urls["SAMHSA_NOFO_URL"]
    links = dashboard_links(ctx.http.get(url).text(), url)
    for link in links:
        ctx.fetched += 1
        if not ctx.http.can_fetch("GET", link):
            ctx.mark_seen(link.rstrip("/").rsplit("/", 1)[-1].upper())
            continue
        try:
            yield parse_nofo(ctx.http.get(link).text(), link)
        except (FetchError, SourceError) as exc:
            ctx.error(exc.kind, exc.message, url=link, record_id=link.rstrip("/").rsplit("/", 1)[-1].upper())
            ctx.mark_seen(link.rstrip("/").rsplit("/", 1)[-1].upper())
        except ValueError as exc:  # the page's values do not make a valid record (one NOFO, not the run)
            record_id = link.rstrip("/").rsplit("/", 1)[-1].upper()
            ctx.error("parse", f"SAMHSA NOFO page {link}: {exc}", url=link, record_id=record_id)
            ctx.mark_seen(record_id)


SPEC = SourceSpec(name="samhsa", record_source=SOURCE, crawl=crawl)
