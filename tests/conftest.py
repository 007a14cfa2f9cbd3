"""Test fixtures: a fresh database per test session on SQLite or PostgreSQL, emptied after each test.

``TEST_DATABASE_URL`` picks the store: ``sqlite`` (default) or a PostgreSQL URL. On PostgreSQL a
uniquely named database is created for the session and dropped after it, so parallel runs never
collide. The schema is built by the Alembic migrations, so every run also exercises them.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-dev-shm-usage",
]


def alembic_config(url: str) -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["database_url"] = url
    config.attributes["skip_logging"] = True
    return config


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    target = os.environ.get("TEST_DATABASE_URL", "sqlite")
    if not target.startswith("postgresql"):
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
        return
    admin_url = make_url(target)
    name = f"cvi_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def migrated_url(database_url: str) -> str:
    command.upgrade(alembic_config(database_url), "head")
    return database_url


@pytest.fixture
def app(migrated_url: str, tmp_path: Path) -> Iterator[Flask]:
    from app import create_app

    application = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": migrated_url,
            "INDEX_DIR": str(tmp_path / "index"),
            "CRAWL_ARCHIVE_DIR": str(tmp_path / "archive"),
            "SECRET_KEY": "test-secret-key",
            "BASE_URL": "http://testserver.local",
            # Tests read usage counts right after a request; api_meter's own tests cover batching.
            "API_USAGE_FLUSH_SECONDS": 0,
        }
    )
    yield application
    _empty_all_tables(application)
    application.extensions["database"].engine.dispose()


def _empty_all_tables(application: Flask) -> None:
    from app.db import Base

    engine = application.extensions["database"].engine
    application.extensions["database"].session.remove()
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(
                text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE")
            )
        else:
            for table in tables:
                conn.execute(text(f'DELETE FROM "{table}"'))


@pytest.fixture
def session(app: Flask) -> Iterator[Session]:
    from app.db import db_session

    with app.app_context():
        yield db_session()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def cli(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


@pytest.fixture
def make_user(session: Session) -> Any:
    """Create a user (with an organization unless ``organization=None`` is passed) and return it."""
    from app.models import Organization, Role
    from app.services.accounts import create_user

    counter = {"n": 0}

    def factory(
        email: str | None = None,
        *,
        role: str = "member",
        organization: Any = "new",
        password: str = "correct horse battery",
    ) -> Any:
        counter["n"] += 1
        if organization == "new":
            organization = Organization(name=f"Office of Violence Prevention {counter['n']}")
            session.add(organization)
        user = create_user(
            session,
            email or f"user{counter['n']}@example.org",
            password,
            role=Role(role),
            organization=organization,
        )
        session.commit()
        return user

    return factory


def session_cookie_data(app: Flask, user: Any) -> dict[str, Any]:
    """What a signed-in browser's session cookie holds for ``user``, with a live server-side session."""
    from app.services import user_sessions
    from app.sign_in import TOKEN_KEY

    db = app.extensions["database"].session()
    token = user_sessions.start(db, user.id, max_age_hours=1)
    db.commit()
    return {"_user_id": str(user.id), "_fresh": True, TOKEN_KEY: token}


@pytest.fixture
def login(app: Flask, client: FlaskClient) -> Any:
    """Sign a user in on the test client without going through the sign-in form."""

    def sign_in(user: Any) -> None:
        data = session_cookie_data(app, user)
        with client.session_transaction() as flask_session:
            flask_session.clear()
            flask_session.update(data)

    return sign_in


# One Chromium for the whole run: Playwright's sync API allows one instance at a time, so a
# second browser fixture started while this one lived failed ("Sync API inside the asyncio loop").
@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium")
    if executable is None:
        raise RuntimeError("Debian chromium is required: apt-get install -y chromium (make browser does it)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    opened = context.new_page()
    try:
        yield opened
    finally:
        context.close()
