"""The bridge from admin edits to the CVI classifier in ``matching.cvi``.

Admin edits (a program's assistance listings, an opportunity's ALNs, a hand-added record) change
what the classifier would say, so the affected opportunities are re-scored in the same transaction
as the edit; ``apply`` keeps an admin's override in charge of ``cvi_eligible``.
"""

from __future__ import annotations

import logging
from collections.abc import Collection

from sqlalchemy.orm import Session

from matching import cvi

log = logging.getLogger(__name__)


def threshold() -> float:
    """The score at which the classifier calls an opportunity CVI-eligible."""
    return float(cvi.THRESHOLD)


def rescore(session: Session, ids: Collection[int]) -> int:
    """Re-score ``ids`` with the classifier (flushes; the caller commits); returns how many."""
    if not ids:
        return 0
    done = cvi.rescore(session, list(ids))
    log.info("opportunities re-scored after an admin edit", extra={"count": done})
    return done
