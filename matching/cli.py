"""``flask --app wsgi reindex [--full]``."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext

from app.db import db_session


@click.command("reindex")
@click.option("--full", is_flag=True, help="Rebuild the keyword index from scratch even if it looks current.")
@with_appcontext
def reindex_command(full: bool) -> None:
    """Embed new or changed passages, bring the keyword index up to date and re-score CVI eligibility."""
    from matching.sync import reindex

    report = reindex(
        db_session(), current_app.config["INDEX_DIR"], full=full, say=lambda m: click.echo(m, err=True)
    )
    click.echo(
        f"reindexed: {report.indexed} indexed, {report.embedded} passages embedded "
        f"({report.reused} re-used), {report.scored} scored, {report.cvi_eligible} CVI-eligible"
    )
