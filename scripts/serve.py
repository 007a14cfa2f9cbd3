"""The production set-up in one command (``make serve``): gunicorn's web workers and the scheduler.

It first brings the schema up to date (``alembic upgrade head``), then starts both processes.

Both processes are started from the repository folder with the caller's environment, so they share
``DATABASE_URL``, ``INDEX_DIR`` and ``CRAWL_ARCHIVE_DIR``. SIGTERM or Ctrl-C stops both gracefully
(gunicorn lets each worker finish its request and flush its API usage counts). If either process dies
on its own, the other is stopped too and this exits non-zero, so a process manager (systemd,
supervisord, a container runtime) restarts the pair rather than leaving a site without its scheduler.

Refuses to start without a ``SECRET_KEY`` of at least 32 characters in the environment, and on SQLite
unless ``SERVE_ALLOW_SQLITE=1``: the production store is PostgreSQL, and
SQLite serialises writers, which several web workers plus a crawling scheduler would queue behind.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
STOP_GRACE_SECONDS = 30.0


def log(event: str, **fields: object) -> None:
    """One JSON line per event on stderr, like the app's own structured logs."""
    record = {"ts": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "logger": "serve", "event": event, **fields}
    print(json.dumps(record), file=sys.stderr, flush=True)


def commands(env: dict[str, str]) -> dict[str, list[str]]:
    bind = env.get("BIND") or f"{env.get('HOST', '127.0.0.1')}:{env.get('PORT', '8000')}"
    web = [str(BIN / "gunicorn"), "-c", str(ROOT / "gunicorn.conf.py"), "-b", bind, "wsgi:app"]
    scheduler = [str(BIN / "flask"), "--app", "wsgi", "scheduler"]
    return {"web": web, "scheduler": scheduler}


def check_database(env: dict[str, str]) -> str | None:
    """Why this environment can't serve production, or None."""
    url = env.get("DATABASE_URL", "")
    if not url:
        return "DATABASE_URL is not set (e.g. postgresql+psycopg://user@host:5432/cvi)"
    if not url.startswith("postgresql") and env.get("SERVE_ALLOW_SQLITE") != "1":
        return "DATABASE_URL is not PostgreSQL; set SERVE_ALLOW_SQLITE=1 to serve SQLite anyway"
    return None


MIN_SECRET_KEY_LENGTH = 32


def check_secret_key(env: dict[str, str]) -> str | None:
    """Why the signing key is unfit for production, or None.

    Without ``SECRET_KEY`` each host would generate its own into ``instance/`` (fine for ``make run``,
    wrong for several hosts, and a key on disk beside the code): production takes it from the
    environment only.
    """
    key = env.get("SECRET_KEY", "")
    if not key:
        return "SECRET_KEY is not set (e.g. python -c 'import secrets; print(secrets.token_urlsafe(48))')"
    if len(key) < MIN_SECRET_KEY_LENGTH:
        return f"SECRET_KEY is shorter than {MIN_SECRET_KEY_LENGTH} characters; use a long random value"
    return None


def stop_all(processes: dict[str, subprocess.Popen[bytes]]) -> None:
    for process in processes.values():
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for name, process in processes.items():
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log("killed", process=name, reason=f"still running {STOP_GRACE_SECONDS:g} s after SIGTERM")
            process.kill()
            process.wait()


def main() -> int:
    env = dict(os.environ)
    problem = check_database(env) or check_secret_key(env)
    if problem:
        log("refused", reason=problem)
        return 2
    migrated = subprocess.run([str(BIN / "alembic"), "upgrade", "head"], cwd=ROOT, env=env, check=False)
    if migrated.returncode != 0:
        log("refused", reason="alembic upgrade head failed; see above")
        return migrated.returncode
    processes: dict[str, subprocess.Popen[bytes]] = {}
    stopping = False

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        log("stopping", signal=signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    for name, argv in commands(env).items():
        processes[name] = subprocess.Popen(argv, cwd=ROOT, env=env)
        log("started", process=name, pid=processes[name].pid, argv=argv)
    exit_code = 0
    while not stopping:
        for name, process in processes.items():
            code = process.poll()
            if code is not None:
                log("exited", process=name, code=code, action="stopping the others")
                exit_code = code or 1
                stopping = True
                break
        else:
            time.sleep(0.5)
    stop_all(processes)
    log("stopped", codes={name: p.returncode for name, p in processes.items()})
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
