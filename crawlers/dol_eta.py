"""DOL Employment and Training Administration grant announcements (``DOL_ETA_URL``).

One job: read the "find opportunities" page. Each announcement is a heading "Title - FOA-ETA-YY-NN"
(or "… - TEGL NN-YY"), description paragraphs, an "Issue Date: … / Closing Date: …" line and links
("Full Announcement (PDF Format)", FAQ, amendments). The parser keys on those texts rather than on
tag names, so a theme change that keeps the words keeps working; a page that lost them is a layout
change (an error), never an empty catalogue.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import urljoin

from bs4 import Tag

from crawlers.normalize import NormalizedOpportunity, clean_description, clean_text, parse_date
from crawlers.pages import main_content, soup_of, text_of
from crawlers.runner import CrawlContext, LayoutChanged, SourceSpec

SOURCE = "dol_eta"
TITLE_RE = re.compile(
    r"^(?P<title>.+?)\s+[-\u2013\u2014]\s+(?P<number>(?:FOA|TEGL|SGA|NOFO|FON)[-\s]?(?:[A-Z]{2,5}[-\s])?\d{2}[-\s]\d{2,3})\s*$",
    re.I,
)
MARKER_RE = re.compile(r"(current|upcoming)\s+grant\s+funding\s+opportunities", re.I)
_ISSUE = re.compile(r"Issue\s+Date:\s*([A-Za-z]+\.?\s+\d{1,2},?\s+\d{4}|\d{1,2}/\d{1,2}/\d{4})", re.I)
_CLOSING = re.compile(r"Closing\s+Date:\s*([A-Za-z]+\.?\s+\d{1,2},?\s+\d{4}|\d{1,2}/\d{1,2}/\d{4})", re.I)
_CANDIDATE_TAGS = ["h2", "h3", "h4", "h5", "h6", "p", "strong", "b", "li", "dt", "div", "a"]


def _number(raw: str) -> str:
    return re.sub(r"[\s]+", "-", raw.strip().upper())


def parse_page(markup: str, page_url: str) -> list[NormalizedOpportunity]:
    soup = soup_of(markup)
    content = main_content(soup)
    titles: list[Tag] = []
    for element in content.find_all(_CANDIDATE_TAGS):
        if not isinstance(element, Tag):
            continue
        text = text_of(element)
        if len(text) > 400 or not TITLE_RE.match(text):
            continue
        if any(parent in titles for parent in element.parents):
            continue  # an inner <a>/<strong> of a heading already taken
        titles.append(element)
    if not titles:
        if MARKER_RE.search(content.get_text(" ")):
            return []
        raise LayoutChanged(page_url, "DOL ETA page has no announcement headings (layout changed?)")
    records = []
    title_ids = {id(t) for t in titles}
    for title_el in titles:
        match = TITLE_RE.match(text_of(title_el))
        assert match is not None
        paragraphs: list[str] = []
        texts: list[str] = []
        links: list[Tag] = []
        heading_link = title_el if title_el.name == "a" else title_el.find("a")
        for element in title_el.find_all_next():
            if id(element) in title_ids:
                break
            if _inside(element, title_el):
                continue
            if element.name == "a":
                links.append(element)
            if element.name in ("p", "li", "div", "span", "dd") and not element.find(
                ["p", "li", "div", "ul"]
            ):
                text = text_of(element)
                if text:
                    texts.append(text)
                    if element.name == "p" and not _ISSUE.search(text) and not element.find("a"):
                        paragraphs.append(str(element))
        joined = " ".join(texts)
        issue, closing = _ISSUE.search(joined), _CLOSING.search(joined)
        announcement = next(
            (a for a in links if re.search(r"full announcement|announcement", text_of(a), re.I)), None
        )
        number = _number(match["number"])
        detail = heading_link.get("href") if isinstance(heading_link, Tag) else None
        pdf = announcement.get("href") if announcement is not None else None
        description_html, description = clean_description("".join(paragraphs) or None)
        records.append(
            NormalizedOpportunity(
                id=number,
                source=SOURCE,
                number=number,
                title=clean_text(match["title"]) or number,
                agency="DOL",
                sub_agency="DOL-ETA",
                agency_name="Employment and Training Administration",
                doc_type="synopsis",
                post_date=parse_date(issue[1]) if issue else None,
                close_date=parse_date(closing[1]) if closing else None,
                description=description,
                description_html=description_html,
                url=urljoin(page_url, str(detail)) if detail else f"{page_url}#{number.lower()}",
                agency_url=urljoin(page_url, str(pdf)) if pdf else None,
            )
        )
    return records


def _inside(element: Tag, container: Tag) -> bool:
    return any(parent is container for parent in element.parents)


def crawl(ctx: CrawlContext) -> Iterator[NormalizedOpportunity]:
    url = ctx.settings.urls["DOL_ETA_URL"]
    records = parse_page(ctx.http.get(url).text(), url)
    ctx.fetched += len(records)
    yield from records


SPEC = SourceSpec(name="dol_eta", record_source=SOURCE, crawl=crawl)
