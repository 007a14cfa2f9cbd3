"""Edit the CVI program catalogue: programs and the assistance listings (ALNs) that drive CVI eligibility.

Each edit is audited in ``curations`` (with ``cvi_program_id``) and the opportunities carrying the
program's ALNs are re-scored right away, so the catalogue and the classifier never disagree for long.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Collection, Mapping
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.db import utcnow
from app.models import AssistanceListing, Curation, CurationAction, CviProgram, OpportunityCode, User
from app.services import cvi_scoring
from app.services.curation import ALN_PATTERN, CurationError

log = logging.getLogger(__name__)

SLUG_PATTERN = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


class CatalogueError(CurationError):
    """A catalogue edit that cannot be made, with a message for the admin."""


#: Program fields on the edit form: name → (label, required, max length).
PROGRAM_FIELDS: dict[str, tuple[str, bool, int | None]] = {
    "slug": ("Slug", True, 120),
    "name": ("Name", True, 300),
    "department": ("Department", True, 40),
    "sub_agency": ("Sub-agency", False, 120),
    "summary": ("Summary", True, None),
    "activities": ("CVI activities it funds (one per line)", False, None),
    "eligible_applicants": ("Eligible applicants", True, None),
    "how_cvi_fits": ("How CVI fits", False, None),
    "source_url": ("Source URL", True, 500),
    "last_verified": ("Last verified (YYYY-MM-DD)", True, None),
}


def programs(session: Session) -> list[tuple[CviProgram, int]]:
    """Every program with its number of assistance listings, by department and name."""
    counts = (
        select(AssistanceListing.cvi_program_id, func.count().label("n"))
        .group_by(AssistanceListing.cvi_program_id)
        .subquery()
    )
    query = (
        select(CviProgram, func.coalesce(counts.c.n, 0))
        .outerjoin(counts, counts.c.cvi_program_id == CviProgram.id)
        .order_by(CviProgram.department, CviProgram.name)
    )
    return [(program, int(n)) for program, n in session.execute(query).all()]


def get_program(session: Session, program_id: int) -> CviProgram | None:
    return session.get(CviProgram, program_id)


def parse_program(form: Mapping[str, str]) -> dict[str, Any]:
    """Check the program form; returns column values."""
    values: dict[str, Any] = {}
    for name, (label, required, max_length) in PROGRAM_FIELDS.items():
        text = (form.get(name) or "").strip()
        if required and not text:
            raise CatalogueError(f"{label} is required")
        if max_length and len(text) > max_length:
            raise CatalogueError(f"{label} is longer than {max_length} characters")
        values[name] = text
    if not SLUG_PATTERN.match(values["slug"]):
        raise CatalogueError("the slug takes lower-case letters, digits and hyphens, like byrne-jag")
    if not re.match(r"^https?://\S+$", values["source_url"]):
        raise CatalogueError("the source URL must start with http:// or https://")
    try:
        values["last_verified"] = dt.date.fromisoformat(values["last_verified"])
    except ValueError:
        raise CatalogueError("last verified must be a date like 2026-11-01") from None
    values["department"] = values["department"].upper()
    values["sub_agency"] = values["sub_agency"] or None
    values["activities"] = [line.strip() for line in values["activities"].splitlines() if line.strip()]
    return values


def _audit(
    session: Session,
    program: CviProgram,
    user: User,
    action: CurationAction,
    field: str | None,
    old: Any,
    new: Any,
    note: str | None,
) -> None:
    def plain(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: plain(item) for key, item in value.items()}
        return value.isoformat() if isinstance(value, dt.date) else value

    session.add(
        Curation(
            cvi_program_id=program.id,
            user_id=user.id,
            action=action,
            field=field,
            old_value=plain(old),
            new_value=plain(new),
            note=(note or "").strip()[:4000] or None,
            created_at=utcnow(),
        )
    )
    log.info(
        "cvi program edited",
        extra={"cvi_program_id": program.id, "user_id": user.id, "action": str(action), "field": field},
    )


def save_program(
    session: Session, user: User, program: CviProgram | None, form: Mapping[str, str], note: str | None
) -> CviProgram:
    """Create a program (``program`` is None) or update one; every changed field is audited."""
    values = parse_program(form)
    clash = session.scalar(select(CviProgram).where(CviProgram.slug == values["slug"]))
    if clash is not None and clash is not program:
        raise CatalogueError(f"the slug '{values['slug']}' is taken by “{clash.name}”")
    if program is None:
        program = CviProgram(**values)
        session.add(program)
        session.flush()
        _audit(session, program, user, CurationAction.CREATE, None, None, values, note)
        return program
    changed = False
    for name, value in values.items():
        old = getattr(program, name)
        if old != value:
            setattr(program, name, value)
            _audit(session, program, user, CurationAction.SET_FIELD, name, old, value, note)
            changed = True
    if not changed:
        raise CatalogueError("nothing changed")
    session.flush()
    rescore_program(session, program)
    return program


def _numbers(program: CviProgram) -> list[str]:
    return sorted(listing.number for listing in program.assistance_listings)


def affected_opportunities(session: Session, numbers: Collection[str]) -> list[int]:
    """Ids of opportunities that carry any of these assistance listing numbers."""
    if not numbers:
        return []
    query = select(OpportunityCode.opportunity_id).where(
        OpportunityCode.kind == "aln", OpportunityCode.code.in_(list(numbers))
    )
    return sorted(set(session.scalars(query)))


def rescore_program(session: Session, program: CviProgram, extra: Collection[str] = ()) -> int:
    ids = affected_opportunities(session, set(_numbers(program)) | set(extra))
    return cvi_scoring.rescore(session, ids)


def add_listing(
    session: Session, user: User, program: CviProgram, number: str, title: str, note: str | None
) -> int:
    """Attach an ALN to the program (an ALN belongs to one program); returns how many were re-scored."""
    number = number.strip().upper()
    title = " ".join(title.split())
    if not ALN_PATTERN.match(number):
        raise CatalogueError(f"'{number}' is not an assistance listing number like 16.045 or 93.243A")
    if len(title) > 500:
        raise CatalogueError("the listing title is longer than 500 characters")
    before = _numbers(program)
    listing = session.scalar(select(AssistanceListing).where(AssistanceListing.number == number))
    if listing is not None and listing.cvi_program_id == program.id:
        raise CatalogueError(f"{number} is already in this program")
    if listing is not None and listing.cvi_program_id is not None:
        owner = session.get(CviProgram, listing.cvi_program_id)
        raise CatalogueError(
            f"{number} belongs to “{owner.name if owner else listing.cvi_program_id}”; remove it there first"
        )
    if listing is None:
        if not title:
            raise CatalogueError(f"{number} is new to the catalogue: give its program title")
        listing = AssistanceListing(number=number, title=title, department=program.department)
        session.add(listing)
    elif title:
        listing.title = title
    listing.cvi_program = program
    session.flush()
    session.refresh(program)
    _audit(
        session,
        program,
        user,
        CurationAction.SET_FIELD,
        "assistance_listings",
        before,
        _numbers(program),
        note,
    )
    return rescore_program(session, program)


def remove_listing(session: Session, user: User, program: CviProgram, number: str, note: str | None) -> int:
    """Detach an ALN from the program (the listing itself stays in the store)."""
    before = _numbers(program)
    listing = next((item for item in program.assistance_listings if item.number == number), None)
    if listing is None:
        raise CatalogueError(f"{number} is not in this program")
    listing.cvi_program_id = None
    session.flush()
    session.refresh(program)
    _audit(
        session,
        program,
        user,
        CurationAction.SET_FIELD,
        "assistance_listings",
        before,
        _numbers(program),
        note,
    )
    return rescore_program(session, program, extra=[number])
