"""Backup and restore: a round trip loses nothing, in any table; a bad file changes nothing.

Every table of ``Base.metadata`` is filled (the test fails if a new table is left empty, so it cannot
be forgotten) and compared row by row after the round trip. On the SQLite pass the SQLite backup API
path runs, on the PostgreSQL pass ``pg_dump`` / ``pg_restore``.
"""

from __future__ import annotations

import datetime as dt
import gzip
import os
import re
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from app.db import Base
from app.models import (
    AlertSettings,
    AlertSubscription,
    ApiKeyUsage,
    AssistanceListing,
    AuditEvent,
    CrawlError,
    CrawlPayload,
    CrawlRun,
    CrawlStatus,
    CviProgram,
    EmailOutbox,
    Frequency,
    HttpCacheEntry,
    Invitation,
    JobLock,
    JobOutcome,
    JobRun,
    MatchDismissal,
    Opportunity,
    OrgType,
    OutboxStatus,
    PassageEmbedding,
    PipelineStage,
    ProgramProfile,
    RateLimitCounter,
    Role,
    SavedSearch,
    SubscriptionKind,
    TrackedOpportunity,
    User,
)
from app.services import api_keys, backup, curation, restore, user_sessions
from app.services.opportunities import upsert
from matching.keyword import get_index
from tests.conftest import alembic_config
from tests.factories import record

T0 = dt.datetime(2026, 11, 1, 12, 0, 0, 123456, tzinfo=dt.UTC)
T1 = T0 + dt.timedelta(days=1, microseconds=1)
BYTES = bytes(range(256))
UNICODE = "Naïve café — “quotes”, 'apostrophes', emoji 🕊️, newline\nand tab\t"
HEAD = backup.head_revision()
OLDER = "0012_cvi_evidence"


def _on_postgresql(url: str) -> bool:
    return url.startswith("postgresql")


ON_POSTGRESQL = _on_postgresql(os.environ.get("TEST_DATABASE_URL", "sqlite"))


@pytest.fixture
def store(app: Flask, tmp_path: Path) -> Flask:
    """The app with its backups kept in the test's own folder."""
    app.config["BACKUP_DIR"] = str(tmp_path / "backups")
    return app


# -- filling every table ---------------------------------------------------------------------------


