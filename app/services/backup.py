"""Backups of the whole store: a consistent online copy that ``restore`` can put back.

SQLite is copied with SQLite's own backup API (a snapshot taken page by page under SQLite's locks,
so the site and the scheduler keep running; a plain file copy of a WAL database can be torn).
PostgreSQL is dumped with ``pg_dump --format=custom`` inside a snapshot exported from a
repeatable-read transaction, so the revision and row counts reported are those of the dump itself.
"""

from __future__ import annotations

import datetime as dt
import gzip
import os
import re
import shutil
import sqlite3
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, create_engine, inspect, text
from sqlalchemy.engine import URL, make_url

import app.models  # noqa: F401  (registers every table on Base.metadata)
from app.db import Base

ROOT = Path(__file__).resolve().parent.parent.parent
SQLITE_MAGIC = b"SQLite format 3\x00"
PGDUMP_MAGIC = b"PGDMP"
GZIP_MAGIC = b"\x1f\x8b"
SQLITE_SUFFIX = ".sqlite3"
PGDUMP_SUFFIX = ".pgdump"


class BackupError(Exception):
    """A backup or restore that could not be done; unless ``store_changed``, the store is as it was."""

    def __init__(self, message: str, *, store_changed: bool = False) -> None:
        super().__init__(message)
        self.store_changed = store_changed


@dataclass
class BackupReport:
    """What a backup holds: where it is, its schema revision and how many rows each table has."""

    path: Path
    size: int
    dialect: str
    revision: str
    tables: dict[str, int] = field(default_factory=dict)


# -- schema revisions ------------------------------------------------------------------------------


def alembic_config(url: str) -> Config:
    """The project's Alembic configuration pointed at ``url`` (without touching logging)."""
    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["database_url"] = url
    config.attributes["skip_logging"] = True
    return config


def head_revision() -> str:
    """The schema revision this code expects."""
    head = ScriptDirectory.from_config(alembic_config("")).get_current_head()
    if head is None:  # pragma: no cover - the repository always has migrations
        raise BackupError("no Alembic migrations found")
    return head


def check_revision(revision: str | None, what: str) -> None:
    """Refuse a store whose revision this code does not know (made by newer or other code)."""
    if not revision:
        raise BackupError(f"{what} is not a backup of this application (it records no schema revision)")
    script = ScriptDirectory.from_config(alembic_config(""))
    try:
        known = script.get_revision(revision)
    except Exception:
        known = None
    if known is None:
        raise BackupError(
            f"{what} has schema revision {revision!r}, which this code does not know "
            f"(it knows up to {head_revision()!r}); restore it with the version of the code that made it"
        )


def table_counts(connection: Connection) -> dict[str, int]:
    """Rows per table of the application's schema (tables the store does not have are left out)."""
    present = set(inspect(connection).get_table_names())
    return {
        table.name: int(connection.execute(text(f'SELECT count(*) FROM "{table.name}"')).scalar_one())
        for table in sorted(Base.metadata.sorted_tables, key=lambda t: t.name)
        if table.name in present
    }


def revision_of(connection: Connection) -> str | None:
    if "alembic_version" not in inspect(connection).get_table_names():
        return None
    value = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    return str(value) if value else None


# -- files -----------------------------------------------------------------------------------------


