"""Curate opportunities: CVI decisions, tags, flags, field corrections, merges and hand-added records.

Every edit writes a ``curations`` row (who, when, action, field, old → new, note). A corrected field
is added to ``curated_fields``, which ``services.opportunities.upsert_many`` never overwrites, so
curation survives every later crawl.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.orm import Session

from app.db import utcnow
from app.models import (
    Curation,
    CurationAction,
    MatchDismissal,
    Opportunity,
    OpportunityCode,
    OpportunityStatus,
    OpportunityVersion,
    TrackedOpportunity,
    User,
)
from app.services import cvi_scoring
from app.services.opportunities import CHANGED_KEY, upsert_many
from app.services.paging import Paged, paged
from crawlers.normalize import NormalizedOpportunity

log = logging.getLogger(__name__)

ALN_PATTERN = re.compile(r"^\d{2}\.\d{3}[A-Z]?$")
MAX_TAGS = 20
MAX_TAG_LENGTH = 60
MANUAL_SOURCE = "manual"


class CurationError(ValueError):
    """An edit that cannot be made, with a message for the admin."""


@dataclass(frozen=True)
class FieldSpec:
    """How a correctable field is entered and checked."""

    label: str
    kind: str  # text | longtext | date | int | url | status | aln
    max_length: int | None = None


#: The fields an admin may correct, by store column.
EDITABLE_FIELDS: dict[str, FieldSpec] = {
    "title": FieldSpec("Title", "text", 1000),
    "number": FieldSpec("Opportunity number", "text", 200),
    "status": FieldSpec("Status", "status"),
    "post_date": FieldSpec("Post date", "date"),
    "close_date": FieldSpec("Close date", "date"),
    "close_date_note": FieldSpec("Close date note", "longtext"),
    "second_close_date": FieldSpec("Second close date", "date"),
    "second_close_date_label": FieldSpec("Second close date label", "text", 200),
    "award_floor": FieldSpec("Award floor ($)", "int"),
    "award_ceiling": FieldSpec("Award ceiling ($)", "int"),
    "total_funding": FieldSpec("Total funding ($)", "int"),
    "expected_awards": FieldSpec("Expected awards", "int"),
    "description": FieldSpec("Description", "longtext"),
    "eligible_applicants": FieldSpec("Eligibility text", "longtext"),
    "aln": FieldSpec("Assistance listings (comma separated)", "aln"),
    "url": FieldSpec("Listing URL", "url", 1000),
    "agency_url": FieldSpec("Agency URL", "url", 1000),
    "contact": FieldSpec("Contact", "longtext"),
}


def _clean_note(note: str | None) -> str | None:
    note = (note or "").strip()
    return note[:4000] or None


def parse_field_value(field: str, raw: str | None) -> Any:
    """Turn form text into the column's value; an empty entry clears an optional field."""
    spec = EDITABLE_FIELDS.get(field)
    if spec is None:
        raise CurationError(f"'{field}' is not a field admins can correct")
    text = (raw or "").strip()
    if spec.kind == "aln":
        numbers = [part.strip().upper() for part in re.split(r"[,\s]+", text) if part.strip()]
        for number in numbers:
            if not ALN_PATTERN.match(number):
                raise CurationError(f"'{number}' is not an assistance listing number like 16.045")
        return list(dict.fromkeys(numbers))
    if not text:
        if field in ("title", "description", "status"):
            raise CurationError(f"{spec.label} cannot be empty")
        return None
    if spec.max_length and len(text) > spec.max_length:
        raise CurationError(f"{spec.label} is longer than {spec.max_length} characters")
    if spec.kind == "date":
        try:
            return dt.date.fromisoformat(text)
        except ValueError:
            raise CurationError(f"{spec.label} must be a date like 2026-12-15") from None
    if spec.kind == "int":
        digits = text.replace(",", "").replace("$", "").strip()
        if not digits.isdigit():
            raise CurationError(f"{spec.label} must be a whole, non-negative number") from None
        value = int(digits)
        if value > 10**15:
            raise CurationError(f"{spec.label} is too large")
        return value
    if spec.kind == "url":
        if not re.match(r"^https?://[^\s/]+", text):
            raise CurationError(f"{spec.label} must start with http:// or https://")
        return text
    if spec.kind == "status":
        try:
            return OpportunityStatus(text.lower())
        except ValueError:
            raise CurationError("status must be forecasted, posted, closed or archived") from None
    return text


def _json(value: Any) -> Any:
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, OpportunityStatus):
        return str(value)
    if isinstance(value, list | tuple):
        return list(value)
    return value


