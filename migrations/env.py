"""Alembic environment: the URL is the app's ``DATABASE_URL`` (same default as the app)."""

from __future__ import annotations

from logging.config import fileConfig
from pathlib import Path

from alembic import context

import app.models  # noqa: F401  (registers every table)
from app.config import load_config
from app.db import Base, make_engine

config = context.config
if config.config_file_name is not None and not config.attributes.get("skip_logging"):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def database_url() -> str:
    explicit = config.attributes.get("database_url")
    if explicit:
        return str(explicit)
    instance = Path(__file__).resolve().parent.parent / "instance"
    return str(load_config(instance)["DATABASE_URL"])


def run_migrations_offline() -> None:
    context.configure(
        url=database_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(database_url())
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()


def _run(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=target_metadata,
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