def fill_every_table(session: Session, make_user: Any) -> None:
    """At least one row in every table, with awkward values (microseconds, bytes, unicode, JSON)."""
    admin = make_user("admin@example.org", role="admin")
    member = make_user("member@example.org")
    organization_id = member.organization_id
    assert organization_id is not None

    program = CviProgram(
        slug="cvipi",
        name="Community Violence Intervention and Prevention Initiative",
        department="DOJ",
        sub_agency="BJA",
        summary=UNICODE,
        activities=["street outreach", "hospital-based violence intervention"],
        eligible_applicants="Units of local government",
        how_cvi_fits="Directly",
        source_url="https://bja.ojp.gov/program/cvipi",
        last_verified=dt.date(2026, 10, 1),
        updated_at=T0,
    )
    session.add(program)
    session.flush()
    session.add(
        AssistanceListing(
            number="16.045",
            title="Community Based Violence Prevention",
            department="DOJ",
            cvi_program_id=program.id,
            notes=UNICODE,
            details={"objectives": ["reduce shootings"], "nested": {"n": 1.5}},
        )
    )

    # Opportunities through the store's own upsert: codes, agencies and a version on the change.
    upsert(session, record(), now=T0)
    upsert(session, record(id="opp-2", number="O-OJP-2026-0002", title="Second " + UNICODE), now=T0)
    upsert(session, record(award_ceiling=2_500_000, close_date="2027-02-01"), now=T1)
    session.commit()
    first = session.scalars(select(Opportunity).where(Opportunity.source_id == "opp-1")).one()
    second = session.scalars(select(Opportunity).where(Opportunity.source_id == "opp-2")).one()
    curation.set_cvi(session, first, admin, True, "confirmed by hand")
    curation.correct_field(session, second, admin, "title", "Corrected title", "typo")
    session.add(
        PassageEmbedding(
            opportunity_id=first.id,
            passage_index=0,
            text_hash="a" * 64,
            model="all-MiniLM-L6-v2",
            passage=UNICODE,
            vector=BYTES,
        )
    )

    run = CrawlRun(
        source="grants_gov",
        mode="incremental",
        started_at=T0,
        finished_at=T1,
        status=CrawlStatus.PARTIAL,
        fetched=3,
        new=2,
        updated=1,
        failed=1,
        summary="one page failed",
        params={"since_days": 3},
    )
    session.add(run)
    session.flush()
    session.add_all(
        [
            CrawlError(
                run_id=run.id, occurred_at=T1, url="https://x.invalid/a", kind="http", message=UNICODE
            ),
            CrawlPayload(
                run_id=run.id,
                url="https://x.invalid/b",
                method="POST",
                request_body='{"rows": 25}',
                status_code=200,
                content_type="application/json",
                fetched_at=T0,
                body_gz=gzip.compress(b'{"hits": []}', mtime=0),
            ),
            HttpCacheEntry(
                url="https://x.invalid/c", etag='W/"1"', last_modified="Sun, 01 Nov 2026", body_gz=BYTES
            ),
            JobLock(name="crawl", holder="host:1", acquired_at=T0, expires_at=T1),
            JobRun(
                name="crawl",
                holder="host:1",
                started_at=T0,
                finished_at=T1,
                outcome=JobOutcome.SUCCEEDED,
                detail="ok",
                scheduled_for=T0,
            ),
            RateLimitCounter(bucket="ip:127.0.0.1", window_start=T0, count=7),
        ]
    )

    key, _plaintext = api_keys.create_key(
        session, "Partner", origins=["https://partner.example"], created_by_id=admin.id
    )
    session.flush()
    session.add(ApiKeyUsage(api_key_id=key.id, day=dt.date(2026, 11, 1), count=42))
    user_sessions.start(session, member.id, max_age_hours=1, now=T0)
    session.add_all(
        [
            Invitation(
                organization_id=organization_id,
                email="new@example.org",
                invited_by_id=member.id,
                created_at=T0,
                expires_at=T1,
            ),
            AlertSettings(user_id=member.id, calendar_token_version=3, updated_at=T0),
            AuditEvent(
                actor_id=admin.id,
                action="role",
                target_type="user",
                target_id=member.id,
                field="role",
                old_value="member",
                new_value={"role": Role.ADMIN.value},
                note=UNICODE,
                created_at=T0,
            ),
            EmailOutbox(
                user_id=member.id,
                to_address=member.email,
                kind="digest",
                period_key="2026-W44",
                subject=UNICODE,
                body_text="text",
                body_html="<p>html</p>",
                headers={"List-Unsubscribe": "<https://x.invalid/u>"},
                status=OutboxStatus.RETRYING,
                attempts=2,
                next_attempt_at=T1,
                last_error="421 try later",
                created_at=T0,
            ),
        ]
    )
    profile = ProgramProfile(
        organization_id=organization_id,
        external_id="ovp-1",
        name="Street outreach",
        org_type=OrgType.CITY_GOVERNMENT,
        city="Oakland",
        state="CA",
        program_description=UNICODE,
        focus_areas=["street outreach"],
        populations=["young adults"],
        funding_need="staff",
        budget_range="$250k-$1M",
        query_vector=BYTES,
        query_vector_key="b" * 64,
        created_by_id=member.id,
        created_at=T0,
        updated_at=T1,
    )
    saved = SavedSearch(user_id=member.id, name="Outreach", query={"q": ["street outreach"]}, created_at=T0)
    session.add_all([profile, saved])
    session.flush()
    session.add_all(
        [
            MatchDismissal(
                profile_id=profile.id,
                opportunity_id=second.id,
                reason="not a fit",
                user_id=member.id,
                created_at=T0,
            ),
            TrackedOpportunity(
                organization_id=organization_id,
                opportunity_id=first.id,
                stage=PipelineStage.PREPARING,
                notes=UNICODE,
                owner_id=member.id,
                internal_deadline=dt.date(2027, 1, 15),
                created_by_id=member.id,
                created_at=T0,
                updated_at=T1,
            ),
            AlertSubscription(
                user_id=member.id,
                kind=SubscriptionKind.SAVED_SEARCH,
                saved_search_id=saved.id,
                frequency=Frequency.DAILY,
                reminder_days=[7, 1],
                last_digest_at=T1,
                created_at=T0,
            ),
            AlertSubscription(
                user_id=member.id,
                kind=SubscriptionKind.PROGRAM_PROFILE,
                profile_id=profile.id,
                active=False,
                unsubscribed_at=T1,
                created_at=T0,
            ),
        ]
    )
    session.commit()


