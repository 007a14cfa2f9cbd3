"""The catalogue version as a use case: read it (to key caches and ETags) and bump it by hand.

Writes through a ``Session`` bump it on their own (see ``app.models.catalogue_state``); call
``bump_catalogue_version`` only for catalogue writes that bypass the Session (raw DBAPI SQL).
"""

from __future__ import annotations

import datetime as dt
import threading
import time

from sqlalchemy.orm import Session

from app.models.catalogue_state import changes_committed_here, mark_changed, read_version


def current(session: Session) -> tuple[int, dt.datetime | None]:
    """(version, changed_at): one primary-key read."""
    return read_version(session)


def token(session: Session) -> str:
    """The version as one string that changes whenever the catalogue does (even if the row is
    recreated: the timestamp is part of it)."""
    version, changed_at = read_version(session)
    return f"{version}.{changed_at.timestamp() if changed_at else 0}"


class VersionMemo:
    """The version token as this process last read it, reused for up to ``max_age`` seconds.

    A busy API answers thousands of conditional requests a second; re-reading the version for each
    costs more than the rest of a 304. A change committed by this process is seen at once; one
    committed by another process (a crawl, another worker) within ``max_age`` seconds.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._read_at = float("-inf")
        self._changes = -1
        self._token = ""

    def token(self, session: Session, max_age: float) -> str:
        changes = changes_committed_here()
        with self._lock:
            if changes == self._changes and time.monotonic() - self._read_at < max_age:
                return self._token
        found = token(session)
        with self._lock:
            self._token, self._changes, self._read_at = found, changes, time.monotonic()
        return found


def bump_catalogue_version(session: Session) -> None:
    """Have the session's next commit move the catalogue version on."""
    mark_changed(session)
