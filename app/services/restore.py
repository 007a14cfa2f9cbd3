"""Putting a backup back: check it, keep a safety copy of the current store, replace it in one step.

Every check (the file exists, is readable, is a backup of this schema at a revision this code knows)
runs before the current store is touched, so a bad file changes nothing. A backup made by older code
is migrated to the current revision: on SQLite in a private staging copy before it replaces the
store, on PostgreSQL after ``pg_restore`` (the store is first migrated back to the backup's revision,
so the dump's ``--clean`` drops exactly the tables it brings back).
"""

from __future__ import annotations

import datetime as dt
import gzip
import os
import shutil
import sqlite3
import subprocess
import tempfile
import time
import uuid
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, create_engine, inspect, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session

from app.db import Base
from app.services.backup import (
    BackupError,
    alembic_config,
    check_revision,
    check_tool_version,
    create_backup,
    file_kind,
    head_revision,
    libpq_target,
    pg_tool,
    revision_of,
    run_tool,
    sqlite_copy,
    sqlite_path,
    table_counts,
    verify_sqlite,
)

#: How many seconds ``pg_restore`` may wait for a table another session holds before it is
#: cancelled (its transaction rolls back): a restore never hangs behind a busy worker.
PG_LOCK_WAIT_SECONDS = 30.0


@dataclass
class RestoreReport:
    """What was restored, from which revision, and where the store as it was before is kept."""

    source: Path
    dialect: str
    revision: str
    upgraded: bool
    safety_copy: Path | None
    tables: dict[str, int] = field(default_factory=dict)


def restore_backup(
    database_url: str, path: Path, directory: Path, *, now: dt.datetime | None = None
) -> RestoreReport:
    """Replace the store at ``database_url`` with the backup at ``path``.

    A safety copy of the current store goes to ``directory`` first. Raises ``BackupError`` (and
    leaves the store as it was) for a missing, corrupt or foreign file.
    """
    url = make_url(database_url)
    backend = url.get_backend_name()
    try:
        kind = file_kind(path)
        if backend == "sqlite":
            return _restore_sqlite(database_url, url, path, kind, directory, now)
        if backend == "postgresql":
            return _restore_postgresql(database_url, url, path, kind, directory, now)
        raise BackupError(f"restoring {backend} stores is not supported")
    except BackupError as exc:
        if exc.store_changed:
            raise
        raise BackupError(f"{exc}; the current store was not changed") from exc


