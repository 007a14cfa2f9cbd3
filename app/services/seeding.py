"""Load the seed catalogue: CVI programs, the demo opportunities and sample program profiles.

Idempotent: programs and profiles are keyed by slug / id, opportunities go through upsert.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import AssistanceListing, CviProgram, OrgType, ProgramProfile
from app.services.transfer import ImportReport, import_lines

SEEDS_DIR = Path(__file__).resolve().parents[2] / "seeds"


@dataclass
class SeedReport:
    programs: int
    assistance_listings: int
    profiles: int
    opportunities: ImportReport


def load_cvi_programs(session: Session, path: Path) -> tuple[int, int]:
    """Create or update each curated program and link its assistance listings to it."""
    entries: list[dict[str, Any]] = json.loads(path.read_text())
    listings = 0
    for entry in entries:
        program = session.scalar(select(CviProgram).where(CviProgram.slug == entry["slug"]))
        if program is None:
            program = CviProgram(slug=entry["slug"])
            session.add(program)
        program.name = entry["name"]
        program.department = entry["department"]
        program.sub_agency = entry.get("sub_agency")
        program.summary = entry["summary"]
        program.activities = list(entry["activities"])
        program.eligible_applicants = entry["eligible_applicants"]
        program.how_cvi_fits = entry.get("how_cvi_fits", "")
        program.source_url = entry["source_url"]
        program.last_verified = dt.date.fromisoformat(entry["last_verified"])
        session.flush()
        for item in entry["assistance_listings"]:
            listing = session.scalar(
                select(AssistanceListing).where(AssistanceListing.number == item["number"])
            )
            if listing is None:
                listing = AssistanceListing(number=item["number"])
                session.add(listing)
            listing.title = item["title"]
            listing.department = entry["department"]
            listing.cvi_program_id = program.id
            listings += 1
    session.flush()
    return len(entries), listings


def load_profiles(session: Session, path: Path) -> int:
    """Sample program profiles (not owned by any organization) keyed by their contract id."""
    count = 0
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        data = json.loads(line)
        profile = session.scalar(
            select(ProgramProfile).where(
                ProgramProfile.external_id == data["id"], ProgramProfile.is_sample.is_(True)
            )
        )
        if profile is None:
            profile = ProgramProfile(external_id=data["id"], is_sample=True)
            session.add(profile)
        profile.name = data["name"]
        profile.org_type = OrgType(data["org_type"])
        profile.city = data.get("city")
        profile.state = data.get("state")
        profile.program_description = data["program_description"]
        profile.focus_areas = list(data.get("focus_areas") or [])
        profile.populations = list(data.get("populations") or [])
        profile.funding_need = data.get("funding_need")
        profile.budget_range = data.get("budget_range")
        count += 1
    session.flush()
    return count


def seed(session: Session, seeds_dir: Path = SEEDS_DIR) -> SeedReport:
    """Load every seed file; safe to run again."""
    programs, listings = load_cvi_programs(session, seeds_dir / "cvi_programs.json")
    profiles = load_profiles(session, seeds_dir / "profiles.jsonl")
    session.commit()
    with (seeds_dir / "opportunities.jsonl").open(encoding="utf-8") as stream:
        report = import_lines(session, stream, default_source="seed")
    return SeedReport(programs, listings, profiles, report)