# -- comparing every table ------------------------------------------------------------------------


def snapshot(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table (and the schema revision), in primary-key order."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            rows = {
                table.name: [
                    tuple(row)
                    for row in connection.execute(select(table).order_by(*table.primary_key.columns))
                ]
                for table in Base.metadata.sorted_tables
            }
            rows["alembic_version"] = [
                tuple(r) for r in connection.execute(text("SELECT * FROM alembic_version"))
            ]
            return rows
    finally:
        engine.dispose()


def release(app: Flask) -> None:
    """Close the app's sessions and pooled connections (a restore replaces the tables under them)."""
    database = app.extensions["database"]
    database.session.remove()
    database.engine.dispose()


def wreck(url: str) -> None:
    """Change, add and delete rows in many tables, then empty half of them."""
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(
                text("UPDATE users SET email = 'changed@example.org' WHERE email LIKE 'member%'")
            )
            connection.execute(text("UPDATE opportunities SET title = 'wrecked', hidden = :h"), {"h": True})
            connection.execute(text("DELETE FROM email_outbox"))
            connection.execute(text("DELETE FROM opportunity_versions"))
            connection.execute(
                text("INSERT INTO organizations (name, created_at) VALUES ('Intruder', :t)"), {"t": T1}
            )
            for table in list(reversed(Base.metadata.sorted_tables))[::2]:
                connection.execute(table.delete())
    finally:
        engine.dispose()


@pytest.fixture
def filled(
    store: Flask, session: Session, make_user: Any, migrated_url: str
) -> dict[str, list[tuple[Any, ...]]]:
    fill_every_table(session, make_user)
    release(store)
    before = snapshot(migrated_url)
    empty = [name for name, rows in before.items() if not rows]
    assert not empty, f"fill_every_table leaves these tables empty: {empty}"
    return before


# -- the round trip ------------------------------------------------------------------------------


def test_round_trip_through_the_commands_restores_every_row(
    store: Flask,
    cli: FlaskCliRunner,
    filled: dict[str, list[tuple[Any, ...]]],
    migrated_url: str,
    tmp_path: Path,
) -> None:
    made = cli.invoke(args=["backup"])
    assert made.exit_code == 0, made.output
    backups = sorted((tmp_path / "backups").iterdir())
    assert len(backups) == 1
    path = backups[0]
    assert str(path) in made.output
    assert re.search(r"^\s+users\s+2$", made.output, re.M) and "(schema " + HEAD in made.output
    expected_suffix = ".pgdump" if _on_postgresql(migrated_url) else ".sqlite3"
    assert path.name.startswith("cvi-") and path.name.endswith(expected_suffix)

    wreck(migrated_url)
    assert snapshot(migrated_url) != filled

    refused = cli.invoke(args=["restore", str(path)], input="n\n")
    assert refused.exit_code != 0
    release(store)
    assert snapshot(migrated_url) != filled

    restored = cli.invoke(args=["restore", "--yes", str(path)])
    assert restored.exit_code == 0, restored.output
    release(store)
    assert snapshot(migrated_url) == filled
    assert "restored the" in restored.output and "keyword index rebuilt (2 opportunities)" in restored.output

    safety = [p for p in (tmp_path / "backups").iterdir() if p.name.startswith("pre-restore-")]
    assert len(safety) == 1 and str(safety[0]) in restored.output
    # The keyword index answers for the restored store (it lives beside the store, not in it).
    assert get_index(store.config["INDEX_DIR"]).doc_count() == 2


def test_safety_copy_brings_back_the_store_a_restore_replaced(
    store: Flask, filled: dict[str, list[tuple[Any, ...]]], migrated_url: str, tmp_path: Path
) -> None:
    directory = tmp_path / "backups"
    made = backup.create_backup(migrated_url, directory, out=tmp_path / "full.bak")
    assert made.tables["opportunities"] == 2 and made.revision == HEAD
    wreck(migrated_url)
    wrecked = snapshot(migrated_url)

    report = restore.restore_backup(migrated_url, made.path, directory)
    assert snapshot(migrated_url) == filled
    assert report.safety_copy is not None and not report.upgraded
    assert report.tables == made.tables

    restore.restore_backup(migrated_url, report.safety_copy, directory)
    assert snapshot(migrated_url) == wrecked