def _check_tables(database_url: str, what: str) -> None:
    """The store must have every table of the current schema (the revision alone could be forged)."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            present = set(inspect(connection).get_table_names())
    finally:
        engine.dispose()
    missing = sorted(t.name for t in Base.metadata.sorted_tables if t.name not in present)
    if missing:
        raise BackupError(f"{what} lacks tables of this schema: {', '.join(missing)}")


def _migrate(database_url: str, revision: str, what: str) -> None:
    """Alembic upgrade or downgrade to ``revision``, failures reported as ``BackupError``."""
    config = alembic_config(database_url)
    script = ScriptDirectory.from_config(config)
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            current = revision_of(connection)
    finally:
        engine.dispose()
    target = (script.get_current_head() or revision) if revision == "head" else revision
    if current == target:
        return
    older = current is not None and target in {r.revision for r in script.iterate_revisions(current, "base")}
    try:
        if older:
            command.downgrade(config, target)
        else:
            command.upgrade(config, target)
    except Exception as exc:
        raise BackupError(f"{what} failed ({exc})") from exc


def _counts(database_url: str) -> dict[str, int]:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return table_counts(connection)
    finally:
        engine.dispose()


# -- SQLite ----------------------------------------------------------------------------------------


def _unpack(path: Path, kind: str, staging: Path) -> None:
    """Put a private copy of the backup at ``staging`` (migrations run on it, never on the backup)."""
    if kind == "pgdump":
        raise BackupError(f"{path} is a PostgreSQL dump, but DATABASE_URL is a SQLite store")
    if kind == "gzip":
        try:
            with gzip.open(path, "rb") as packed, staging.open("wb") as out:
                shutil.copyfileobj(packed, out)
        except (OSError, EOFError, zlib.error) as exc:
            raise BackupError(f"{path} is not a readable gzip file ({exc})") from exc
        if file_kind(staging) != "sqlite":
            raise BackupError(f"{path} does not hold a SQLite backup")
        return
    shutil.copyfile(path, staging)


def _restore_sqlite(
    database_url: str, url: URL, path: Path, kind: str, directory: Path, now: dt.datetime | None
) -> RestoreReport:
    live = sqlite_path(url)
    live.parent.mkdir(parents=True, exist_ok=True)
    staging = live.parent / f".restore-{uuid.uuid4().hex}.sqlite3"
    staging_url = f"sqlite:///{staging}"
    try:
        _unpack(path, kind, staging)
        revision, _ = verify_sqlite(staging, str(path))
        check_revision(revision, str(path))
        assert revision is not None
        upgraded = revision != head_revision()
        if upgraded:
            _migrate(staging_url, "head", f"migrating {path} from schema {revision}")
        _check_tables(staging_url, str(path))
        safety = None
        if live.exists():
            safety = create_backup(
                database_url, directory, now=now, stem="pre-restore", check_schema=False
            ).path
        try:
            sqlite_copy(staging, live)  # one transaction: on failure the store is as it was
        except sqlite3.Error as exc:
            raise BackupError(f"replacing {live} failed ({exc})") from exc
    finally:
        for leftover in (staging, Path(f"{staging}-wal"), Path(f"{staging}-shm")):
            leftover.unlink(missing_ok=True)
    return RestoreReport(path, "sqlite", revision, upgraded, safety, _counts(database_url))


# -- PostgreSQL ------------------------------------------------------------------------------------


def dump_revision(binary: str, path: Path, env: dict[str, str]) -> str | None:
    """The schema revision recorded in a custom-format dump (its ``alembic_version`` data)."""
    result = run_tool(
        [binary, "--data-only", "--table=alembic_version", "--file=-", str(path)],
        env,
        f"reading {path}",
    )
    lines = result.stdout.splitlines()
    for number, line in enumerate(lines):
        if line.startswith("COPY ") and "alembic_version" in line:
            value = lines[number + 1].strip() if number + 1 < len(lines) else ""
            return value if value and value != "\\." else None
    return None


def _live_revision(database_url: str, binary: str) -> str | None:
    """The current database's revision, after checking ``binary`` can talk to its server."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            check_tool_version(binary, connection)
            return revision_of(connection)
    finally:
        engine.dispose()


def _restore_postgresql(
    database_url: str, url: URL, path: Path, kind: str, directory: Path, now: dt.datetime | None
) -> RestoreReport:
    if kind != "pgdump":
        raise BackupError(f"{path} is not a PostgreSQL custom-format dump (DATABASE_URL is PostgreSQL)")
    binary = pg_tool("pg_restore")
    target, env = libpq_target(url)
    current = _live_revision(database_url, binary)
    listing = run_tool([binary, "--list", str(path)], env, f"reading {path}").stdout
    revision = dump_revision(binary, path, env)
    check_revision(revision, str(path))
    assert revision is not None
    if revision == head_revision():
        # The revision alone could be wrong (a hand-made database): the dump must hold every table.
        missing = sorted(
            t.name for t in Base.metadata.sorted_tables if f" TABLE public {t.name} " not in listing
        )
        if missing:
            raise BackupError(f"{path} lacks tables of this schema: {', '.join(missing)}")
    if current is not None and current != revision:
        # Migrating back needs the current revision's downgrade scripts: this code must know it.
        check_revision(current, "the current database")
    safety = create_backup(database_url, directory, now=now, stem="pre-restore", check_schema=False).path
    moved_back = current is not None and current != revision
    if moved_back:
        # One transaction (PostgreSQL DDL is transactional): if it fails, nothing changed.
        _migrate(database_url, revision, f"migrating the database back to the backup's schema {revision}")
    try:
        _run_pg_restore(
            database_url,
            [
                binary,
                "--clean",
                "--if-exists",
                "--single-transaction",
                "--exit-on-error",
                "--no-owner",
                "--no-privileges",
                f"--dbname={target}",
                str(path),
            ],
            env,
        )
    except BackupError as exc:
        if moved_back:
            assert current is not None
            _migrate(database_url, current, f"migrating the database forward again to {current}")
            raise BackupError(
                f"{exc}; the database was migrated to the backup's schema {revision} and forward again "
                f"to {current}: the safety copy {safety} holds it exactly as it was",
                store_changed=True,
            ) from exc
        raise
    upgraded = revision != head_revision()
    if upgraded:
        try:
            _migrate(database_url, "head", f"migrating the restored database from schema {revision}")
        except BackupError as exc:
            raise BackupError(
                f"{exc}; the backup was restored at schema {revision}, the safety copy {safety} holds "
                "the database as it was",
                store_changed=True,
            ) from exc
    return RestoreReport(path, "postgresql", revision, upgraded, safety, _counts(database_url))