def timestamp(now: dt.datetime | None = None) -> str:
    return (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")


def new_path(directory: Path, stem: str, suffix: str) -> Path:
    """``directory/stem+suffix``, or with ``-2``, ``-3`` … added: a backup never overwrites another."""
    directory.mkdir(parents=True, exist_ok=True)
    candidate = directory / f"{stem}{suffix}"
    number = 2
    while candidate.exists():
        candidate = directory / f"{stem}-{number}{suffix}"
        number += 1
    return candidate


def _publish(temporary: Path, final: Path) -> None:
    """Move a finished file to its name in one step, so a backup name always means a whole backup."""
    if final.exists():
        temporary.unlink(missing_ok=True)
        raise BackupError(f"{final} exists; choose another path")
    os.replace(temporary, final)


def file_kind(path: Path) -> str:
    """``sqlite``, ``pgdump`` or ``gzip`` from the file's first bytes; a clear error otherwise."""
    if not path.exists():
        raise BackupError(f"{path}: no such file")
    if not path.is_file():
        raise BackupError(f"{path} is not a file")
    with path.open("rb") as stream:
        head = stream.read(16)
    if head.startswith(SQLITE_MAGIC):
        return "sqlite"
    if head.startswith(PGDUMP_MAGIC):
        return "pgdump"
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    raise BackupError(f"{path} is neither a SQLite backup nor a PostgreSQL custom-format dump")


# -- SQLite ----------------------------------------------------------------------------------------


def sqlite_path(url: URL) -> Path:
    """The database file of a SQLite URL; in-memory stores cannot be backed up or restored."""
    database = url.database
    if not database or database == ":memory:" or database.startswith("file::memory:"):
        raise BackupError("DATABASE_URL is an in-memory SQLite store; there is no file to back up")
    return Path(database)


def sqlite_copy(source: Path, target: Path, *, standalone: bool = False) -> None:
    """Copy ``source`` into ``target`` with SQLite's backup API (a consistent snapshot, online).

    The whole copy is one step, so the target changes in a single transaction: a reader of the
    target sees either all of the old content or all of the new. A ``standalone`` copy (a backup
    file) is switched out of WAL mode so it is one self-contained file.
    """
    src = sqlite3.connect(source, timeout=30)
    try:
        dst = sqlite3.connect(target, timeout=30)
        try:
            src.backup(dst)
            if standalone:
                dst.execute("PRAGMA journal_mode=DELETE")
        finally:
            dst.close()
    finally:
        src.close()


def verify_sqlite(path: Path, what: str) -> tuple[str | None, dict[str, int]]:
    """Integrity-check a SQLite file and read its schema revision and row counts."""
    try:
        check = sqlite3.connect(path)
        try:
            result = [row[0] for row in check.execute("PRAGMA integrity_check").fetchall()]
        finally:
            check.close()
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{what} is not a readable SQLite database ({exc})") from exc
    if result != ["ok"]:
        raise BackupError(f"{what} failed the integrity check: {'; '.join(map(str, result[:5]))}")
    engine = create_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as connection:
            return revision_of(connection), table_counts(connection)
    finally:
        engine.dispose()


def _sqlite_backup(url: URL, final: Path, compress: bool, check_schema: bool) -> BackupReport:
    source = sqlite_path(url)
    final.parent.mkdir(parents=True, exist_ok=True)
    temporary = final.parent / f".{final.name}.{uuid.uuid4().hex}.partial"
    packed = temporary.with_suffix(".gz")
    try:
        sqlite_copy(source, temporary, standalone=True)
        revision, counts = verify_sqlite(temporary, "the new backup")
        if check_schema:
            check_revision(revision, "the database")
        if compress:
            with temporary.open("rb") as raw, packed.open("wb") as out:
                with gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as zipped:
                    shutil.copyfileobj(raw, zipped)
                out.flush()
                os.fsync(out.fileno())  # on disk before it takes a backup's name
            _publish(packed, final)
        else:
            _publish(temporary, final)
    finally:
        temporary.unlink(missing_ok=True)
        packed.unlink(missing_ok=True)
    return BackupReport(final, final.stat().st_size, "sqlite", revision or "", counts)


# -- PostgreSQL ------------------------------------------------------------------------------------


def libpq_target(url: URL) -> tuple[str, dict[str, str]]:
    """A libpq connection URI for the PostgreSQL tools, and an environment carrying the password
    (kept off the command line, where any user of the machine could read it)."""
    env = dict(os.environ)
    if url.password is not None:
        env["PGPASSWORD"] = str(url.password)
    plain = url.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def pg_tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupError(f"{name} is not on PATH; install the PostgreSQL client tools matching the server")
    return found


def tool_major(binary: str) -> int:
    """The major version a PostgreSQL client tool reports (``pg_dump (PostgreSQL) 15.20`` → 15)."""
    output = subprocess.run(
        [binary, "--version"], capture_output=True, text=True, errors="replace", check=False
    ).stdout
    match = re.search(r"(\d+)(?:\.\d+)?", output)
    if match is None:
        raise BackupError(f"cannot tell the version of {binary} ({output.strip() or 'no output'})")
    return int(match.group(1))


def check_tool_version(binary: str, connection: Connection) -> None:
    """pg_dump and pg_restore refuse (or misread) a server newer than themselves: say so plainly."""
    server = int(connection.execute(text("SHOW server_version_num")).scalar_one()) // 10000
    tool = tool_major(binary)
    if tool < server:
        raise BackupError(
            f"{binary} is version {tool} but the server is PostgreSQL {server}; "
            f"put the version {server} client tools first on PATH"
        )


def run_tool(command: list[str], env: dict[str, str], what: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, capture_output=True, text=True, errors="replace", env=env, check=False)
    if result.returncode != 0:
        raise BackupError(f"{what} failed: {result.stderr.strip() or f'exit status {result.returncode}'}")
    return result


@contextmanager
def _snapshot(url: URL) -> Iterator[tuple[Connection, str]]:
    """A repeatable-read transaction and its exported snapshot id, held open while pg_dump uses it."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            connection = connection.execution_options(isolation_level="REPEATABLE READ")
            with connection.begin():
                snapshot = str(connection.execute(text("SELECT pg_export_snapshot()")).scalar_one())
                yield connection, snapshot
    finally:
        engine.dispose()


def pg_dump(url: URL, final: Path, check_schema: bool = True) -> BackupReport:
    """Dump the whole database into ``final`` (custom format) and verify the archive reads back."""
    binary = pg_tool("pg_dump")
    target, env = libpq_target(url)
    final.parent.mkdir(parents=True, exist_ok=True)
    temporary = final.parent / f".{final.name}.{uuid.uuid4().hex}.partial"
    try:
        with _snapshot(url) as (connection, snapshot):
            check_tool_version(binary, connection)
            revision = revision_of(connection)
            if check_schema:
                check_revision(revision, "the database")
            counts = table_counts(connection)
            run_tool(
                [
                    binary,
                    "--format=custom",
                    f"--snapshot={snapshot}",
                    f"--file={temporary}",
                    f"--dbname={target}",
                ],
                env,
                "pg_dump",
            )
        listing = run_tool(
            [pg_tool("pg_restore"), "--list", str(temporary)], env, "reading the new dump back"
        )
        if check_schema and "TABLE DATA public alembic_version" not in listing.stdout:
            raise BackupError("the new dump holds no alembic_version table data")
        _publish(temporary, final)
    finally:
        temporary.unlink(missing_ok=True)
    return BackupReport(final, final.stat().st_size, "postgresql", revision or "", counts)


# -- the use case ----------------------------------------------------------------------------------


def create_backup(
    database_url: str,
    directory: Path,
    *,
    out: Path | None = None,
    compress: bool = False,
    now: dt.datetime | None = None,
    stem: str = "cvi",
    check_schema: bool = True,
) -> BackupReport:
    """Back up the store at ``database_url`` into ``directory`` (or to ``out``) and verify the copy.

    ``compress`` gzips a SQLite copy (PostgreSQL custom dumps are compressed already). Nothing is
    written under a backup's final name until the backup is complete and verified.
    ``check_schema=False`` also copies a store of no known revision (the safety copy ``restore``
    takes of whatever is there).
    """
    url = make_url(database_url)
    if out is not None and out.exists():
        raise BackupError(f"{out} exists; choose another path")
    backend = url.get_backend_name()
    if backend == "sqlite":
        if not sqlite_path(url).exists():
            raise BackupError(f"the database {sqlite_path(url)} does not exist")
        suffix = SQLITE_SUFFIX + (".gz" if compress else "")
        return _sqlite_backup(
            url, out or new_path(directory, f"{stem}-{timestamp(now)}", suffix), compress, check_schema
        )
    if backend == "postgresql":
        return pg_dump(
            url, out or new_path(directory, f"{stem}-{timestamp(now)}", PGDUMP_SUFFIX), check_schema
        )
    raise BackupError(f"backups of {backend} stores are not supported")
