"""A generated extract, ingested by the real command: the starting point of the store tests."""

from __future__ import annotations

from pathlib import Path

from flask import Flask

from bench.bench_ingest import generate


def ingest_generated(app: Flask, folder: Path, records: int, batch_size: int) -> Path:
    """Write ``records`` generated records to an extract in ``folder`` and ingest it in batches of
    ``batch_size`` (small batches exercise the batch boundaries); returns the extract's path."""
    path = folder / "GrantsDBExtract_generated.xml"
    generate(path, records)
    app.config["EXTRACT_BATCH_SIZE"] = batch_size
    result = app.test_cli_runner().invoke(args=["ingest-extract", str(path)])
    assert result.exit_code == 0, result.output
    return path
