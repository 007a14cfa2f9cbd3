"""Opaque cursors for listing pages: the next page number bound to the search it belongs to."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json

from pydantic import BaseModel

from app.api.problems import ApiProblem
from app.api.schemas import FieldError

CURSOR_VERSION = 1


def fingerprint(query: BaseModel) -> str:
    """The search without its position: a cursor only continues the search that issued it."""
    data = query.model_dump(mode="json", exclude={"page", "cursor"})
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def encode(page: int, query: BaseModel) -> str:
    payload = json.dumps({"v": CURSOR_VERSION, "p": page, "f": fingerprint(query)}, separators=(",", ":"))
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def decode(cursor: str, query: BaseModel) -> int:
    """The page a cursor points at; a problem naming ``cursor`` when it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
        page = data["p"] if isinstance(data, dict) and data.get("v") == CURSOR_VERSION else None
        ok = isinstance(page, int) and not isinstance(page, bool) and 1 <= page <= 10_000
    except (binascii.Error, ValueError, TypeError, KeyError):
        ok = False
    if not ok:
        raise ApiProblem(
            400,
            "The cursor is not one this API issued.",
            errors=[FieldError(field="cursor", message="is not a cursor this API issued")],
        )
    if data.get("f") != fingerprint(query):
        raise ApiProblem(
            400,
            "The cursor belongs to a different search; repeat the same filters or start again without it.",
            errors=[FieldError(field="cursor", message="belongs to a search with different parameters")],
        )
    assert isinstance(page, int)
    return page