@pytest.mark.skipif(ON_POSTGRESQL, reason="the gzip option is SQLite's")
def test_sqlite_gzip_backup_round_trip(
    store: Flask, filled: dict[str, list[tuple[Any, ...]]], migrated_url: str, tmp_path: Path
) -> None:
    made = backup.create_backup(migrated_url, tmp_path / "backups", compress=True, now=T0)
    assert made.path.name == "cvi-20261101T120000Z.sqlite3.gz"
    assert made.path.read_bytes()[:2] == b"\x1f\x8b"
    again = backup.create_backup(migrated_url, tmp_path / "backups", compress=True, now=T0)
    assert again.path.name == "cvi-20261101T120000Z-2.sqlite3.gz"
    wreck(migrated_url)
    restore.restore_backup(migrated_url, made.path, tmp_path / "backups")
    assert snapshot(migrated_url) == filled


@pytest.mark.skipif(ON_POSTGRESQL, reason="SQLite's online backup")
def test_sqlite_backup_and_restore_run_beside_an_open_connection(
    store: Flask, filled: dict[str, list[tuple[Any, ...]]], migrated_url: str, tmp_path: Path
) -> None:
    """The site keeps its connections while a backup runs (the backup holds what was committed,
    nothing torn) and while a restore runs (they then read the restored store)."""
    worker = sqlite3.connect(make_url(migrated_url).database or "", timeout=30)
    try:
        worker.execute("BEGIN IMMEDIATE")
        worker.execute("INSERT INTO organizations (name, created_at) VALUES ('Uncommitted', '2026-11-01')")
        made = backup.create_backup(migrated_url, tmp_path / "backups")
        worker.commit()
        assert made.tables["organizations"] == len(filled["organizations"])
        count = "SELECT count(*) FROM organizations"
        assert worker.execute(count).fetchone() == (len(filled["organizations"]) + 1,)

        restore.restore_backup(migrated_url, made.path, tmp_path / "backups")
        assert worker.execute(count).fetchone() == (len(filled["organizations"]),)
    finally:
        worker.close()
    assert snapshot(migrated_url) == filled


# -- a backup of an older schema is migrated ------------------------------------------------------


@pytest.fixture
def older_backup(migrated_url: str, tmp_path: Path) -> Iterator[Path]:
    """A backup of a store at an older revision, holding one user."""
    if _on_postgresql(migrated_url):
        admin_url = make_url(migrated_url).set(database="postgres")
        name = f"cvi_backup_{uuid.uuid4().hex[:10]}"
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(migrated_url).set(database=name).render_as_string(hide_password=False)
    else:
        url = f"sqlite:///{tmp_path / 'older.db'}"
    try:
        command.upgrade(alembic_config(url), OLDER)
        engine = create_engine(url)
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO users (email, password_hash, role, active, created_at, failed_sign_ins, "
                    "timezone) VALUES ('old@example.org', 'x', 'member', :a, :t, 0, 'UTC')"
                ),
                {"a": True, "t": T0},
            )
        engine.dispose()
        yield backup.create_backup(url, tmp_path / "older-backups").path
    finally:
        if _on_postgresql(migrated_url):
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


def test_backup_of_an_older_schema_is_migrated_to_head(
    store: Flask,
    cli: FlaskCliRunner,
    filled: dict[str, list[tuple[Any, ...]]],
    migrated_url: str,
    older_backup: Path,
    tmp_path: Path,
) -> None:
    result = cli.invoke(args=["restore", "--yes", str(older_backup)])
    assert result.exit_code == 0, result.output
    release(store)
    assert f"migrated from schema {OLDER} to the current one" in result.output
    assert "run `flask --app wsgi reindex`" in result.output
    after = snapshot(migrated_url)
    assert after["alembic_version"] == [(HEAD,)]
    assert [row.email for row in _users(migrated_url)] == ["old@example.org"]
    assert after["opportunities"] == []
    # The store as it was is one command away.
    safety = next((tmp_path / "backups").glob("pre-restore-*"))
    restore.restore_backup(migrated_url, safety, tmp_path / "backups")
    assert snapshot(migrated_url) == filled