def _run_pg_restore(database_url: str, command_line: list[str], env: dict[str, str]) -> None:
    """Run pg_restore, cancelling it if it waits on another session's lock for too long.

    A dump starts with ``SET lock_timeout = 0``, so the server would wait for ever behind a worker's
    open transaction; instead the restore's backend (found by its application name) is watched and
    cancelled, and the error names the sessions in the way.
    """
    name = f"cvi-restore-{uuid.uuid4().hex[:12]}"
    env = {**env, "PGAPPNAME": name}
    watch = create_engine(database_url, isolation_level="AUTOCOMMIT")
    blockers: list[str] = []
    try:
        with tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as errors:
            process = subprocess.Popen(command_line, stdout=subprocess.DEVNULL, stderr=errors, env=env)
            waiting_since: float | None = None
            with watch.connect() as connection:
                while process.poll() is None:
                    time.sleep(0.2)
                    row = connection.execute(
                        text(
                            "SELECT pid, wait_event_type, pg_blocking_pids(pid) FROM pg_stat_activity "
                            "WHERE application_name = :name"
                        ),
                        {"name": name},
                    ).first()
                    if row is None or row[1] != "Lock":
                        waiting_since = None
                        continue
                    waiting_since = waiting_since or time.monotonic()
                    if time.monotonic() - waiting_since >= PG_LOCK_WAIT_SECONDS:
                        blockers = _describe(connection, list(row[2] or []))
                        connection.execute(text("SELECT pg_cancel_backend(:pid)"), {"pid": row[0]})
                        break
            process.wait()
            errors.seek(0)
            stderr = errors.read()
    finally:
        watch.dispose()
    if blockers:
        raise BackupError(
            f"pg_restore gave up after waiting {PG_LOCK_WAIT_SECONDS:g} s (lock timeout) for tables other "
            f"sessions hold ({'; '.join(blockers)}); stop the web workers and the scheduler and try again"
        )
    if process.returncode != 0:
        raise BackupError(f"pg_restore failed: {stderr.strip() or f'exit status {process.returncode}'}")


def _describe(connection: Connection, pids: list[int]) -> list[str]:
    rows = connection.execute(
        text(
            "SELECT pid, coalesce(application_name, ''), coalesce(client_addr::text, 'local'), state "
            "FROM pg_stat_activity WHERE pid = ANY(:pids)"
        ),
        {"pids": pids},
    )
    return [f"pid {pid} {app or 'unnamed'} from {addr}, {state}" for pid, app, addr, state in rows] or [
        "sessions that have ended since"
    ]


# -- after a restore -------------------------------------------------------------------------------


def rebuild_keyword_index(session: Session, index_dir: str) -> int:
    """Rebuild the keyword index from the restored store (it lives beside the store, not in it).

    Embeddings and CVI scores are columns of the store, so they came back with it; ids a bulk load
    left pending stay pending for the next ``reindex``.
    """
    from matching.keyword import get_index

    return get_index(index_dir).rebuild(session)


def pending_reindex(index_dir: str) -> int:
    """How many opportunities wait for ``flask reindex`` (their CVI scores may be stale)."""
    from matching import pending

    return pending.count(index_dir) if os.path.isdir(index_dir) else 0
