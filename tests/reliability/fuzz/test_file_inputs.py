"""Files people hand the product, mutated: ``import-opportunities`` JSON lines, the evaluation's
profile and qrels files, and the matcher's program profile.

Contracts: an import reports each bad line with its number and a message and stores every good line
(on PostgreSQL too, where the store is stricter than SQLite); the evaluation names ``file:line`` and
exits; a profile is either valid or refused with ``MatchingError`` saying which field and why.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import Opportunity
from app.services import transfer
from matching import evaluate
from matching.profile import MatchingError, ProfileInput
from tests.reliability.fuzz.mutations import HOSTILE_TEXT, JSON_VALUES, mutated_bytes, mutated_json

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
ROOT = FIXTURES.parents[1]
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "60"))
FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)
IMPORT_LINES = (FIXTURES / "import_mixed.jsonl").read_bytes().splitlines()
PROFILE_LINES = (FIXTURES / "matching" / "profiles.jsonl").read_bytes().splitlines()
GOOD_PROFILE = json.loads(PROFILE_LINES[0])


@st.composite
def damaged_jsonl(draw: st.DrawFn, lines: list[bytes]) -> bytes:
    """The file with some lines mutated (structurally or as bytes), dropped, repeated or blanked."""
    out = []
    for line in lines:
        kind = draw(st.sampled_from(["keep", "keep", "json", "bytes", "drop", "twice", "blank"]))
        if kind == "json" and line.strip():
            out.append(draw(mutated_json(line)))
        elif kind == "bytes":
            out.append(draw(mutated_bytes(line)).replace(b"\n", b" "))
        elif kind == "twice":
            out += [line, line]
        elif kind == "blank":
            out.append(b"   ")
        elif kind == "keep":
            out.append(line)
    return b"\n".join(out) + b"\n"


def import_text(session: Session, text: str) -> transfer.ImportReport:
    """What ``flask import-opportunities`` does with a file (read with errors replaced)."""
    return transfer.import_lines(session, io.StringIO(text, newline=None), default_source="fuzz")


@FUZZ
@given(raw=damaged_jsonl(IMPORT_LINES))
@example(raw=b'{"id": "s", "title": "Lone \\ud800 surrogate", "agency": "DOJ", "description": "x"}\n')
@example(raw=b'{"id": "n", "title": "T", "agency": "DOJ", "description": "", "award_floor": 1e400}\n')
@example(
    raw=b'{"id": "v", "title": "T", "agency": "DOJ", "description": "", "version": "' + b"9" * 50 + b'"}\n'
)
def test_import_reports_bad_lines_and_stores_the_rest(app: Flask, session: Session, raw: bytes) -> None:
    text = raw.decode("utf-8", errors="replace")
    good = set()  # a record repeated in the file is stored (and counted) once
    for line in text.splitlines():
        if line.strip():
            try:
                record = transfer.parse_line(line, "fuzz")
            except ValueError:
                continue
            good.add((record.source, record.id))
    before = session.scalar(select(func.count()).select_from(Opportunity))
    report = import_text(session, text)
    assert report.result.new + report.result.updated + report.result.unchanged == len(good)
    assert all(error.line >= 1 and error.message.strip() for error in report.errors)
    after = session.scalar(select(func.count()).select_from(Opportunity))
    assert (after or 0) >= (before or 0), "an import never loses stored opportunities"


@st.composite
def profile_data(draw: st.DrawFn) -> Any:
    """A real profile with fields deleted, swapped for other types or hostile text, or no object at all."""
    if draw(st.integers(0, 9)) == 0:
        return draw(JSON_VALUES)
    data = dict(GOOD_PROFILE)
    for _ in range(draw(st.integers(1, 4))):
        name = draw(st.sampled_from([*GOOD_PROFILE, "org_type", "unknown_field"]))
        kind = draw(st.sampled_from(["delete", "json", "text", "list"]))
        if kind == "delete":
            data.pop(name, None)
        elif kind == "json":
            data[name] = draw(JSON_VALUES)
        elif kind == "text":
            data[name] = draw(HOSTILE_TEXT)
        else:
            data[name] = draw(st.lists(HOSTILE_TEXT, max_size=40))
    return data


@FUZZ
@given(data=profile_data())
@example(data={**GOOD_PROFILE, "program_description": ""})
@example(data={**GOOD_PROFILE, "program_description": "word " * 3000})
@example(data={**GOOD_PROFILE, "program_description": 'AND( OR ") : * ~ ^'})
@example(data={**GOOD_PROFILE, "org_type": "space agency"})
@example(data={**GOOD_PROFILE, "org_type": ["nonprofit"]})
@example(data={**GOOD_PROFILE, "focus_areas": {"a": 1}})
@example(data={**GOOD_PROFILE, "funding_need": 12})
def test_a_profile_is_valid_or_refused_with_a_message(data: Any) -> None:
    try:
        profile = ProfileInput.parse(data)
    except MatchingError as exc:
        assert str(exc).strip(), "a refusal must say why"
        return
    assert len(profile.query_text().split()) >= 3


def test_profile_refusals_name_the_field() -> None:
    cases = {
        "org_type": {**GOOD_PROFILE, "org_type": "space agency"},
        "program_description": {**GOOD_PROFILE, "program_description": "!!! ??? ..."},
        "focus_areas": {**GOOD_PROFILE, "focus_areas": ["x" * 500]},
    }
    for field_name, data in cases.items():
        with pytest.raises(MatchingError, match=field_name):
            ProfileInput.parse(data)
    with pytest.raises(MatchingError, match="JSON object"):
        ProfileInput.parse(["not", "an", "object"])


@FUZZ
@given(raw=damaged_jsonl(PROFILE_LINES))
@example(raw=b'["not an object"]\n')
@example(raw=b"\xff\xfe{}\n")
def test_evaluation_profiles_file_is_read_or_refused_with_its_line(
    raw: bytes, tmp_path_factory: pytest.TempPathFactory
) -> None:
    path = tmp_path_factory.getbasetemp() / "profiles.jsonl"
    path.write_bytes(raw)
    try:
        profiles = evaluate.read_profiles(path)
    except SystemExit as exc:
        assert str(exc.code).startswith(f"{path}:"), exc.code
        return
    assert all(isinstance(p, dict) for p in profiles)


QRELS = (ROOT / "seeds" / "eval" / "qrels.tsv").read_bytes()[:4000]


@FUZZ
@given(raw=mutated_bytes(QRELS))
@example(raw=b"profile_id\topp_id\tgrade\tnote\np-1\to-1\thigh\tnot a number\n")
def test_evaluation_qrels_file_is_read_or_refused_with_its_line(
    raw: bytes, tmp_path_factory: pytest.TempPathFactory
) -> None:
    path = tmp_path_factory.getbasetemp() / "qrels.tsv"
    path.write_bytes(raw)
    try:
        qrels = evaluate.read_qrels(path)
    except SystemExit as exc:
        assert str(exc.code).startswith(f"{path}"), exc.code
        return
    assert all(isinstance(g, int) for grades in qrels.values() for g in grades.values())