@pytest.mark.skipif(
    not ON_POSTGRESQL, reason="PostgreSQL restores an older dump into the migrated-back store"
)
def test_failed_restore_of_an_older_dump_says_what_changed(
    store: Flask,
    filled: dict[str, list[tuple[Any, ...]]],
    migrated_url: str,
    older_backup: Path,
    tmp_path: Path,
) -> None:
    """pg_restore fails after the store was migrated back: it is migrated forward again, and the
    error names the safety copy that holds it exactly as it was."""
    damaged = _damaged(older_backup, tmp_path / "older-damaged.pgdump")
    with pytest.raises(backup.BackupError, match="pg_restore failed") as caught:
        restore.restore_backup(migrated_url, damaged, tmp_path / "backups")
    assert caught.value.store_changed
    assert f"migrated to the backup's schema {OLDER} and forward again to {HEAD}" in str(caught.value)
    after = snapshot(migrated_url)
    assert after["alembic_version"] == [(HEAD,)]
    assert after["users"] == filled["users"]
    safety = next((tmp_path / "backups").glob("pre-restore-*"))
    assert str(safety) in str(caught.value)
    restore.restore_backup(migrated_url, safety, tmp_path / "backups")
    assert snapshot(migrated_url) == filled


def _users(url: str) -> list[Any]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return list(connection.execute(select(User.__table__).order_by(User.__table__.c.id)))
    finally:
        engine.dispose()


# -- bad files change nothing ---------------------------------------------------------------------


