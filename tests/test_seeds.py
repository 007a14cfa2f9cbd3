"""The seed catalogue loads, and loading it again adds nothing."""

from __future__ import annotations

import json
from collections import Counter

from flask.testing import FlaskCliRunner
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import AssistanceListing, CviProgram, Opportunity, OpportunityVersion, ProgramProfile
from app.services.seeding import SEEDS_DIR


def counts(session: Session) -> tuple[int, ...]:
    return tuple(
        session.scalar(select(func.count()).select_from(model)) or 0
        for model in (CviProgram, AssistanceListing, ProgramProfile, Opportunity, OpportunityVersion)
    )


def test_seed_twice_creates_no_duplicates(cli: FlaskCliRunner, session: Session) -> None:
    first = cli.invoke(args=["seed"])
    assert first.exit_code == 0, first.output
    after_first = counts(session)
    programs, listings, profiles, opportunities, versions = after_first
    assert programs >= 30 and listings >= programs
    assert profiles >= 8
    assert opportunities >= 150
    assert versions == 0
    second = cli.invoke(args=["seed"])
    assert second.exit_code == 0, second.output
    assert f"0 new, 0 updated, {opportunities} unchanged, 0 skipped" in second.output
    assert counts(session) == after_first


def test_seed_catalogue_covers_the_four_departments_and_key_programs(
    cli: FlaskCliRunner, session: Session
) -> None:
    cli.invoke(args=["seed"])
    departments = Counter(session.scalars(select(Opportunity.department)))
    for department in ("DOJ", "DOL", "ED", "HHS"):
        assert departments[department] >= 15, departments
    assert sum(n for d, n in departments.items() if d not in ("DOJ", "DOL", "ED", "HHS")) >= 10
    numbers = set(session.scalars(select(AssistanceListing.number)))
    for aln in (
        "16.045",
        "16.738",
        "16.575",
        "16.582",
        "16.812",
        "17.270",
        "17.274",
        "17.259",
        "84.287",
        "93.136",
    ):
        assert aln in numbers, aln
    cvipi = session.scalar(
        select(CviProgram).join(AssistanceListing).where(AssistanceListing.number == "16.045")
    )
    assert cvipi is not None and "street outreach" in cvipi.activities
    assert cvipi.source_url.startswith("https://") and cvipi.last_verified.year >= 2025


def test_seed_files_follow_their_contracts() -> None:
    programs = json.loads((SEEDS_DIR / "cvi_programs.json").read_text())
    alns = [item["number"] for program in programs for item in program["assistance_listings"]]
    assert len(alns) == len(set(alns)), "an assistance listing belongs to one program"
    profiles = [json.loads(line) for line in (SEEDS_DIR / "profiles.jsonl").read_text().splitlines() if line]
    from app.models import OrgType

    assert {p["org_type"] for p in profiles} <= {t.value for t in OrgType}
    assert len({p["id"] for p in profiles}) == len(profiles)
