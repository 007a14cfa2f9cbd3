"""Flask commands for partner keys: ``create-api-key`` and ``revoke-api-key``."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import with_appcontext

from app.db import db_session
from app.services import api_keys


@click.command("create-api-key")
@click.option("--name", required=True, help="The partner the key is for.")
@click.option("--rate-limit", type=int, default=120, show_default=True, help="Requests per minute.")
@click.option("--origin", "origins", multiple=True, help="A browser origin allowed to use the key (repeat).")
@with_appcontext
def create_api_key_command(name: str, rate_limit: int, origins: tuple[str, ...]) -> None:
    """Issue a key; the key itself is printed alone on the last line (it is not stored, keep it)."""
    session = db_session()
    try:
        row, key = api_keys.create_key(session, name, rate_limit_per_minute=rate_limit, origins=list(origins))
    except api_keys.ApiKeyError as exc:
        raise click.ClickException(str(exc)) from exc
    session.commit()
    click.echo(
        f"created API key {row.prefix} for {row.name} ({row.rate_limit_per_minute}/min"
        f"{', origins ' + ', '.join(row.allowed_origins) if row.allowed_origins else ''}); "
        "store it now, it is shown only once:"
    )
    click.echo(key)


@click.command("revoke-api-key")
@click.argument("prefix")
@with_appcontext
def revoke_api_key_command(prefix: str) -> None:
    """Revoke a key by its prefix (or the full key); requests with it get 401 from now on."""
    session = db_session()
    try:
        row = api_keys.revoke_key(session, prefix)
    except api_keys.ApiKeyError as exc:
        raise click.ClickException(str(exc)) from exc
    session.commit()
    click.echo(f"revoked API key {row.prefix} of {row.name}")


def init_app(app: Flask) -> None:
    app.cli.add_command(create_api_key_command)
    app.cli.add_command(revoke_api_key_command)
