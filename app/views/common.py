"""Helpers the site's views share: the signed-in user's organization and safe redirects."""

from __future__ import annotations

from typing import cast
from urllib.parse import urlsplit

from flask import abort, request
from flask_login import current_user

from app.models import User


def signed_in_user() -> User:
    return cast(User, current_user._get_current_object())


def organization_id() -> int:
    """The signed-in user's organization; 403 for an account that belongs to none."""
    org_id = getattr(current_user, "organization_id", None)
    if org_id is None:
        abort(403, description="Your account is not in an organization. Ask a colleague to invite you.")
    return int(org_id)


def client_ip() -> str:
    return request.remote_addr or "unknown"


def safe_next(target: str | None, default: str) -> str:
    """Only same-site relative paths, so a link cannot redirect to another site (ASVS 5.1.5).

    Browsers drop tabs and newlines inside a URL and read ``\\`` as ``/``, so ``/\\evil.example`` or
    ``/<tab>/evil.example`` would leave the site like ``//evil.example``: any of those is refused.
    """
    if not target or not target.startswith("/") or target.startswith("//"):
        return default
    if "\\" in target or any(ord(c) < 0x20 or ord(c) == 0x7F for c in target):
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return default
    return target
