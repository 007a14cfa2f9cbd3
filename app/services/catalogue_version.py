"""The catalogue version as a use case: read it (to key caches and ETags) and bump it by hand.

Writes through a ``Session`` bump it on their own (see ``app.models.catalogue_state``); call
``bump_catalogue_version`` only for catalogue writes that bypass the Session (raw DBAPI SQL).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from app.models.catalogue_state import mark_changed, read_version


def current(session: Session) -> tuple[int, dt.datetime | None]:
    """(version, changed_at): one primary-key read."""
    return read_version(session)


def token(session: Session) -> str:
    """The version as one string that changes whenever the catalogue does (even if the row is
    recreated: the timestamp is part of it)."""
    version, changed_at = read_version(session)
    return f"{version}.{changed_at.timestamp() if changed_at else 0}"


def bump_catalogue_version(session: Session) -> None:
    """Have the session's next commit move the catalogue version on."""
    mark_changed(session)
