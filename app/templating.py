"""Jinja filters for the site: sanitized source HTML, money, dates, countdowns and code labels."""

from __future__ import annotations

import datetime as dt
from typing import Any

import nh3
from flask import Flask
from markupsafe import Markup

from app import labels
from app.links import http_url

#: Tags a funding description may keep; everything else (scripts, styles, iframes, handlers) goes.
ALLOWED_TAGS = {
    "p", "br", "ul", "ol", "li", "strong", "b", "em", "i", "u", "a", "h2", "h3", "h4", "h5", "h6",
    "table", "thead", "tbody", "tr", "th", "td", "blockquote", "span", "div", "dl", "dt", "dd", "sup", "sub",
}  # fmt: skip


def sanitize_html(value: str | None) -> Markup:
    """Source HTML made safe to show: allow-listed tags only, links forced to rel=noopener."""
    if not value:
        return Markup("")
    cleaned = nh3.clean(
        value,
        tags=ALLOWED_TAGS,
        attributes={"a": {"href", "title"}, "td": {"colspan", "rowspan"}, "th": {"colspan", "rowspan"}},
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )
    return Markup(cleaned)  # noqa: S704 - nh3 output is sanitized


def money(value: int | float | None) -> str:
    if value is None:
        return "not stated"
    return f"${value:,.0f}"


def long_date(value: dt.date | dt.datetime | None) -> str:
    if value is None:
        return "not set"
    return f"{value:%B} {value.day}, {value.year}"


def days_left(value: dt.date | None, today: dt.date | None = None) -> int | None:
    if value is None:
        return None
    return (value - (today or dt.date.today())).days


def countdown(value: dt.date | None, today: dt.date | None = None) -> str:
    """ "closes in 12 days", "closes today", "closed 3 days ago"."""
    left = days_left(value, today)
    if left is None:
        return "no close date announced"
    if left == 0:
        return "closes today"
    if left == 1:
        return "closes tomorrow"
    if left > 1:
        return f"closes in {left} days"
    return f"closed {-left} day{'s' if left != -1 else ''} ago"


def init_app(app: Flask) -> None:
    filters: dict[str, Any] = {
        "sanitize": sanitize_html,
        "http_url": http_url,
        "money": money,
        "long_date": long_date,
        "countdown": countdown,
        "days_left": days_left,
        "label": lambda code, kind: labels.label(kind, code),
    }
    app.jinja_env.filters.update(filters)
    app.jinja_env.globals.update(labels=labels, today=dt.date.today)
