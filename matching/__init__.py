"""Matching: CVI eligibility, applicant eligibility, keyword and semantic search, and the ranker."""

from __future__ import annotations

from typing import Any


def init_app(app: Any) -> None:
    """Register the ``reindex`` command and keep the index in step with the app's commits.

    Imports nothing heavy: the embedding model loads on first use, never at app import.
    """
    from matching.cli import reindex_command
    from matching.sync import register

    app.cli.add_command(reindex_command)
    register(app.extensions["database"].session_factory, str(app.config["INDEX_DIR"]))
