"""The embeddable deadlines widget: its script file, served with an ETag like any listing."""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

from flask import Response, request

SCRIPT_PATH = Path(__file__).resolve().parent / "widget.js"


@functools.cache
def script() -> str:
    return SCRIPT_PATH.read_text(encoding="utf-8")


def cached_text(text: str, mimetype: str, *, max_age: int) -> Response:
    """A fixed text with an ETag, answering If-None-Match with 304."""
    etag = hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]
    if request.if_none_match.contains_weak(etag):
        response = Response(status=304)
    else:
        response = Response(text, mimetype=mimetype)
    response.set_etag(etag)
    response.headers["Cache-Control"] = f"public, max-age={max_age}"
    return response
