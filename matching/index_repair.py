"""Finding a damaged keyword index and rebuilding it from the store, while search keeps answering.

The index is a cache of the store, so any damage is repaired the same way: set the directory aside
(renamed ``<INDEX_DIR>.damaged``, kept for a post-mortem until the next repair) and rebuild from the
opportunities table. Until the rebuild commits, ``KeywordIndex.available`` is False and search runs on
the database (``app.services.search``), so grant writers still get results.

Checked at three moments: a worker's warm-up (``matching.warmup``), ``reindex`` and a search that
finds the index unreadable (``app.search_index`` then repairs in a background thread). A lock file
beside the directory makes one process repair while the others keep searching the database.

A leftover ``MAIN_WRITELOCK`` file is not damage: Whoosh locks it with ``fcntl``, which the kernel
releases when the writing process dies, so the next writer proceeds.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import logging
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session

from matching import pending
from matching.keyword import SEARCH_FIELDS, get_index

log = logging.getLogger(__name__)

Say = Callable[[str], None]


@dataclass(frozen=True)
class Health:
    """``state`` is "ok", "missing" (no index stored), "building" (created, not yet committed) or
    "damaged" (one that cannot be read)."""

    state: str
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.state == "ok"


@dataclass(frozen=True)
class Repair:
    trigger: str
    state: str
    detail: str
    documents: int
    seconds: float
    set_aside: str | None


def check(index_dir: str | Path) -> Health:
    """Open the index and read a little of every segment: its table of contents, each segment's
    stored fields, and the first term and postings of each searched field. Cheap (no full scan),
    and what a truncated or overwritten file breaks first."""
    path = Path(index_dir)
    index = get_index(path)
    if not path.is_dir():
        return Health("missing", f"{path} does not exist")
    if not index.exists():
        return Health("missing", f"no index in {path}")
    try:
        from whoosh import index as windex

        ix = windex.open_dir(str(path))
        if ix.latest_generation() < 1:
            # Being built in place (``reindex --full``) or a build that died: ``reindex`` finishes it.
            return Health("building", "created, nothing committed yet")
        with ix.searcher() as searcher:
            leaves = [searcher] if searcher.is_atomic() else [leaf for leaf, _ in searcher.leaf_searchers()]
            for leaf in leaves:
                reader = leaf.reader()
                for _docnum, stored in itertools.islice(reader.iter_docs(), 1):
                    int(stored["id"])
                for name in SEARCH_FIELDS:
                    for term in itertools.islice(reader.lexicon(name), 1):
                        postings = reader.postings(name, term)
                        postings.id()
                        postings.weight()
    except Exception as exc:
        return Health("damaged", f"{type(exc).__name__}: {exc}"[:500])
    return Health("ok")


@contextlib.contextmanager
def _repair_lock(path: Path) -> Iterator[bool]:
    """An exclusive, non-blocking lock beside the index directory; yields whether we hold it."""
    lock_path = path.with_name(path.name + ".repair.lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+b") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def ensure(
    session: Session,
    index_dir: str | Path,
    *,
    trigger: str,
    rebuild_missing: bool = True,
    say: Say | None = None,
) -> Repair | None:
    """Rebuild the index from the store when it is damaged (or missing, with ``rebuild_missing``);
    None when it is fine, or when another process is repairing it right now."""
    path = Path(index_dir)

    def wanted(health: Health) -> bool:
        return health.state == "damaged" or (health.state == "missing" and rebuild_missing)

    health = check(path)
    if not wanted(health):
        return None
    with _repair_lock(path) as mine:
        if not mine:
            log.info("keyword index repair already running elsewhere", extra={"index_dir": str(path)})
            return None
        health = check(path)  # another process may have finished a repair meanwhile
        if not wanted(health):
            return None
        return _rebuild(session, path, health, trigger, say or (lambda _m: None))


def _rebuild(session: Session, path: Path, health: Health, trigger: str, say: Say) -> Repair:
    started = time.perf_counter()
    log.warning(
        f"keyword index {health.state}; rebuilding it from the store",
        extra={"index_dir": str(path), "state": health.state, "detail": health.detail, "trigger": trigger},
    )
    say(f"keyword index {health.state} ({health.detail}); rebuilding it from the store …")
    set_aside: Path | None = None
    waiting: set[int] = set()
    if path.exists():
        waiting = pending.claim(path).ids  # ids a bulk load left pending go with us, not aside
        set_aside = path.with_name(path.name + ".damaged")
        shutil.rmtree(set_aside, ignore_errors=True)
        path.rename(set_aside)
    index = get_index(path)
    documents = index.rebuild(session)
    pending.add(path, waiting)
    repair = Repair(
        trigger=trigger,
        state=health.state,
        detail=health.detail,
        documents=documents,
        seconds=round(time.perf_counter() - started, 2),
        set_aside=str(set_aside) if set_aside else None,
    )
    log.warning(
        "keyword index rebuilt",
        extra={
            "index_dir": str(path),
            "state": repair.state,
            "trigger": trigger,
            "documents": documents,
            "seconds": repair.seconds,
            "set_aside": repair.set_aside,
        },
    )
    say(
        f"keyword index rebuilt: {documents} opportunities"
        + (f"; damaged copy in {set_aside}" if set_aside else "")
    )
    return repair


_running: set[str] = set()
_running_lock = threading.Lock()


def repair_in_background(
    session_factory: Callable[[], Session], index_dir: str | Path, *, trigger: str = "search"
) -> threading.Thread | None:
    """Start ``ensure`` in a daemon thread, once per index directory per process at a time."""
    key = str(Path(index_dir).resolve())
    with _running_lock:
        if key in _running:
            return None
        _running.add(key)

    def work() -> None:
        try:
            with session_factory() as session:
                # Only started once this process saw the index fail: gone now means removed.
                ensure(session, index_dir, trigger=trigger)
        except Exception:
            log.exception(
                "keyword index repair failed; `flask reindex` rebuilds it", extra={"index_dir": key}
            )
        finally:
            with _running_lock:
                _running.discard(key)

    thread = threading.Thread(target=work, name="index-repair", daemon=True)
    thread.start()
    return thread