def _audit(
    session: Session,
    opportunity: Opportunity,
    user: User,
    action: CurationAction,
    *,
    field: str | None = None,
    old: Any = None,
    new: Any = None,
    note: str | None = None,
) -> Curation:
    entry = Curation(
        opportunity_id=opportunity.id,
        user_id=user.id,
        action=action,
        field=field,
        old_value=_json(old),
        new_value=_json(new),
        note=_clean_note(note),
        created_at=utcnow(),
    )
    session.add(entry)
    session.info.setdefault(CHANGED_KEY, set()).add(opportunity.id)
    log.info(
        "opportunity curated",
        extra={"opportunity_id": opportunity.id, "user_id": user.id, "action": str(action), "field": field},
    )
    return entry


def get_opportunity(session: Session, opportunity_id: int) -> Opportunity | None:
    return session.get(Opportunity, opportunity_id)


def set_cvi(session: Session, opportunity: Opportunity, user: User, eligible: bool, note: str | None) -> None:
    """Confirm (``True``) or reject (``False``) CVI eligibility; the decision wins over the classifier."""
    old = opportunity.cvi_override
    opportunity.cvi_override = eligible
    opportunity.cvi_eligible = eligible
    opportunity.reviewed_by_id = user.id
    opportunity.reviewed_at = utcnow()
    action = CurationAction.CONFIRM_CVI if eligible else CurationAction.REJECT_CVI
    _audit(session, opportunity, user, action, field="cvi_override", old=old, new=eligible, note=note)


def clear_cvi(session: Session, opportunity: Opportunity, user: User, note: str | None) -> None:
    """Drop the admin decision: the classifier's verdict applies again."""
    if opportunity.cvi_override is None:
        raise CurationError("this opportunity has no CVI decision to clear")
    old = opportunity.cvi_override
    opportunity.cvi_override = None
    opportunity.cvi_eligible = bool(opportunity.cvi_classified)
    opportunity.reviewed_by_id = None
    opportunity.reviewed_at = None
    _audit(session, opportunity, user, CurationAction.CLEAR_CVI, field="cvi_override", old=old, note=note)


def parse_tags(raw: str | None) -> list[str]:
    """Comma-separated focus-area tags, trimmed, lower-cased and de-duplicated."""
    tags = [" ".join(t.split()).lower() for t in (raw or "").split(",")]
    tags = list(dict.fromkeys(t for t in tags if t))
    if len(tags) > MAX_TAGS:
        raise CurationError(f"at most {MAX_TAGS} focus-area tags")
    for tag in tags:
        if len(tag) > MAX_TAG_LENGTH:
            raise CurationError(f"the tag '{tag[:20]}…' is longer than {MAX_TAG_LENGTH} characters")
    return tags


def set_tags(
    session: Session, opportunity: Opportunity, user: User, tags: list[str], note: str | None
) -> None:
    old = list(opportunity.focus_tags or [])
    if old == tags:
        raise CurationError("the focus-area tags are unchanged")
    opportunity.focus_tags = tags
    _audit(
        session, opportunity, user, CurationAction.SET_TAGS, field="focus_tags", old=old, new=tags, note=note
    )


def set_featured(
    session: Session, opportunity: Opportunity, user: User, featured: bool, note: str | None
) -> None:
    old = opportunity.featured
    opportunity.featured = featured
    _audit(
        session, opportunity, user, CurationAction.FEATURE, field="featured", old=old, new=featured, note=note
    )


def set_hidden(
    session: Session, opportunity: Opportunity, user: User, hidden: bool, note: str | None
) -> None:
    old = opportunity.hidden
    opportunity.hidden = hidden
    _audit(session, opportunity, user, CurationAction.HIDE, field="hidden", old=old, new=hidden, note=note)


def _replace_aln_codes(session: Session, opportunity: Opportunity, numbers: list[str]) -> None:
    session.execute(
        delete(OpportunityCode).where(
            OpportunityCode.opportunity_id == opportunity.id, OpportunityCode.kind == "aln"
        )
    )
    if numbers:
        session.execute(
            insert(OpportunityCode),
            [{"opportunity_id": opportunity.id, "kind": "aln", "code": n} for n in numbers],
        )


def correct_field(
    session: Session, opportunity: Opportunity, user: User, field: str, raw: str | None, note: str | None
) -> None:
    """Set a field and mark it curated, so no later crawl overwrites it."""
    value = parse_field_value(field, raw)
    old = getattr(opportunity, field)
    if _json(old) == _json(value):
        raise CurationError(f"{EDITABLE_FIELDS[field].label} already has that value")
    setattr(opportunity, field, value)
    curated = list(opportunity.curated_fields or [])
    added = [field]
    if field == "description" and opportunity.description_html is not None:
        # The source's HTML would otherwise be shown instead of the corrected text.
        opportunity.description_html = None
        added.append("description_html")
    opportunity.curated_fields = curated + [name for name in added if name not in curated]
    opportunity.updated_at = utcnow()
    _audit(session, opportunity, user, CurationAction.SET_FIELD, field=field, old=old, new=value, note=note)
    if field == "aln":
        _replace_aln_codes(session, opportunity, value)
        session.flush()
        cvi_scoring.rescore(session, [opportunity.id])


