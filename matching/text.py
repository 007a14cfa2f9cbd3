"""The document text of an opportunity: one function read by both the keyword and the semantic index."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import AssistanceListing, CviProgram, Opportunity
from crawlers.codes import APPLICANT_TYPES, FUNDING_CATEGORIES

#: Category names as document text reads them (the Grants.gov labels without their CFDA asides).
CATEGORY_NAMES = {code: label.split(" (see")[0] for code, label in FUNDING_CATEGORIES.items()}

#: Grants.gov eligible applicant codes.
APPLICANT_CODE_NAMES = {code: label.replace('"', "'") for code, label in APPLICANT_TYPES.items()}

#: Words per passage: all-MiniLM-L6-v2 reads 256 word pieces; English runs ~1.3 pieces a word.
PASSAGE_WORDS = 160
PASSAGE_OVERLAP = 20


class ProgramRef(NamedTuple):
    """A curated CVI program as matching refers to it."""

    slug: str
    name: str
    aln: str
    listing_title: str
    activities: tuple[str, ...] = ()
    eligible_applicants: str = ""
    how_cvi_fits: str = ""


@dataclass(frozen=True)
class DocumentFields:
    """An opportunity's searchable text, by field (the keyword index boosts them differently)."""

    title: str
    body: str
    agency: str
    programs: str
    eligibility: str
    categories: str

    def text(self) -> str:
        parts = [
            self.title.rstrip(".") + ".",
            self.agency,
            self.body,
            self.programs,
            self.eligibility,
            self.categories,
        ]
        return "\n".join(p for p in parts if p)


def load_programs_by_aln(session: Session) -> dict[str, ProgramRef]:
    """Every assistance listing linked to a curated CVI program."""
    rows = session.execute(
        select(
            AssistanceListing.number,
            AssistanceListing.title,
            CviProgram.slug,
            CviProgram.name,
            CviProgram.activities,
            CviProgram.eligible_applicants,
            CviProgram.how_cvi_fits,
        ).join(CviProgram, AssistanceListing.cvi_program_id == CviProgram.id)
    ).all()
    return {
        number: ProgramRef(slug, name, number, title, tuple(activities or ()), applicants or "", fits or "")
        for number, title, slug, name, activities, applicants, fits in rows
    }


def program_for(aln: str, programs_by_aln: Mapping[str, ProgramRef]) -> ProgramRef | None:
    """The catalogue program of an ALN; ``84.215J`` falls back to ``84.215`` and vice versa."""
    code = aln.strip().upper()
    if code in programs_by_aln:
        return programs_by_aln[code]
    base = re.match(r"^\d{2}\.\d{3}", code)
    if base and base.group(0) in programs_by_aln:
        return programs_by_aln[base.group(0)]
    return None


def document_fields(opportunity: Opportunity, programs_by_aln: Mapping[str, ProgramRef]) -> DocumentFields:
    agency = " ".join(
        p for p in (opportunity.department, opportunity.sub_agency, opportunity.agency_name) if p
    )
    programs = []
    for aln in opportunity.aln or []:
        ref = program_for(aln, programs_by_aln)
        if ref is None:
            programs.append(f"Assistance listing {aln}")
            continue
        line = f"Assistance listing {aln}: {ref.name} ({ref.listing_title})"
        if ref.activities:
            line += f", which can fund {', '.join(ref.activities)}"
        if ref.how_cvi_fits:
            line += f". {ref.how_cvi_fits}"
        programs.append(line)
    eligibility = [APPLICANT_CODE_NAMES.get(c, "") for c in opportunity.eligibility_codes or []]
    if opportunity.eligible_applicants:
        eligibility.append(opportunity.eligible_applicants)
    categories = [CATEGORY_NAMES.get(c, c) for c in opportunity.categories or []]
    return DocumentFields(
        title=_squash(opportunity.title),
        body=_squash(opportunity.description or ""),
        agency=agency,
        programs="; ".join(programs),
        eligibility=_squash("; ".join(e for e in eligibility if e)),
        categories="; ".join(categories),
    )


def document_text(opportunity: Opportunity, programs_by_aln: Mapping[str, ProgramRef]) -> str:
    """Title, agency, description, assistance listings (with catalogue program names), eligible
    applicants and categories, as one text."""
    return document_fields(opportunity, programs_by_aln).text()


_SENTENCE = re.compile(r"(?<=[.!?;])\s+(?=[A-Z0-9(\"'])|\n+")


def sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE.split(text) if s and s.strip()]


def passages(text: str, max_words: int = PASSAGE_WORDS, overlap: int = PASSAGE_OVERLAP) -> list[str]:
    """Split a long text into passages the model reads whole (≤ 256 word pieces), on sentence
    boundaries where it can; a sentence longer than a passage is cut by words with some overlap."""
    text = text.strip()
    if not text:
        return []
    chunks: list[str] = []
    current: list[str] = []
    for sentence in sentences(text):
        words = sentence.split()
        while len(words) > max_words:
            if current:
                chunks.append(" ".join(current))
                current = []
            chunks.append(" ".join(words[:max_words]))
            words = words[max_words - overlap :]
        if len(current) + len(words) > max_words and current:
            chunks.append(" ".join(current))
            current = []
        current.extend(words)
    if current:
        chunks.append(" ".join(current))
    return chunks


def text_hash(text: str, model: str) -> str:
    return hashlib.sha256(f"{model}\n{text}".encode()).hexdigest()


def _squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()
