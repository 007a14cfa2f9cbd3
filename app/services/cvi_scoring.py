"""The bridge from admin edits to the CVI classifier in ``matching.cvi``.

Admin edits (a program's assistance listings, an opportunity's ALNs, a hand-added record) change
what the classifier would say, so the affected opportunities are re-scored right after the edit.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Collection
from types import ModuleType

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Opportunity

log = logging.getLogger(__name__)

#: Used for the review band when the classifier publishes no threshold of its own.
DEFAULT_THRESHOLD = 0.5


def _classifier() -> ModuleType | None:
    try:
        return importlib.import_module("matching.cvi")
    except ImportError:
        return None


def threshold() -> float:
    """The score at which the classifier calls an opportunity CVI-eligible."""
    module = _classifier()
    for name in ("THRESHOLD", "CVI_THRESHOLD", "ELIGIBLE_THRESHOLD"):
        value = getattr(module, name, None) if module is not None else None
        if isinstance(value, int | float):
            return float(value)
    return DEFAULT_THRESHOLD


def rescore(session: Session, ids: Collection[int]) -> int:
    """Re-score ``ids`` with the classifier; returns how many opportunities were looked at.

    Without the classifier only ``cvi_eligible`` is recomputed from the admin override and the last
    classification, so a cleared override still takes effect.
    """
    if not ids:
        return 0
    module = _classifier()
    rescorer = getattr(module, "rescore", None) if module is not None else None
    if rescorer is not None:
        rescorer(session, list(ids))
    else:
        for opportunity in session.scalars(select(Opportunity).where(Opportunity.id.in_(list(ids)))):
            opportunity.cvi_eligible = opportunity.effective_cvi()
    log.info("opportunities re-scored", extra={"count": len(ids), "classifier": rescorer is not None})
    return len(ids)
