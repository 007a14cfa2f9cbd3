"""Links taken from stored data (sources, imports, admins): only absolute http(s) addresses are shown.

A source or an import file could carry ``javascript:`` or ``data:`` in a link field; the value is
kept as stored (nothing is lost), but every page, email and API answer that turns it into a link
goes through ``http_url`` first.
"""

from __future__ import annotations

from urllib.parse import urlsplit


def http_url(value: str | None) -> str | None:
    """``value`` when it is an absolute http(s) URL with a host, else None."""
    if not value:
        return None
    text = value.strip()
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in text) or "\\" in text:
        return None
    try:
        parts = urlsplit(text)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return text