def release_field(
    session: Session, opportunity: Opportunity, user: User, field: str, note: str | None
) -> None:
    """Let crawls update a corrected field again (its current value stays until the next change)."""
    curated = list(opportunity.curated_fields or [])
    if field not in curated:
        raise CurationError(f"'{field}' is not a curated field of this opportunity")
    released = [
        name
        for name in curated
        if name != field and not (field == "description" and name == "description_html")
    ]
    opportunity.curated_fields = released
    _audit(
        session,
        opportunity,
        user,
        CurationAction.SET_FIELD,
        field="curated_fields",
        old=curated,
        new=released,
        note=note,
    )


def merge(
    session: Session, duplicate: Opportunity, target: Opportunity, user: User, note: str | None
) -> None:
    """Merge ``duplicate`` into ``target``: the duplicate redirects, both keep their version history.

    Tracking, "not a fit" dismissals and curations move to the target where the target has none
    for the same organization or profile; the rest stay on the duplicate, so nothing is lost.
    """
    if duplicate.id == target.id:
        raise CurationError("an opportunity cannot be merged into itself")
    if target.merged_into_id is not None:
        raise CurationError(
            f"#{target.id} was itself merged into #{target.merged_into_id}; merge into that one"
        )
    if duplicate.merged_into_id is not None:
        raise CurationError(f"#{duplicate.id} is already merged into #{duplicate.merged_into_id}")
    tracked_orgs = select(TrackedOpportunity.organization_id).where(
        TrackedOpportunity.opportunity_id == target.id
    )
    session.execute(
        update(TrackedOpportunity)
        .where(
            TrackedOpportunity.opportunity_id == duplicate.id,
            TrackedOpportunity.organization_id.not_in(tracked_orgs),
        )
        .values(opportunity_id=target.id)
        .execution_options(synchronize_session=False)
    )
    dismissed_profiles = select(MatchDismissal.profile_id).where(MatchDismissal.opportunity_id == target.id)
    session.execute(
        update(MatchDismissal)
        .where(
            MatchDismissal.opportunity_id == duplicate.id,
            MatchDismissal.profile_id.not_in(dismissed_profiles),
        )
        .values(opportunity_id=target.id)
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(Curation)
        .where(Curation.opportunity_id == duplicate.id)
        .values(opportunity_id=target.id)
        .execution_options(synchronize_session=False)
    )
    # Records that merged into the duplicate earlier now point at the target (no chains).
    session.execute(
        update(Opportunity)
        .where(Opportunity.merged_into_id == duplicate.id)
        .values(merged_into_id=target.id)
        .execution_options(synchronize_session=False)
    )
    duplicate.merged_into_id = target.id
    _audit(
        session,
        duplicate,
        user,
        CurationAction.MERGE,
        field="merged_into_id",
        old=None,
        new=target.id,
        note=note,
    )
    _audit(
        session,
        target,
        user,
        CurationAction.MERGE,
        field="merged_from",
        old=None,
        new=duplicate.id,
        note=note,
    )
    session.flush()
    session.expire_all()


def merged_ids(session: Session, opportunity: Opportunity) -> list[int]:
    """Ids of records merged into this one."""
    return list(session.scalars(select(Opportunity.id).where(Opportunity.merged_into_id == opportunity.id)))


def history(session: Session, opportunity: Opportunity) -> list[OpportunityVersion]:
    """Version rows of the opportunity and of every record merged into it, newest first."""
    ids = [opportunity.id, *merged_ids(session, opportunity)]
    query = (
        select(OpportunityVersion)
        .where(OpportunityVersion.opportunity_id.in_(ids))
        .order_by(OpportunityVersion.changed_at.desc(), OpportunityVersion.id.desc())
    )
    return list(session.scalars(query))


def curations_of(session: Session, opportunity: Opportunity) -> list[Curation]:
    query = (
        select(Curation)
        .where(Curation.opportunity_id == opportunity.id)
        .order_by(Curation.created_at.desc(), Curation.id.desc())
    )
    return list(session.scalars(query))


