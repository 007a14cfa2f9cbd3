"""The JSON-lines contract: import with line-numbered errors, export in the contract format."""

from __future__ import annotations

import json
from pathlib import Path

from flask.testing import FlaskCliRunner
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import Opportunity
from tests.conftest import FIXTURES


def test_import_reports_bad_lines_and_loads_the_rest(cli: FlaskCliRunner, session: Session) -> None:
    result = cli.invoke(args=["import-opportunities", str(FIXTURES / "import_mixed.jsonl")])
    assert result.exit_code == 1, result.output
    assert "import_mixed.jsonl:2: skipped: not valid JSON" in result.output
    assert "import_mixed.jsonl:4: skipped: id: Field required" in result.output
    assert "import_mixed.jsonl:5: skipped: a line must be one JSON object" in result.output
    assert "import_mixed.jsonl:6: skipped: award_ceiling" in result.output
    assert "imported import_mixed.jsonl: 3 new, 0 updated, 0 unchanged, 4 skipped" in result.output
    ids = set(session.scalars(select(Opportunity.source_id)))
    assert ids == {"t-cvipi-2024", "t-reo-2025", "t-nasa"}


def test_import_keeps_unknown_fields_and_accepts_a_single_aln_string(
    cli: FlaskCliRunner, session: Session
) -> None:
    cli.invoke(args=["import-opportunities", str(FIXTURES / "import_mixed.jsonl")])
    reo = session.scalars(select(Opportunity).where(Opportunity.source_id == "t-reo-2025")).one()
    assert reo.aln == ["17.270"]
    assert reo.extra == {"program_contact_hours": "9-5 ET"}
    assert reo.source == "fixture"


def test_import_twice_changes_nothing(cli: FlaskCliRunner, session: Session) -> None:
    cli.invoke(args=["import-opportunities", str(FIXTURES / "import_mixed.jsonl")])
    again = cli.invoke(args=["import-opportunities", str(FIXTURES / "import_mixed.jsonl")])
    assert "0 new, 0 updated, 3 unchanged, 4 skipped" in again.output
    assert session.scalar(select(func.count()).select_from(Opportunity)) == 3


def test_clean_import_exits_zero(cli: FlaskCliRunner, tmp_path: Path) -> None:
    good = tmp_path / "good.jsonl"
    good.write_text(
        json.dumps({"id": "g1", "title": "Youth jobs", "agency": "dol", "description": "Summer jobs."})
        + "\n\n"
    )
    result = cli.invoke(args=["import-opportunities", str(good)])
    assert result.exit_code == 0, result.output
    assert "1 new" in result.output


def test_export_writes_the_contract_format(cli: FlaskCliRunner, tmp_path: Path) -> None:
    cli.invoke(args=["import-opportunities", str(FIXTURES / "import_mixed.jsonl")])
    out = tmp_path / "out.jsonl"
    result = cli.invoke(args=["export-opportunities", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "exported 3 opportunities" in result.output
    rows = {row["id"]: row for row in map(json.loads, out.read_text().splitlines())}
    cvipi = rows["t-cvipi-2024"]
    assert cvipi["number"] == "O-BJA-2024-172177"
    assert cvipi["close_date"] == "2024-05-09"
    assert cvipi["award_ceiling"] == 2000000
    assert cvipi["aln"] == ["16.045"]
    assert cvipi["agency"] == "DOJ"
    assert rows["t-reo-2025"]["program_contact_hours"] == "9-5 ET"
    # What was exported imports back unchanged.
    again = cli.invoke(args=["import-opportunities", "--source", "roundtrip", str(out)])
    assert "0 new, 0 updated, 3 unchanged" in again.output


def test_create_user_command(cli: FlaskCliRunner, session: Session) -> None:
    ok = cli.invoke(
        args=["create-user", "--email", "Ana@Example.org", "--password", "a-long-password", "--role", "admin"]
    )
    assert ok.exit_code == 0, ok.output
    assert "created admin ana@example.org" in ok.output
    dup = cli.invoke(args=["create-user", "--email", "ana@example.org", "--password", "a-long-password"])
    assert dup.exit_code != 0
    assert "already exists" in dup.output
    weak = cli.invoke(args=["create-user", "--email", "b@example.org", "--password", "short"])
    assert weak.exit_code != 0
    assert "at least 12 characters" in weak.output
