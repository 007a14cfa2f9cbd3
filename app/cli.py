"""Flask commands (``flask --app wsgi …``): thin wrappers that call services and report."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from flask import Flask
from flask.cli import with_appcontext

from app.db import db_session
from app.models import Role
from app.services import accounts, seeding, transfer


@click.command("seed")
@with_appcontext
def seed_command() -> None:
    """Load the seed catalogue (CVI programs, demo opportunities, sample profiles); idempotent."""
    report = seeding.seed(db_session())
    result = report.opportunities.result
    click.echo(
        f"seeded {report.programs} CVI programs ({report.assistance_listings} assistance listings), "
        f"{report.profiles} sample program profiles, opportunities: {result.new} new, "
        f"{result.updated} updated, {result.unchanged} unchanged, {report.opportunities.skipped} skipped"
    )
    for error in report.opportunities.errors:
        click.echo(f"seeds/opportunities.jsonl line {error.line}: {error.message}", err=True)
    if report.opportunities.errors:
        sys.exit(1)


@click.command("import-opportunities")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--source", default=None, help="Source name for lines that do not name one.")
@with_appcontext
def import_command(path: Path, source: str | None) -> None:
    """Load a JSON-lines file of normalized opportunities; bad lines are reported and skipped.

    Exits 0 when every line loaded, 1 when any line was skipped.
    """
    with path.open(encoding="utf-8", errors="replace") as stream:
        report = transfer.import_lines(
            db_session(),
            stream,
            default_source=source or f"import:{path.name}",
            progress=lambda n: click.echo(f"  … {n} lines read", err=True),
        )
    for error in report.errors:
        click.echo(f"{path}:{error.line}: skipped: {error.message}", err=True)
    result = report.result
    click.echo(
        f"imported {path.name}: {result.new} new, {result.updated} updated, "
        f"{result.unchanged} unchanged, {report.skipped} skipped"
    )
    if report.errors:
        sys.exit(1)


@click.command("export-opportunities")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="File to write (standard output when omitted).",
)
@with_appcontext
def export_command(out: Path | None) -> None:
    """Write every stored opportunity as JSON lines in the contract format."""
    count = 0
    if out is None:
        for line in transfer.iter_export(db_session()):
            click.echo(line)
            count += 1
        return
    with out.open("w", encoding="utf-8") as stream:
        for line in transfer.iter_export(db_session()):
            stream.write(line + "\n")
            count += 1
    click.echo(f"exported {count} opportunities to {out}")


@click.command("create-user")
@click.option("--email", required=True)
@click.option("--password", required=True, help="At least 10 characters.")
@click.option("--role", type=click.Choice([r.value for r in Role]), default=Role.MEMBER.value)
@click.option("--name", default=None)
@with_appcontext
def create_user_command(email: str, password: str, role: str, name: str | None) -> None:
    """Create a user (a member or an admin)."""
    session = db_session()
    try:
        user = accounts.create_user(session, email, password, role=Role(role), name=name)
    except accounts.AccountError as exc:
        raise click.ClickException(str(exc)) from exc
    session.commit()
    click.echo(f"created {user.role} {user.email}")


def init_app(app: Flask) -> None:
    for command in (seed_command, import_command, export_command, create_user_command):
        app.cli.add_command(command)