def create_manual(session: Session, user: User, data: dict[str, Any], note: str | None) -> Opportunity:
    """Add an opportunity no crawler finds (a state pass-through, a Medicaid guidance, a foundation partner).

    It enters through ``upsert_many`` like every record, with source ``manual``; every field the
    admin gave is curated. ``cvi`` in ``data`` (True/False/None) records a CVI decision too.
    """
    fields = {k: v for k, v in data.items() if v not in (None, "", [])}
    cvi = fields.pop("cvi", None)
    fields["source"] = MANUAL_SOURCE
    fields["id"] = f"manual-{utcnow():%Y%m%d}-{secrets.token_hex(4)}"
    try:
        record = NormalizedOpportunity.model_validate(fields)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise CurationError(f"the opportunity is not valid: {problems}") from None
    for number in record.aln:
        if not ALN_PATTERN.match(number):
            raise CurationError(f"'{number}' is not an assistance listing number like 16.045")
    result = upsert_many(session, [record])
    opportunity = session.get(Opportunity, result.new_ids[0])
    assert opportunity is not None
    column = {"agency": "department"}
    opportunity.curated_fields = sorted(column.get(k, k) for k in fields if k not in ("id", "source"))
    _audit(session, opportunity, user, CurationAction.CREATE, new=record.content(), note=note)
    session.flush()
    cvi_scoring.rescore(session, [opportunity.id])
    if cvi is not None:
        set_cvi(session, opportunity, user, bool(cvi), note)
    return opportunity


def search_opportunities(
    session: Session,
    *,
    q: str = "",
    show: str = "all",
    source: str = "",
    page: int = 1,
    per_page: int = 25,
) -> Paged[Opportunity]:
    """The admin's list: every record (hidden and merged too), filtered by text and state."""
    query = select(Opportunity)
    q = q.strip()
    if q:
        if q.lstrip("#").isdigit():
            query = query.where(Opportunity.id == int(q.lstrip("#")))
        else:
            like = f"%{q.lower()}%"
            query = query.where(
                or_(
                    Opportunity.title.ilike(like),
                    Opportunity.number.ilike(like),
                    Opportunity.source_id.ilike(like),
                )
            )
    filters = {
        "hidden": Opportunity.hidden.is_(True),
        "featured": Opportunity.featured.is_(True),
        "merged": Opportunity.merged_into_id.is_not(None),
        "reviewed": Opportunity.cvi_override.is_not(None),
        "cvi": Opportunity.cvi_eligible.is_(True),
        "curated": Opportunity.reviewed_at.is_not(None)
        | (Opportunity.id.in_(select(Curation.opportunity_id))),
        "manual": Opportunity.source == MANUAL_SOURCE,
    }
    if show in filters:
        query = query.where(filters[show])
    if source:
        query = query.where(Opportunity.source == source)
    query = query.order_by(Opportunity.first_seen.desc(), Opportunity.id.desc())
    return paged(session, query, page, per_page)


def audit_log(
    session: Session,
    *,
    opportunity_id: int | None = None,
    user_id: int | None = None,
    cvi_program_id: int | None = None,
    page: int = 1,
    per_page: int = 50,
) -> Paged[Curation]:
    """Every audited catalogue edit, newest first, optionally for one opportunity, admin or program."""
    query = select(Curation)
    if opportunity_id is not None:
        query = query.where(Curation.opportunity_id == opportunity_id)
    if user_id is not None:
        query = query.where(Curation.user_id == user_id)
    if cvi_program_id is not None:
        query = query.where(Curation.cvi_program_id == cvi_program_id)
    query = query.order_by(Curation.created_at.desc(), Curation.id.desc())
    return paged(session, query, page, per_page)


#: Form fields of a hand-added opportunity that are plain text in the contract.
MANUAL_TEXT_FIELDS = ("agency", "sub_agency", "agency_name")


def manual_fields(form: Mapping[str, str]) -> dict[str, Any]:
    """Read the "add an opportunity" form into contract fields, with the same checks as corrections."""
    data: dict[str, Any] = {}
    for name in MANUAL_TEXT_FIELDS:
        value = (form.get(name) or "").strip()
        if len(value) > 200:
            raise CurationError(f"{name} is longer than 200 characters")
        data[name] = value or None
    if not data["agency"]:
        raise CurationError("the department (DOJ, DOL, ED, HHS, a state, a foundation …) is required")
    for name in EDITABLE_FIELDS:
        if name in form:
            data[name] = parse_field_value(name, form.get(name))
        elif name in ("title", "description"):
            raise CurationError(f"{EDITABLE_FIELDS[name].label} is required")
    if data.get("status") is not None:
        data["status"] = str(data["status"])
    decision = (form.get("cvi") or "").strip()
    data["cvi"] = {"confirm": True, "reject": False}.get(decision)
    return data
