"""Small helpers shared by the HTML sources (agency pages)."""

from __future__ import annotations

import re

from bs4 import BeautifulSoup, Tag

_WS = re.compile(r"\s+")


def soup_of(markup: str) -> BeautifulSoup:
    return BeautifulSoup(markup, "lxml")


def text_of(element: Tag | None) -> str:
    """Visible text of an element with whitespace collapsed."""
    if element is None:
        return ""
    return _WS.sub(" ", element.get_text(" ", strip=True)).strip()


def main_content(soup: BeautifulSoup) -> Tag:
    """The page's main content (``<main>``, ``role=main``, a Drupal body field), else the body."""
    for selector in ("main", "[role=main]", "#main-content", ".field--name-body", "article", "body"):
        found = soup.select_one(selector)
        if isinstance(found, Tag):
            return found
    return soup
