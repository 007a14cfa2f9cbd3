"""DOJ OJP/BJA funding (``OJP_FUNDING_URL``, default ``https://bja.ojp.gov/funding-api``).

One job: read the JSON feed ``current_funding_data`` (and ``expired_funding_data`` with
``--include-closed``) and turn each entry into a record; when the feed fails or is not a JSON array,
fall back to the HTML listing ``/funding/current`` (``article.listing-item--funding_opportunity``
cards with ``<time datetime>`` values). DOJ applications have two deadlines: the Grants.gov step
(SF-424) is ``close_date`` — the same date Grants.gov shows — and the JustGrants step (full
application) is ``second_close_date`` with its label. The OJP opportunity ID (``O-BJA-2025-172582``)
is the Grants.gov opportunity number, which is how the record is merged with Grants.gov's.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import urljoin, urlsplit

from bs4 import Tag

from crawlers.http import FetchError
from crawlers.normalize import NormalizedOpportunity, clean_description, clean_text, parse_date
from crawlers.pages import soup_of, text_of
from crawlers.runner import CrawlContext, LayoutChanged, SourceError, SourceSpec

SOURCE = "ojp"
JUSTGRANTS_LABEL = "JustGrants application deadline (step 2)"
BUREAUS = {
    "BJA": "Bureau of Justice Assistance",
    "BJS": "Bureau of Justice Statistics",
    "NIJ": "National Institute of Justice",
    "OJJDP": "Office of Juvenile Justice and Delinquency Prevention",
    "OVC": "Office for Victims of Crime",
    "SMART": "Office of Sex Offender Sentencing, Monitoring, Apprehending, Registering, and Tracking",
    "OJP": "Office of Justice Programs",
}
_OPP_ID = re.compile(r"^O-([A-Z]+)-(\d{4})-\d+$")


def _site_root(feed_base: str) -> str:
    parts = urlsplit(feed_base)
    return f"{parts.scheme}://{parts.netloc}"


def decode_body(value: Any) -> str | None:
    """The feed's ``body``: base64 of entity-(double-)escaped HTML; plain text is taken as is."""
    if not value or not isinstance(value, str):
        return None
    compact = value.strip()
    if re.fullmatch(r"[A-Za-z0-9+/=\s]+", compact) and len(compact) % 4 == 0:
        try:
            return base64.b64decode(compact, validate=False).decode("utf-8", errors="replace")
        except (binascii.Error, ValueError):
            return compact
    return compact


def build_record(
    *,
    url: str,
    title: str | None,
    closing: dt.date | None,
    grants_gov_deadline: dt.date | None,
    justgrants_deadline: dt.date | None,
    body: str | None,
    status: str,
) -> NormalizedOpportunity:
    slug = url.rstrip("/").rsplit("/", 1)[-1]
    opp_id = slug.upper()
    match = _OPP_ID.match(opp_id)
    if not match:
        raise ValueError(f"cannot read an OJP opportunity ID from {url}")
    bureau, year = match[1], int(match[2])
    justgrants = justgrants_deadline or closing
    close = grants_gov_deadline or justgrants
    second = justgrants if justgrants and justgrants != close else None
    note = None
    if grants_gov_deadline and second:
        note = (
            f"Step 1: SF-424 and SF-LLL in Grants.gov by {grants_gov_deadline:%B %-d, %Y}; "
            f"step 2: full application in JustGrants by {second:%B %-d, %Y}."
        )
    description_html, description = clean_description(body)
    return NormalizedOpportunity(
        id=opp_id,
        source=SOURCE,
        number=opp_id,
        title=clean_text(title) or opp_id,
        agency="DOJ",
        sub_agency=f"USDOJ-OJP-{bureau}",
        agency_name=BUREAUS.get(bureau, f"Office of Justice Programs ({bureau})"),
        status=status,
        doc_type="synopsis",
        close_date=close,
        close_date_note=note,
        second_close_date=second,
        second_close_date_label=JUSTGRANTS_LABEL if second else None,
        fiscal_year=year,
        description=description,
        description_html=description_html,
        url=url,
        agency_url=url,
    )


