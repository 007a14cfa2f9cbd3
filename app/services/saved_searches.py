"""Saved searches: a user keeps a search (its URL parameters) under a name."""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import SavedSearch, User
from app.services.search import SearchParams

MAX_PER_USER = 100


class SavedSearchError(ValueError):
    """A user-facing problem with a saved search."""


def _query_dict(query_string: str) -> dict[str, list[str]]:
    parsed = parse_qs(query_string, keep_blank_values=False)
    parsed.pop("page", None)
    return {k: v for k, v in parsed.items() if k in SearchParams.model_fields}


def save(session: Session, user: User, name: str, query_string: str) -> SavedSearch:
    """Keep a search; its parameters are validated so a saved search always runs."""
    query = _query_dict(query_string)
    scalar = {k: v[-1] for k, v in query.items() if k not in _LIST_FIELDS}
    lists = {k: v for k, v in query.items() if k in _LIST_FIELDS}
    try:
        SearchParams.model_validate({**scalar, **lists})
    except ValidationError as exc:
        raise SavedSearchError("That search has invalid filters and cannot be saved.") from exc
    count = len(list(session.scalars(select(SavedSearch.id).where(SavedSearch.user_id == user.id))))
    if count >= MAX_PER_USER:
        raise SavedSearchError(f"You can keep at most {MAX_PER_USER} saved searches. Delete one first.")
    saved = SavedSearch(user_id=user.id, name=name.strip()[:200], query=query)
    session.add(saved)
    session.flush()
    return saved


_LIST_FIELDS = {"department", "sub_agency", "status", "eligibility", "instrument", "category"}


def for_user(session: Session, user_id: int) -> list[SavedSearch]:
    return list(
        session.scalars(select(SavedSearch).where(SavedSearch.user_id == user_id).order_by(SavedSearch.name))
    )


def delete(session: Session, user_id: int, saved_id: int) -> bool:
    saved = session.get(SavedSearch, saved_id)
    if saved is None or saved.user_id != user_id:
        return False
    session.delete(saved)
    return True


def query_string(saved: SavedSearch) -> str:
    return urlencode(saved.query or {}, doseq=True)
