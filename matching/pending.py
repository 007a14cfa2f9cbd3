"""Opportunities whose keyword-index document and CVI score wait for the next ``flask reindex``.

A bulk load (``ingest-extract``: tens of thousands of new or changed records) does not re-index at
every commit: indexing 43,000 documents one batch at a time took minutes, many times the load
itself. Instead, before each commit, the ids the commit changes are appended to a file beside the
index; ``reindex`` claims the file, brings those documents up to date (CVI scores are re-computed
for every opportunity there anyway) and deletes it only once that is committed. Written before the
store commits, so a crash between the two leaves at worst an id pending that did not change.

Plain files, no Whoosh: recording ids must not load the search stack into a bulk load.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

PENDING_NAME = "pending-sync.ids"
#: Claimed files are renamed to this prefix (plus a unique suffix) while a re-index works on them.
CLAIMED_PREFIX = "pending-sync.claimed."


def add(index_dir: str | Path, ids: Iterable[int]) -> None:
    """Append ``ids`` to the pending file (one per line; appends of one line block are atomic enough
    for one writer per run, and a torn last line is skipped when read)."""
    wanted = sorted(set(ids))
    if not wanted:
        return
    directory = Path(index_dir)
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / PENDING_NAME).open("a", encoding="ascii") as out:
        out.write("".join(f"{opp_id}\n" for opp_id in wanted))
        out.flush()
        os.fsync(out.fileno())


def _read(path: Path) -> set[int]:
    ids: set[int] = set()
    try:
        text = path.read_text(encoding="ascii", errors="ignore")
    except FileNotFoundError:
        return ids
    for line in text.splitlines():
        line = line.strip()
        if line.isdigit():
            ids.add(int(line))
    return ids


def count(index_dir: str | Path) -> int:
    """How many distinct ids wait (pending and claimed)."""
    directory = Path(index_dir)
    ids = _read(directory / PENDING_NAME)
    for path in directory.glob(f"{CLAIMED_PREFIX}*"):
        ids |= _read(path)
    return len(ids)


@dataclass
class Claim:
    """Pending ids taken by one re-index; ``release`` once the work is committed."""

    ids: set[int] = field(default_factory=set)
    files: list[Path] = field(default_factory=list)

    def release(self) -> None:
        for path in self.files:
            path.unlink(missing_ok=True)


def claim(index_dir: str | Path) -> Claim:
    """Take the pending ids (and those a failed re-index left claimed); ids added from now on go to
    a new pending file, so a load running meanwhile loses nothing."""
    directory = Path(index_dir)
    result = Claim()
    if not directory.exists():
        return result
    source = directory / PENDING_NAME
    if source.exists():
        with contextlib.suppress(FileNotFoundError):
            os.replace(source, directory / f"{CLAIMED_PREFIX}{uuid.uuid4().hex}")
    for path in sorted(directory.glob(f"{CLAIMED_PREFIX}*")):
        result.ids |= _read(path)
        result.files.append(path)
    return result
