"""``flask backup`` and ``flask restore``: thin wrappers over ``services.backup`` and ``services.restore``."""

from __future__ import annotations

from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from app.db import db_session, get_db
from app.services import backup, restore


def _tables(counts: dict[str, int]) -> None:
    width = max((len(name) for name in counts), default=0)
    for name, rows in counts.items():
        click.echo(f"  {name:<{width}}  {rows}")


@click.command("backup")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="File to write (default: a timestamped file in BACKUP_DIR). Never overwritten.",
)
@click.option(
    "--gzip", "compress", is_flag=True, help="Gzip a SQLite backup (PostgreSQL dumps are compressed)."
)
@with_appcontext
def backup_command(out: Path | None, compress: bool) -> None:
    """Take a consistent online backup of the store (the site and the scheduler may keep running)."""
    config = current_app.config
    try:
        report = backup.create_backup(
            config["DATABASE_URL"], Path(config["BACKUP_DIR"]), out=out, compress=compress
        )
    except backup.BackupError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        f"backed up the {report.dialect} store (schema {report.revision}) to {report.path} "
        f"({report.size:,} bytes, {sum(report.tables.values()):,} rows):"
    )
    _tables(report.tables)


@click.command("restore")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--yes", is_flag=True, help="Replace the current store without asking.")
@with_appcontext
def restore_command(path: Path, yes: bool) -> None:
    """Replace the whole store with the backup at PATH (the current store is saved to BACKUP_DIR first).

    Stop the site and the scheduler first: whatever they write meanwhile is not in the backup.
    """
    config = current_app.config
    try:
        backup.file_kind(path)  # a missing or foreign file fails before anyone is asked anything
    except backup.BackupError as exc:
        raise click.ClickException(f"{exc}; the current store was not changed") from exc
    if not yes:
        click.confirm(
            f"Replace every table of {get_db().engine.url.render_as_string()} with {path}?", abort=True
        )
    database = get_db()
    database.session.remove()
    database.engine.dispose()  # no pooled connection holds a lock on what is about to be replaced
    try:
        report = restore.restore_backup(config["DATABASE_URL"], path, Path(config["BACKUP_DIR"]))
    except backup.BackupError as exc:
        raise click.ClickException(str(exc)) from exc
    database.engine.dispose()
    if report.safety_copy:
        click.echo(f"the store as it was is kept in {report.safety_copy}")
    upgraded = f", migrated from schema {report.revision} to the current one" if report.upgraded else ""
    click.echo(
        f"restored the {report.dialect} store from {report.source}{upgraded} "
        f"({sum(report.tables.values()):,} rows):"
    )
    _tables(report.tables)
    indexed = restore.rebuild_keyword_index(db_session(), str(config["INDEX_DIR"]))
    db_session().commit()
    click.echo(f"keyword index rebuilt ({indexed} opportunities)")
    waiting = restore.pending_reindex(str(config["INDEX_DIR"]))
    if report.upgraded or waiting:
        click.echo(
            "run `flask --app wsgi reindex` to bring CVI scores and embeddings up to date "
            "with the restored store",
            err=True,
        )


def init_app(app: Flask) -> None:
    app.cli.add_command(backup_command)
    app.cli.add_command(restore_command)
