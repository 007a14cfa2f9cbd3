"""``flask crawl`` and ``flask ingest-extract``: progress on stderr, a one-line summary at the end,
exit code 1 when any source failed."""

from __future__ import annotations

import sys

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from app.db import db_session, get_db
from app.services import crawling
from crawlers.registry import SOURCES
from crawlers.runner import SourceOutcome


def _progress(outcome: SourceOutcome) -> None:
    click.echo(
        f"  {outcome.name}: {outcome.fetched} fetched, {outcome.new} new, {outcome.updated} updated, "
        f"{outcome.unchanged} unchanged, {outcome.failed} failed",
        err=True,
    )


def _pending_note() -> None:
    """Say what a bulk load left for ``reindex`` (keyword index and CVI scores wait for it)."""
    from matching import pending

    waiting = pending.count(str(current_app.config["INDEX_DIR"]))
    if waiting:
        click.echo(
            f"  {waiting} new or changed opportunities wait for `flask --app wsgi reindex` "
            "(keyword index, CVI scores, embeddings)",
            err=True,
        )


def _report(results: list[tuple[int | None, SourceOutcome]], verb: str) -> None:
    for run_id, outcome in results:
        for issue in outcome.issues:
            where = f" {issue.url}" if issue.url else ""
            click.echo(f"  {outcome.name} error [{issue.kind}]{where}: {issue.message}", err=True)
        click.echo(f"  {outcome.summary()} (run {run_id}, {outcome.seconds:.1f} s)", err=True)
    failed = [o.name for _, o in results if o.status == "failed"]
    parts = [
        f"{o.name} {o.status} ({o.new} new, {o.updated} updated, {o.unchanged} unchanged, "
        f"{o.failed} failed, {o.vanished} vanished)"
        for _, o in results
    ]
    click.echo(f"{verb}: " + "; ".join(parts) + (f" — FAILED: {', '.join(failed)}" if failed else ""))
    if failed:
        sys.exit(1)


@click.command("crawl")
@click.option(
    "--source",
    "sources",
    multiple=True,
    type=click.Choice(list(SOURCES)),
    help="Source to crawl (repeatable); all when none is named.",
)
@click.option(
    "--since",
    "since_days",
    type=click.IntRange(min=1),
    default=None,
    help="Only what was posted in the last N days.",
)
@click.option("--include-closed", is_flag=True, help="Grants.gov: also closed and archived opportunities.")
@click.option(
    "--reparse", "reparse_id", type=int, default=None, help="Parse the archived payloads of run ID again."
)
@with_appcontext
def crawl_command(
    sources: tuple[str, ...], since_days: int | None, include_closed: bool, reparse_id: int | None
) -> None:
    """Crawl DOJ, DOL, ED and HHS funding opportunities from Grants.gov and the agency sites."""
    config = current_app.config
    database = get_db()
    if reparse_id is not None:
        click.echo(f"re-parsing the archived payloads of run {reparse_id}", err=True)
        try:
            result = crawling.reparse_run(
                db_session(), database.session_factory, config, reparse_id, progress=_progress
            )
        except ValueError as exc:
            raise click.ClickException(str(exc)) from exc
        _pending_note()
        _report([result], "reparse finished")
        return
    names = list(sources) or list(SOURCES)
    click.echo(f"crawling {', '.join(names)}", err=True)
    results = crawling.run_crawl(
        db_session(),
        database.session_factory,
        config,
        names,
        since_days=since_days,
        include_closed=include_closed,
        progress=_progress,
    )
    _report(results, "crawl finished")


@click.command("ingest-extract")
@click.argument("path", required=False)
@click.option("--all-agencies", is_flag=True, help="Keep every agency, not only DOJ, DOL, ED and HHS.")
@with_appcontext
def ingest_extract_command(path: str | None, all_agencies: bool) -> None:
    """Load a Grants.gov XML extract: PATH is a .zip, a .xml or a URL (default GRANTS_GOV_EXTRACT_URL)."""
    config = current_app.config
    location = path or str(config.get("GRANTS_GOV_EXTRACT_URL") or "")
    click.echo(f"ingesting {location}", err=True)
    result = crawling.ingest_extract(
        db_session(),
        get_db().session_factory,
        config,
        location,
        all_agencies=all_agencies,
        progress=_progress,
    )
    _pending_note()
    _report([result], "ingest finished")


def init_app(app: Flask) -> None:
    app.cli.add_command(crawl_command)
    app.cli.add_command(ingest_extract_command)
