"""A private PostgreSQL cluster that tests may stop, start and restart.

The shared server on 127.0.0.1:5432 is never touched: restart tests get a cluster of their own,
created with ``initdb`` as the ``postgres`` user in a temporary directory, listening on a free
loopback port, and removed (``pg_ctl stop -m immediate``, directory deleted) when the session ends.
The schema is migrated once into a template database; each test gets a copy of it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bench.stack import free_port
from tests.conftest import alembic_config

PG_BIN = Path("/usr/local/bin")
TEMPLATE = "cvi_template"
TARGET = os.environ.get("TEST_DATABASE_URL", "sqlite")
needs_postgres = pytest.mark.skipif(
    not TARGET.startswith("postgresql"),
    reason="restarting the database server needs PostgreSQL: this test runs in the PostgreSQL pass",
)


class PrivateCluster:
    """One PostgreSQL cluster owned by the test session: start, stop and restart it at will."""

    def __init__(self, root: Path, port: int) -> None:
        self.root = root
        self.data = root / "data"
        self.port = port
        self.log = root / "server.log"
        self.restarts = 0
        self._lock = threading.Lock()

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def _pg_ctl(self, *args: str) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        command = [str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60"]
        if args[0] in ("start", "restart"):
            command += ["-o", options]
        completed = subprocess.run(
            ["runuser", "-u", "postgres", "--", *command, *args],
            capture_output=True,
            text=True,
            timeout=90,
        )
        if completed.returncode != 0:
            raise RuntimeError(f"pg_ctl {' '.join(args)} failed: {completed.stderr}\n{self.log_tail()}")

    def init(self) -> None:
        completed = subprocess.run(
            [
                "runuser", "-u", "postgres", "--", str(PG_BIN / "initdb"),
                "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )  # fmt: skip
        if completed.returncode != 0:
            raise RuntimeError(f"initdb failed: {completed.stderr}")

    def start(self) -> None:
        with self._lock:
            self._pg_ctl("start")

    def stop(self, mode: str = "fast") -> None:
        with self._lock:
            self._pg_ctl("stop", "-m", mode)

    def restart(self) -> None:
        """Stop (fast: every connection is terminated) and start again; returns once it accepts."""
        with self._lock:
            self._pg_ctl("restart", "-m", "fast")
            self.restarts += 1

    def ensure_running(self) -> None:
        """Up again after a test that stopped it (waits for a start already under way)."""
        with self._lock:
            if not (self.data / "postmaster.pid").exists():
                self._pg_ctl("start")

    def start_in_background(self) -> threading.Thread:
        """Start the stopped server from another thread (the caller goes on while it comes up)."""
        thread = threading.Thread(target=self.start, name="pg-start", daemon=True)
        thread.start()
        return thread

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""

    def create_database(self) -> str:
        """A fresh copy of the migrated template; returns its URL."""
        name = f"cvi_{uuid.uuid4().hex[:10]}"
        engine = create_engine(self.url(), isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE}"'))
        engine.dispose()
        return self.url(name)

    def drop_database(self, url: str) -> None:
        engine = create_engine(self.url(), isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
        engine.dispose()


@pytest.fixture(scope="session")
def private_pg() -> Iterator[PrivateCluster]:
    if not TARGET.startswith("postgresql"):
        pytest.skip("restarting the database server needs PostgreSQL: this test runs in the PostgreSQL pass")
    root = Path(tempfile.mkdtemp(prefix="cvi-pg-"))
    shutil.chown(root, "postgres", "postgres")
    cluster = PrivateCluster(root, free_port())
    try:
        cluster.init()
        cluster.start()
        engine = create_engine(cluster.url(), isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{TEMPLATE}"'))
        engine.dispose()
        from alembic import command

        command.upgrade(alembic_config(cluster.url(TEMPLATE)), "head")
        yield cluster
    finally:
        if (cluster.data / "postmaster.pid").exists():
            with contextlib.suppress(RuntimeError):
                cluster.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)
