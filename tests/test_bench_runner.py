"""``python -m bench``: a wrong benchmark name is a clear message, never a traceback."""

from __future__ import annotations

import pytest

from bench.__main__ import main


def test_help_lists_the_benchmarks(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "usage: python -m bench" in out and "ingest" in out and "matching" in out


def test_an_unknown_name_is_refused_before_anything_runs(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["matching", "ingset"]) == 2
    captured = capsys.readouterr()
    assert "unknown benchmark: ingset" in captured.err and "choose from" in captured.err
    assert "=== bench" not in captured.out  # not even the valid name ran
