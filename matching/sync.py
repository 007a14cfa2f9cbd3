"""Keeping matching in step with the store: the after-commit hook and the full re-index job."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

from app.services.opportunities import CHANGED_KEY, DEFER_SYNC_KEY
from matching import cvi, index_repair, pending
from matching.keyword import get_index

log = logging.getLogger(__name__)

Say = Callable[[str], None]


def mark_changed(session: Session, ids: Iterable[int]) -> None:
    """Tell matching that these opportunities changed (e.g. an admin hid, merged or edited them);
    they are re-indexed and re-scored when the session commits."""
    session.info.setdefault(CHANGED_KEY, set()).update(ids)


def sync_changed(session_factory: Callable[[], Session], index_dir: str, ids: Iterable[int]) -> None:
    """Update the keyword index and CVI scores for ``ids`` in a fresh session (used after commit)."""
    wanted = sorted(set(ids))
    if not wanted:
        return
    from matching import embeddings

    session = session_factory()
    try:
        get_index(index_dir).update(session, wanted)

        def vectors(chunk: Sequence[int]) -> dict[int, Any]:
            return embeddings.vectors_for(session, list(chunk))

        cvi.rescore(session, wanted, vectors=vectors, catalogue=_catalogue(session))
        session.commit()
    except Exception:
        session.rollback()
        # Recorded as pending so ``reindex`` updates them even when the document count still matches.
        with contextlib.suppress(OSError):
            pending.add(index_dir, wanted)
        log.exception("matching sync failed; `flask reindex` will catch up", extra={"ids": len(wanted)})
    finally:
        session.close()


def _catalogue(session: Session) -> cvi.Catalogue:
    """With the model already loaded in this process, CVI scores use semantic evidence too."""
    from matching import embeddings

    if embeddings.model_loaded():
        return cvi.Catalogue.load(session, encode=embeddings.encode)
    return cvi.Catalogue.load(session)


def register(factory: sessionmaker[Session], index_dir: str) -> None:
    """Listen on the app's sessions: changed ids are synced right after the commit that changed them,
    or, while the session is flagged ``DEFER_SYNC_KEY`` (a bulk load), recorded as pending for the
    next ``reindex`` just before that commit."""

    def before_commit(session: Session) -> None:
        if session.info.get(DEFER_SYNC_KEY):
            session.flush()
            ids = session.info.pop(CHANGED_KEY, None)
            if ids:
                pending.add(index_dir, ids)

    def after_commit(session: Session) -> None:
        ids = session.info.pop(CHANGED_KEY, None)
        if ids:
            sync_changed(factory, index_dir, ids)

    def after_rollback(session: Session) -> None:
        session.info.pop(CHANGED_KEY, None)

    event.listen(factory, "before_commit", before_commit)
    event.listen(factory, "after_commit", after_commit)
    event.listen(factory, "after_soft_rollback", lambda session, _previous: after_rollback(session))


@dataclass
class ReindexReport:
    indexed: int = 0
    embedded: int = 0
    reused: int = 0
    removed_passages: int = 0
    profiles_embedded: int = 0
    scored: int = 0
    cvi_eligible: int = 0
    details: dict[str, Any] = field(default_factory=dict)


def reindex(
    session: Session,
    index_dir: str,
    *,
    full: bool = False,
    say: Say | None = None,
    encoder: Callable[[list[str]], Any] | None = None,
) -> ReindexReport:
    """Embed pending passages, rebuild the keyword index (always with ``full``, else when missing
    or out of date) or update the documents a bulk load left pending, and re-score CVI for every
    opportunity. Commits."""
    from sqlalchemy import func, select

    from app.models import Opportunity
    from matching import embeddings
    from matching.keyword import visible_ids_query

    say = say or (lambda _m: None)
    report = ReindexReport()
    say("embedding new or changed passages …")
    embedded = embeddings.embed_pending(
        session,
        progress=lambda done, total: say(f"  embedded {done}/{total} passages"),
        encoder=encoder,
    )
    report.embedded, report.reused, report.removed_passages = (
        embedded.embedded,
        embedded.reused,
        embedded.removed,
    )
    say(
        f"embeddings: {embedded.embedded} embedded, {embedded.reused} re-used, {embedded.removed} removed, "
        f"{embedded.passages} passages of {embedded.opportunities} opportunities"
    )

    reused, report.profiles_embedded = embeddings.refresh_profiles(session, encoder)
    say(f"program profiles: {report.profiles_embedded} embedded, {reused} unchanged")

    index = get_index(index_dir)
    repaired = index_repair.ensure(session, index_dir, trigger="reindex", rebuild_missing=False, say=say)
    claimed = pending.claim(index_dir)
    visible = session.scalar(select(func.count()).select_from(visible_ids_query().subquery())) or 0
    if repaired is not None:
        report.indexed = repaired.documents
        report.details["repaired"] = repaired.state
    elif full or not index.exists() or index.doc_count() != visible:
        say("rebuilding the keyword index …")
        report.indexed = index.rebuild(session, progress=lambda done, total: say(f"  indexed {done}/{total}"))
    elif claimed.ids:
        say(f"updating the keyword index for {len(claimed.ids)} opportunities a bulk load changed …")
        report.indexed = index.update(session, claimed.ids)[0]
    else:
        report.indexed = 0
        say(f"keyword index up to date ({visible} opportunities)")

    say("scoring CVI eligibility …")
    catalogue = cvi.Catalogue.load(session, encode=encoder or embeddings.encode)
    report.scored = cvi.rescore(
        session,
        None,
        catalogue=catalogue,
        vectors=lambda chunk: embeddings.vectors_for(session, list(chunk)),
        progress=lambda done, total: (
            say(f"  scored {done}/{total}") if done == total or done % 5000 == 0 else None
        ),
    )
    session.commit()
    claimed.release()
    report.cvi_eligible = (
        session.scalar(
            select(func.count()).select_from(Opportunity).where(Opportunity.cvi_eligible.is_(True))
        )
        or 0
    )
    say(f"CVI: {report.cvi_eligible} of {report.scored} opportunities CVI-eligible")
    return report
