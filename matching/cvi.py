"""CVI eligibility: can this opportunity fund community violence intervention work?

Three kinds of evidence, each with a reason a reviewer can check:

* its assistance listing is in the curated ``cvi_programs`` catalogue (the reason names the program);
* its text is close to descriptions of CVI activities (sentence embeddings, when the opportunity's
  passages are embedded);
* keyword evidence: CVI phrases in its title and description, weighed against known traps
  (cybersecurity "intervention", "violence against women" formula money, research-only calls).

``score`` is in [0, 1]; ``eligible`` is ``score >= THRESHOLD``. The store keeps the classifier's
answer in ``cvi_classified`` and the effective flag in ``cvi_eligible`` = ``cvi_override`` when an
admin set one, else the classifier's.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import CviProgram, Opportunity
from matching.text import ProgramRef, load_programs_by_aln, program_for

log = logging.getLogger(__name__)

THRESHOLD = 0.5
ALN_WEIGHT = 0.45
STRONG_WEIGHT = 0.2
STRONG_CAP = 0.55
SUPPORT_WEIGHT = 0.07
SUPPORT_CAP = 0.21
SEMANTIC_CAP = 0.35
SEMANTIC_LOW, SEMANTIC_HIGH = 0.35, 0.65
RESEARCH_PENALTY = 0.1
#: All the evidence the classifier can find (catalogue, phrases, closeness). ``score`` stops at 1.0,
#: which a catalogue listing with one CVI phrase already reaches; ``evidence`` / ``MAX_EVIDENCE`` keeps
#: telling a listing that names violence interruption, GVI and HVIP from one CVI can merely use.
MAX_EVIDENCE = ALN_WEIGHT + STRONG_CAP + SUPPORT_CAP + SEMANTIC_CAP

#: Phrases that on their own say the money can pay for CVI work.
STRONG_TERMS: dict[str, str] = {
    "community violence intervention": r"community[- ]based violence (intervention|prevention)|"
    r"community violence (intervention|prevention|reduction)|\bCVI\b|\bCVIPI\b",
    "violence interruption": r"violence interrupt\w+|interrupt\w* violence|credible messengers?",
    "street outreach": r"street outreach",
    "hospital-based violence intervention": r"hospital[- ]based (violence|victim)|\bHVIPs?\b",
    "gun violence": r"\bgun violence|firearm (violence|injur\w+|homicide)|shootings?\b",
    "group violence intervention": r"group violence intervention|focused deterrence",
    "youth violence prevention": r"youth violence|violence (affecting|among) (young|youth)|"
    r"violent crime reduction|reduc\w+ violent crime",
    "gang violence": r"\bgang\w*\b",
    "homicide reduction": r"\bhomicides?\b",
}
#: Phrases that support a CVI reading but are common elsewhere too.
SUPPORT_TERMS: dict[str, str] = {
    "violence prevention": r"violence prevention|prevent\w* violence",
    "reentry": r"\bre-?entry\b|returning citizens|formerly incarcerated",
    "mentoring": r"\bmentor\w*",
    "trauma-informed care": r"\btrauma\b|trauma-informed",
    "victim services": r"victims? of (crime|violence)|victim services|crime victims?",
    "at-risk youth": r"at[- ]risk youth|opportunity youth|justice[- ]involved|juvenile justice|delinquen\w+",
    "conflict mediation": r"conflict (mediation|resolution)|de-?escalat\w+|retaliat\w+",
    "community safety": r"community safety|public safety|safer communities|neighborhood safety",
    "workforce for high-risk youth": r"transitional jobs|summer (jobs|employment)|youth employment",
}
#: Contexts where violence words do not mean community violence.
TRAPS = re.compile(
    r"cyber|violent extremism|terrorism|wildfire|domestic violence shelter|forensic|DNA|"
    r"body[- ]worn camera|bulletproof|contraband|cancer|tumou?r",
    re.I,
)
#: Violence that is not community violence: the same words, different programs (IPV, sexual assault).
OTHER_VIOLENCE = re.compile(
    r"sexual (assault|violence|abuse)|domestic violence|dating violence|stalking|\brape\b|"
    r"intimate partner|violence against women|family violence",
    re.I,
)
COMMUNITY_VIOLENCE = re.compile(
    r"\bguns?\b|firearm|shoot|homicide|\bgangs?\b|community[- ](based )?violence|street violence|retaliat|"
    r"group violence|violent crime",
    re.I,
)
#: "Street outreach" to runaway and homeless youth is not violence outreach.
HOMELESS = re.compile(r"runaway|homeless", re.I)
OTHER_VIOLENCE_FACTOR = 0.6
RESEARCH = re.compile(
    r"^(?=.*\b(research|evaluation|study|studies|R01|R21|R61)\b)(?!.*\b(implement\w*|services|programs? "
    r"(that|to) (serve|provide))\b)",
    re.I | re.S,
)

#: What CVI work looks like, embedded as prototypes for semantic closeness.
CVI_ACTIVITIES: tuple[str, ...] = (
    "Street outreach workers and violence interrupters mediate conflicts to stop shootings and retaliation.",
    "Hospital-based violence intervention program serving gunshot and stabbing victims at the bedside.",
    "Community violence intervention for people at highest risk of shooting or being shot.",
    "Group violence intervention and focused deterrence with community moral voices and services.",
    "Credible messenger mentoring for young people involved in gun violence and the justice system.",
    "Youth violence prevention in neighborhoods with high rates of homicide and firearm injury.",
    "Reentry services, jobs and case management for young adults returning from incarceration to "
    "reduce violence.",
    "Trauma-informed services for victims of community violence and their families.",
)


@dataclass(frozen=True)
class CviResult:
    score: float
    eligible: bool
    reasons: list[str] = field(default_factory=list)
    #: The uncapped sum of the evidence (0 to ``MAX_EVIDENCE``); the ranker reads it.
    evidence: float = 0.0


@dataclass
class Catalogue:
    """What CVI scoring reads: the curated programs by ALN and (optionally) activity prototype vectors."""

    programs_by_aln: dict[str, ProgramRef]
    activities: list[str] = field(default_factory=list)
    activity_vectors: np.ndarray | None = None

    @classmethod
    def load(cls, session: Session, encode: Callable[[list[str]], np.ndarray] | None = None) -> Catalogue:
        """The catalogue from the store; with ``encode``, CVI activity prototypes are embedded too."""
        programs = load_programs_by_aln(session)
        activities = list(CVI_ACTIVITIES)
        for program in session.scalars(select(CviProgram).order_by(CviProgram.slug)):
            if program.activities:
                activities.append(f"{program.name}: {', '.join(program.activities)}.")
        vectors = encode(activities) if encode is not None else None
        return cls(programs, activities, vectors)


_STRONG = {label: re.compile(pattern, re.I) for label, pattern in STRONG_TERMS.items()}
_SUPPORT = {label: re.compile(pattern, re.I) for label, pattern in SUPPORT_TERMS.items()}


def keyword_evidence(text: str) -> tuple[list[str], list[str]]:
    """Labels of the strong and the supporting CVI phrases found in ``text``."""
    strong = [label for label, pattern in _STRONG.items() if pattern.search(text)]
    support = [label for label, pattern in _SUPPORT.items() if pattern.search(text)]
    return strong, support


def score_opportunity(
    opportunity: Opportunity,
    catalogue: Catalogue,
    passage_vectors: np.ndarray | None = None,
) -> CviResult:
    """Score one opportunity and explain the score (does not write to the store)."""
    reasons: list[str] = []
    score = 0.0
    programs: list[ProgramRef] = []
    for aln in opportunity.aln or []:
        ref = program_for(aln, catalogue.programs_by_aln)
        if ref is not None and ref not in programs:
            programs.append(ref)
    if programs:
        score += ALN_WEIGHT
        for ref in programs[:3]:
            reasons.append(f"Assistance listing {ref.aln} is in the CVI catalogue: {ref.name}")

    text = f"{opportunity.title}\n{opportunity.description or ''}"
    strong, support = keyword_evidence(text)
    community = COMMUNITY_VIOLENCE.search(text)
    if "street outreach" in strong and HOMELESS.search(text) and not community:
        strong.remove("street outreach")
        reasons.append("Street outreach here serves runaway and homeless youth, not violence outreach")
    other_violence = len(OTHER_VIOLENCE.findall(text)) >= 2 and not community
    trap = TRAPS.search(text)
    strong_score = min(STRONG_CAP, STRONG_WEIGHT * len(strong))
    support_score = min(SUPPORT_CAP, SUPPORT_WEIGHT * len(support))
    if trap and len(strong) <= 1:
        strong_score /= 2
        support_score /= 2
    if strong:
        reasons.append("Mentions " + ", ".join(strong))
    if support:
        reasons.append("Related: " + ", ".join(support))
    if trap and (strong or support):
        reasons.append(f"Discounted: about {trap.group(0).lower()}")
    score += strong_score + support_score

    if passage_vectors is not None and catalogue.activity_vectors is not None and len(passage_vectors):
        sims = passage_vectors @ catalogue.activity_vectors.T
        best = float(sims.max())
        closeness = (best - SEMANTIC_LOW) / (SEMANTIC_HIGH - SEMANTIC_LOW)
        semantic = SEMANTIC_CAP * min(1.0, max(0.0, closeness))
        if semantic > 0:
            activity = catalogue.activities[int(np.unravel_index(int(sims.argmax()), sims.shape)[1])]
            reasons.append(f"Text is close to CVI work ({best:.2f}): {activity.split(':')[0][:90]}")
        score += semantic

    if other_violence and score > 0:
        score *= OTHER_VIOLENCE_FACTOR
        reasons.append("About domestic or sexual violence rather than community violence")
    if RESEARCH.search(text) and not programs and score > 0:
        score -= RESEARCH_PENALTY
        reasons.append("Research or evaluation funding rather than services")
    evidence = round(max(0.0, score), 4)
    score = round(min(1.0, evidence), 4)
    eligible = score >= THRESHOLD
    if not reasons:
        reasons.append("No CVI evidence: listing not in the catalogue and no CVI activities mentioned")
    return CviResult(score, eligible, reasons, evidence)


def apply(opportunity: Opportunity, result: CviResult) -> None:
    """Write a result; the admin's override (``cvi_override``) wins for ``cvi_eligible``."""
    opportunity.cvi_score = result.score
    opportunity.cvi_evidence = result.evidence
    opportunity.cvi_reasons = list(result.reasons)
    opportunity.cvi_classified = result.eligible
    opportunity.cvi_eligible = (
        opportunity.cvi_override if opportunity.cvi_override is not None else result.eligible
    )


def rescore(
    session: Session,
    ids: Iterable[int] | None = None,
    *,
    catalogue: Catalogue | None = None,
    vectors: Callable[[Sequence[int]], dict[int, np.ndarray]] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Re-score the given opportunities (all when ``ids`` is None); flushes, the caller commits.

    ``vectors`` returns stored passage vectors by opportunity id (semantic evidence); without it the
    score uses the catalogue and keywords only.
    """
    catalogue = catalogue or Catalogue.load(session)
    if ids is None:
        wanted = list(session.scalars(select(Opportunity.id).order_by(Opportunity.id)))
    else:
        wanted = sorted(set(ids))
    done = 0
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        by_id = vectors(chunk) if vectors is not None else {}
        for opportunity in session.scalars(select(Opportunity).where(Opportunity.id.in_(chunk))):
            apply(opportunity, score_opportunity(opportunity, catalogue, by_id.get(opportunity.id)))
        session.flush()
        done += len(chunk)
        if progress:
            progress(done, len(wanted))
    return done
