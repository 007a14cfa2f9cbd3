"""Real processes: a digest run killed half-way and restarted, and two schedulers started together."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.db import utcnow
from app.models import EmailOutbox, Frequency, JobOutcome, JobRun, OutboxStatus
from tests.alerts.conftest import Recorder, add_opportunity, subscribe_search
from tests.conftest import ROOT


def _env(app: Flask, smtp: Recorder, tmp_path: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=app.config["DATABASE_URL"],
        SECRET_KEY=app.config["SECRET_KEY"],
        BASE_URL=app.config["BASE_URL"],
        INDEX_DIR=str(tmp_path / "index"),
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=str(smtp.port),
        SMTP_TIMEOUT="5",
        DIGEST_TIMEZONE="UTC",
        LOG_LEVEL="INFO",
    )
    env.update(extra)
    return env


def _flask(*args: str) -> list[str]:
    return [sys.executable, "-m", "flask", "--app", "wsgi", *args]


def _statuses(session: Session) -> Counter[str]:
    session.expire_all()
    return Counter(str(s) for s in session.scalars(select(EmailOutbox.status)))


def test_killed_half_way_and_restarted_every_user_gets_exactly_one(
    app: Flask, session: Session, make_user: Any, smtp: Recorder, tmp_path: Path
) -> None:
    now = utcnow()
    users = [make_user(f"writer{n}@example.org") for n in range(6)]
    add_opportunity(session, at=now - dt.timedelta(hours=1), title="Outreach workers")
    for user in users:
        subscribe_search(
            session,
            user,
            {"q": "outreach"},
            created_at=now - dt.timedelta(days=3),
            last_digest_at=now - dt.timedelta(days=1),
        )
    env = _env(app, smtp, tmp_path)
    command = _flask("send-digests", "--period", "daily")

    # The SMTP server accepts three messages, then stops answering the fourth: the process is killed
    # while that one is in flight (its DATA sent, no 250 back), the worst moment.
    smtp.hold_after = 3
    with open(tmp_path / "first.log", "wb") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            assert smtp.holding.wait(60), (tmp_path / "first.log").read_text()[-2000:]
        finally:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(10)
    smtp.hold_after = None
    smtp.release.set()
    assert len(smtp.messages) == 3
    assert _statuses(session) == {"sent": 3, "sending": 1, "pending": 2}

    # Restarted at once: the in-flight message's lease still runs, so it is left alone; the rest go.
    again = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "0 digests queued" in again.stdout and "6 already built" in again.stdout
    assert _statuses(session) == {"sent": 5, "sending": 1}

    # The lease runs out (no process can tell whether the dead one's message went out): resent once.
    session.execute(
        update(EmailOutbox)
        .where(EmailOutbox.status == OutboxStatus.SENDING)
        .values(next_attempt_at=utcnow() - dt.timedelta(seconds=1))
    )
    session.commit()
    last = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert last.returncode == 0, last.stderr[-2000:]
    assert _statuses(session) == {"sent": 6}
    assert sorted(m["To"] for m in smtp.messages) == sorted(u.email for u in users)
    assert len({m["Message-ID"] for m in smtp.messages}) == 6


def test_two_schedulers_started_together_run_each_job_once(
    app: Flask, session: Session, make_user: Any, smtp: Recorder, tmp_path: Path
) -> None:
    now = utcnow()
    daily, weekly = make_user("daily@example.org"), make_user("weekly@example.org")
    add_opportunity(session, at=now - dt.timedelta(hours=1), title="Outreach workers")
    subscribe_search(
        session,
        daily,
        {"q": "outreach"},
        created_at=now - dt.timedelta(days=3),
        last_digest_at=now - dt.timedelta(days=1),
    )
    subscribe_search(
        session,
        weekly,
        {"q": "outreach"},
        frequency=Frequency.WEEKLY,
        created_at=now - dt.timedelta(days=30),
        last_digest_at=now - dt.timedelta(days=7),
    )
    at = (now + dt.timedelta(seconds=8)).replace(microsecond=0)
    cron = f"{at.second} {at.minute} {at.hour} * * *"
    env = _env(
        app,
        smtp,
        tmp_path,
        DIGEST_TIME=at.strftime("%H:%M:%S"),
        DIGEST_WEEKDAY=at.strftime("%a").lower(),
        SCHEDULER_TIMEZONE="UTC",
        SCHEDULER_OUTBOX_CRON=cron,
    )
    names = ["digests-daily", "digests-weekly", "outbox"]
    command = _flask("scheduler", *[arg for name in names for arg in ("--job", name)])
    logs = [tmp_path / f"scheduler{n}.log" for n in (1, 2)]
    processes = []
    for path in logs:
        with open(path, "wb") as log:
            processes.append(
                subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
            )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            text = "".join(p.read_text() for p in logs)
            finished = session.scalars(select(JobRun).where(JobRun.finished_at.is_not(None))).all()
            session.expire_all()
            if text.count("already taken by another process") >= len(names) and len(finished) >= len(names):
                break
            time.sleep(0.2)
        started = [p.read_text().count('"scheduler started"') for p in logs]
        assert started == [1, 1], "".join(p.read_text() for p in logs)[-3000:]
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            process.wait(20)
    assert utcnow() < at + dt.timedelta(seconds=50)
    runs = session.scalars(select(JobRun).order_by(JobRun.name)).all()
    assert [(r.name, r.outcome, r.scheduled_for) for r in runs] == [
        (n, JobOutcome.SUCCEEDED, at) for n in names
    ]
    text = "".join(p.read_text() for p in logs)
    assert text.count("already taken by another process") == len(names)  # the other process tried each one
    assert sorted(m["To"] for m in smtp.messages) == ["daily@example.org", "weekly@example.org"]