def parse_feed_item(item: Mapping[str, Any], status: str, site: str) -> NormalizedOpportunity:
    url = str(item.get("url") or "").strip()
    if not url:
        raise ValueError("feed entry has no url")
    return build_record(
        url=urljoin(site + "/", url),
        title=item.get("title"),
        closing=parse_date(item.get("field_closing_date")),
        grants_gov_deadline=parse_date(item.get("field_grants_gov_deadline")),
        justgrants_deadline=parse_date(item.get("field_app_justgrants_deadline")),
        body=decode_body(item.get("body")),
        status=status,
    )


def _time_in(card: Tag, field_class: str) -> dt.date | None:
    block = card.select_one(f".{field_class}")
    if block is None:
        return None
    stamp = block.find("time")
    if isinstance(stamp, Tag):
        return parse_date(stamp.get("datetime") or text_of(stamp))
    return parse_date(text_of(block))


def parse_listing(
    markup: str, page_url: str, status: str, on_bad_card: Callable[[str, str], None] | None = None
) -> list[NormalizedOpportunity]:
    """Cards of the HTML listing (``/funding/current``).

    A card that does not make a record (no OJP opportunity ID in its link, a value out of range) is
    handed to ``on_bad_card(url, message)`` and skipped, so one odd card does not cost the others;
    without a callback it raises ``ValueError``.
    """
    soup = soup_of(markup)
    found: list[Tag | None] = list(soup.select("article.listing-item--funding_opportunity")) or [
        a.find_parent("article") for a in soup.select("a[href*='/funding/opportunities/']")
    ]
    cards = [c for c in dict.fromkeys(found) if isinstance(c, Tag)]
    if not cards:
        if re.search(r"no (current )?funding opportunities", soup.get_text(" "), re.I):
            return []
        raise LayoutChanged(page_url, "OJP listing page has no funding-opportunity cards (layout changed?)")
    records = []
    for card in cards:
        link = card.select_one("a[href*='/funding/opportunities/']")
        if not isinstance(link, Tag):
            continue
        title = card.select_one(".field--name-title") or link
        summary = card.select_one(".field--name-body, .field--name-field-summary, p")
        card_url = urljoin(page_url, str(link.get("href")))
        try:
            records.append(
                build_record(
                    url=card_url,
                    title=text_of(title),
                    closing=_time_in(card, "field--name-field-closing-date"),
                    grants_gov_deadline=_time_in(card, "field--name-field-grants-gov-deadline"),
                    justgrants_deadline=_time_in(card, "field--name-field-app-justgrants-deadline"),
                    body=str(summary) if isinstance(summary, Tag) else None,
                    status=status,
                )
            )
        except ValueError as exc:
            if on_bad_card is None:
                raise
            on_bad_card(card_url, str(exc))
    return records


def crawl(ctx: CrawlContext) -> Iterator[NormalizedOpportunity]:
    base = ctx.settings.urls["OJP_FUNDING_URL"].rstrip("/")
    site = _site_root(base)
    feeds = [("current_funding_data", "posted", "/funding/current")]
    if ctx.settings.include_closed:
        feeds.append(("expired_funding_data", "closed", "/funding/expired"))
    for feed, status, listing_path in feeds:
        url = f"{base}/{feed}"
        try:
            data = ctx.http.get(url).json()
            if not isinstance(data, list):
                raise SourceError(url, f"OJP feed is a JSON {type(data).__name__}, not an array")
        except (FetchError, SourceError) as exc:
            ctx.error(
                exc.kind, f"{exc.message}; reading the HTML listing instead", url=url, record_failed=False
            )
            listing_url = site + listing_path
            records = parse_listing(
                ctx.http.get(listing_url).text(),
                listing_url,
                status,
                lambda card_url, message: ctx.error(
                    "parse", f"OJP listing card {card_url}: {message}", url=card_url
                ),
            )
            ctx.fetched += len(records)
            yield from records
            continue
        for item in data:
            ctx.fetched += 1
            try:
                if not isinstance(item, dict):
                    raise ValueError(f"feed entry is a {type(item).__name__}")
                yield parse_feed_item(item, status, site)
            except ValueError as exc:
                ctx.error(
                    "parse",
                    f"OJP feed entry {item.get('url') if isinstance(item, dict) else item!r}: {exc}",
                    url=url,
                )


SPEC = SourceSpec(name="ojp", record_source=SOURCE, crawl=crawl)