def _truncated(path: Path, target: Path) -> Path:
    """The first two thirds of a backup (a copy cut short)."""
    data = path.read_bytes()
    target.write_bytes(data[: len(data) * 2 // 3])
    return target


def _damaged(path: Path, target: Path) -> Path:
    """A backup of full length with bytes overwritten after its header (a bad disk)."""
    data = bytearray(path.read_bytes())
    if data.startswith(backup.PGDUMP_MAGIC):
        # The table of contents (and alembic_version's data) still read; the last table's data does not.
        data[-40:-8] = b"\xff" * 32
    else:
        for offset in range(4096, len(data), 4096):  # every page but the header page
            data[offset + 100 : offset + 400] = b"\xff" * 300
    target.write_bytes(bytes(data))
    return target


def _foreign(migrated_url: str, tmp_path: Path, revision: str | None) -> Path:
    """A store that is not this application's: unknown revision, or no alembic_version at all."""
    if _on_postgresql(migrated_url):
        admin_url = make_url(migrated_url).set(database="postgres")
        name = f"cvi_foreign_{uuid.uuid4().hex[:10]}"
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(migrated_url).set(database=name).render_as_string(hide_password=False)
    else:
        url = f"sqlite:///{tmp_path / f'foreign-{revision}.db'}"
    try:
        engine = create_engine(url)
        with engine.begin() as connection:
            connection.execute(text("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)"))
            if revision:
                connection.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)"))
                connection.execute(text("INSERT INTO alembic_version VALUES (:r)"), {"r": revision})
        engine.dispose()
        return backup.create_backup(url, tmp_path / "foreign", check_schema=False).path
    finally:
        if _on_postgresql(migrated_url):
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


@pytest.mark.parametrize(
    "case",
    [
        "missing",
        "not a backup",
        "empty",
        "truncated",
        "damaged",
        "no revision",
        "future revision",
        "current revision, other tables",
    ],
)
def test_bad_file_leaves_the_store_unchanged(
    store: Flask,
    cli: FlaskCliRunner,
    filled: dict[str, list[tuple[Any, ...]]],
    migrated_url: str,
    tmp_path: Path,
    case: str,
) -> None:
    good = backup.create_backup(migrated_url, tmp_path / "good").path
    path = tmp_path / "bad.bak"
    expected = {
        "missing": "no such file",
        "not a backup": "neither a SQLite backup nor a PostgreSQL",
        "truncated": "failed: pg_restore" if ON_POSTGRESQL else "not a readable SQLite database",
        "damaged": "pg_restore failed" if ON_POSTGRESQL else "SQLite database",
        "no revision": "records no schema revision",
        "future revision": "'9999_future', which this code does not know",
        "current revision, other tables": "lacks tables of this schema: agencies, ",
        "empty": "neither a SQLite backup nor a PostgreSQL",
    }[case]
    if case == "not a backup":
        path.write_text("id,title\n1,hello\n")
    elif case == "truncated":
        _truncated(good, path)
    elif case == "damaged":
        _damaged(good, path)
    elif case == "no revision":
        path = _foreign(migrated_url, tmp_path, None)
    elif case == "future revision":
        path = _foreign(migrated_url, tmp_path, "9999_future")
    elif case == "current revision, other tables":
        path = _foreign(migrated_url, tmp_path, HEAD)
    elif case == "empty":
        path.write_bytes(b"")

    with pytest.raises(backup.BackupError, match="the current store was not changed") as caught:
        restore.restore_backup(migrated_url, path, tmp_path / "backups")
    assert expected in str(caught.value)
    assert snapshot(migrated_url) == filled

    result = cli.invoke(args=["restore", "--yes", str(path)])
    assert result.exit_code == 1 and "the current store was not changed" in result.output
    release(store)
    assert snapshot(migrated_url) == filled


def test_backup_of_the_other_database_kind_is_refused(
    store: Flask, filled: dict[str, list[tuple[Any, ...]]], migrated_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "other.bak"
    if _on_postgresql(migrated_url):
        sqlite_url = f"sqlite:///{tmp_path / 'other.db'}"
        command.upgrade(alembic_config(sqlite_url), "head")
        path = backup.create_backup(sqlite_url, tmp_path / "other").path
        message = "not a PostgreSQL custom-format dump"
    else:
        path.write_bytes(backup.PGDUMP_MAGIC + b"\x01\x0e\x00" + b"\x00" * 64)
        message = "is a PostgreSQL dump, but DATABASE_URL is a SQLite store"
    with pytest.raises(backup.BackupError, match=message):
        restore.restore_backup(migrated_url, path, tmp_path / "backups")
    assert snapshot(migrated_url) == filled


@pytest.mark.skipif(ON_POSTGRESQL, reason="gzip is SQLite's option")
def test_truncated_gzip_backup_is_refused(
    store: Flask, filled: dict[str, list[tuple[Any, ...]]], migrated_url: str, tmp_path: Path
) -> None:
    good = backup.create_backup(migrated_url, tmp_path / "good", compress=True).path
    path = tmp_path / "cut.sqlite3.gz"
    path.write_bytes(good.read_bytes()[:-200])
    with pytest.raises(backup.BackupError, match="not a readable gzip file"):
        restore.restore_backup(migrated_url, path, tmp_path / "backups")
    assert snapshot(migrated_url) == filled


def test_backup_never_overwrites_a_file(
    store: Flask, cli: FlaskCliRunner, filled: dict[str, list[tuple[Any, ...]]], tmp_path: Path
) -> None:
    existing = tmp_path / "keep.bak"
    existing.write_text("precious")
    result = cli.invoke(args=["backup", "--out", str(existing)])
    assert result.exit_code == 1 and "exists; choose another path" in result.output
    assert existing.read_text() == "precious"


@pytest.mark.skipif(not ON_POSTGRESQL, reason="pg_dump is PostgreSQL's")
def test_postgresql_tools_missing_or_too_old_is_a_clear_error(
    store: Flask,
    filled: dict[str, list[tuple[Any, ...]]],
    migrated_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with monkeypatch.context() as patch:
        patch.setenv("PATH", str(tmp_path / "nowhere"))
        with pytest.raises(backup.BackupError, match="pg_dump is not on PATH"):
            backup.create_backup(migrated_url, tmp_path / "backups")
    with monkeypatch.context() as patch:
        patch.setattr(backup, "tool_major", lambda _binary: 9)
        with pytest.raises(backup.BackupError, match=r"version 9 but the server is PostgreSQL \d+"):
            backup.create_backup(migrated_url, tmp_path / "backups")
    assert not (tmp_path / "backups").exists() or not any((tmp_path / "backups").iterdir())
    assert snapshot(migrated_url) == filled


@pytest.mark.skipif(not ON_POSTGRESQL, reason="PostgreSQL table locks")
def test_postgresql_restore_gives_up_behind_a_busy_session_instead_of_hanging(
    store: Flask,
    filled: dict[str, list[tuple[Any, ...]]],
    migrated_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made = backup.create_backup(migrated_url, tmp_path / "good")
    monkeypatch.setattr(restore, "PG_LOCK_WAIT_SECONDS", 1.0)
    engine = create_engine(migrated_url)
    try:
        with engine.connect() as busy:
            busy.execute(text("SELECT count(*) FROM users"))  # holds a lock until its transaction ends
            with pytest.raises(backup.BackupError, match=r"lock timeout.*the current store was not changed"):
                restore.restore_backup(migrated_url, made.path, tmp_path / "backups")
            busy.rollback()
    finally:
        engine.dispose()
    assert snapshot(migrated_url) == filled
