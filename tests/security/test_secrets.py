"""Secrets only from the environment (ASVS V2.10, V6.4, V14.1): production refuses to start without a
key, the repository holds no secret, and API keys and passwords are stored only as hashes."""

from __future__ import annotations

import os
import re
import runpy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import inspect, text

from tests.conftest import ROOT

SERVE = ROOT / "scripts" / "serve.py"

#: What a leaked credential looks like; the scan reads every file git tracks.
SECRET_PATTERNS = {
    "private key": re.compile(r"-----BEGIN (?:RSA |EC |OPENSSH |DSA |PGP )?PRIVATE KEY"),
    "AWS access key": re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    "GitHub token": re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b"),
    "Slack token": re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"),
    "Google API key": re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"),
    "Stripe key": re.compile(r"\b[sr]k_live_[0-9A-Za-z]{16,}"),
    "password in a URL": re.compile(r"[a-z+]+://[^/\s:@'\"]+:[^/\s@'\"{}]{3,}@[a-z0-9.-]+"),
    "issued API key": re.compile(r"\bcvi_[0-9a-f]{10}_[A-Za-z0-9_-]{40,}"),
    "secret assignment": re.compile(
        r"(?i)\b(?:secret_key|smtp_password|api_key|password)\s*[=:]\s*['\"][^'\"\s]{16,}['\"]"
    ),
}
#: Values in tests and benchmarks that look like secrets but protect nothing.
ALLOWED = ("test-secret-key", "bench-secret", "correct horse battery", "not-the-site-key")


def tracked_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=False)
    if listed.returncode != 0:  # not a git checkout: every file outside the ignored folders
        ignored = {".git", ".venv", "instance", "__pycache__", ".mypy_cache", ".ruff_cache", "test-artifacts"}
        return [p for p in ROOT.rglob("*") if p.is_file() and not ignored & set(p.relative_to(ROOT).parts)]
    return [ROOT / name for name in listed.stdout.decode().split("\0") if name]


def test_the_repository_holds_no_secret() -> None:
    findings = []
    for path in tracked_files():
        if path.suffix in {".gz", ".zip", ".png", ".pyc"} or not path.exists():
            continue
        text_content = path.read_text(errors="replace")
        for name, pattern in SECRET_PATTERNS.items():
            for match in pattern.finditer(text_content):
                if not any(allowed in match.group() for allowed in ALLOWED):
                    findings.append(f"{path.relative_to(ROOT)}: {name}: {match.group()[:60]}")
    assert findings == []


def test_generated_secrets_and_local_stores_are_ignored_by_git() -> None:
    ignored = (ROOT / ".gitignore").read_text().split()
    assert "instance/" in ignored  # instance/secret_key, the SQLite store, the index
    assert not any(p.name in {".env", "secret_key"} for p in tracked_files())


def test_the_scan_finds_a_planted_secret() -> None:
    # Assembled here so that this file does not trip its own scan.
    planted = (
        "SECRET_"
        + "KEY = 'f3c1a9b07e2d4c55a1b2c3d4e5f60718'\n"
        + "postgresql://cvi:"
        + "hunter2hunter2@db/cvi"
    )
    hits = [name for name, pattern in SECRET_PATTERNS.items() if pattern.search(planted)]
    assert hits == ["password in a URL", "secret assignment"]


def run_serve(**env: str) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DATABASE_URL", "SERVE_ALLOW_SQLITE")
    }
    return subprocess.run(
        [sys.executable, str(SERVE)],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("secret", "reason"), [(None, "SECRET_KEY is not set"), ("short", "SECRET_KEY is shorter than 32")]
)
def test_make_serve_refuses_to_start_without_a_real_secret_key(secret: str | None, reason: str) -> None:
    env = {"DATABASE_URL": "postgresql+psycopg://cvi@127.0.0.1:9/cvi"}  # never reached: it refuses first
    if secret is not None:
        env["SECRET_KEY"] = secret
    result = run_serve(**env)
    assert result.returncode == 2, result.stderr
    assert reason in result.stderr and "alembic" not in result.stderr.lower()


def test_gunicorn_refuses_to_start_without_a_secret_key(monkeypatch: Any) -> None:
    monkeypatch.delenv("SECRET_KEY", raising=False)
    with pytest.raises(SystemExit, match="SECRET_KEY is not set"):
        runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    monkeypatch.setenv("SECRET_KEY", "x" * 48)
    assert runpy.run_path(str(ROOT / "gunicorn.conf.py"))["timeout"] == 120


def test_issued_api_keys_and_passwords_are_nowhere_in_the_store_in_clear(
    app: Flask, admin_client: Any, make_user: Any
) -> None:
    make_user("hashed@ovp.example.gov", password="a password nobody stores")
    page = admin_client.post("/admin/api-keys", data={"name": "Partner", "rate_limit": "60"})
    assert page.status_code == 201
    key = re.search(r"cvi_[0-9a-f]{10}_[A-Za-z0-9_-]+", page.get_data(as_text=True))
    assert key, "the key is shown once"
    engine = app.extensions["database"].engine
    with engine.connect() as conn:
        for table in inspect(engine).get_table_names():
            for row in conn.execute(text(f'SELECT * FROM "{table}"')):
                flat = " ".join(map(str, row))
                assert key.group() not in flat, table
                assert "a password nobody stores" not in flat, table
    listing = admin_client.get("/admin/api-keys").get_data(as_text=True)
    assert key.group() not in listing
