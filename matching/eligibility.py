"""Applicant eligibility: can an organization of this type apply, only partner, or not at all?

Read from Grants.gov applicant codes, SAM.gov applicant-type categories and the published
eligibility text, sentence by sentence; the verdict carries the sentence it was read from.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from app.models import OrgType
from matching.text import APPLICANT_CODE_NAMES, ProgramRef, sentences


class Listing(Protocol):
    """What eligibility reads of an opportunity: an ``Opportunity``, or the ranker's plain row of it."""

    @property
    def id(self) -> int: ...
    @property
    def title(self) -> str: ...
    @property
    def description(self) -> str: ...
    @property
    def eligible_applicants(self) -> str | None: ...
    @property
    def eligibility_codes(self) -> list[str]: ...


VerdictKind = Literal["eligible", "partner", "not eligible", "unknown"]

_CITY = OrgType.CITY_GOVERNMENT
_COUNTY = OrgType.COUNTY_GOVERNMENT
_STATE = OrgType.STATE_GOVERNMENT
_TRIBE = OrgType.TRIBAL_GOVERNMENT
_NONPROFIT = OrgType.NONPROFIT
_SCHOOL = OrgType.SCHOOL_DISTRICT
_HOSPITAL = OrgType.HOSPITAL
_IHE = OrgType.INSTITUTION_OF_HIGHER_EDUCATION
ALL = frozenset(OrgType)

#: Grants.gov applicant code → org types that apply in their own name under it.
#: A hospital applies through its nonprofit (12/13) or public (state/county/city) status.
CODE_ORG_TYPES: dict[str, frozenset[OrgType]] = {
    "00": frozenset({_STATE}),
    "01": frozenset({_COUNTY}),
    "02": frozenset({_CITY}),
    "04": frozenset({_SCHOOL}),
    "05": frozenset({_SCHOOL}),
    "06": frozenset({_IHE}),
    "07": frozenset({_TRIBE}),
    "08": frozenset(),
    "11": frozenset({_TRIBE}),
    "12": frozenset({_NONPROFIT, _HOSPITAL}),
    "13": frozenset({_NONPROFIT, _HOSPITAL}),
    "20": frozenset({_IHE}),
    "21": frozenset(),
    "22": frozenset(),
    "23": frozenset(),
    "99": ALL,
}
#: How a hospital qualifies under a code, for the verdict sentence.
HOSPITAL_VIA = {
    "12": "as a nonprofit hospital with 501(c)(3) status",
    "13": "as a nonprofit hospital",
}
#: Codes under which a public hospital takes part through the government that owns it.
HOSPITAL_PUBLIC = {"00": "state", "01": "county", "02": "city"}

#: SAM.gov applicant-type categories (as published on assistance listings) → org types.
SAM_CATEGORIES: list[tuple[re.Pattern[str], frozenset[OrgType]]] = [
    (re.compile(r"^Federally Recognized Indian Tribal Governments", re.I), frozenset({_TRIBE})),
    (re.compile(r"^Native American Organizations", re.I), frozenset({_TRIBE})),
    (re.compile(r"^Local\b", re.I), frozenset({_CITY, _COUNTY})),
    (re.compile(r"^City or Township Government", re.I), frozenset({_CITY})),
    (re.compile(r"^County Government", re.I), frozenset({_COUNTY})),
    (re.compile(r"^Government - General", re.I), frozenset({_CITY, _COUNTY, _STATE, _TRIBE})),
    (re.compile(r"^State\b", re.I), frozenset({_STATE, _IHE, _HOSPITAL})),
    (re.compile(r"^U\.?S\.? Territories", re.I), frozenset()),
    (re.compile(r"^(Private|Public|Quasi-public) nonprofit", re.I), frozenset({_NONPROFIT, _IHE, _HOSPITAL})),
    (re.compile(r"^Other public institution", re.I), frozenset({_SCHOOL, _HOSPITAL, _IHE})),
    (re.compile(r"^Other private institution", re.I), frozenset({_NONPROFIT})),
    (re.compile(r"^Non-Government - General", re.I), frozenset({_NONPROFIT, _IHE, _HOSPITAL})),
    (re.compile(r"^Independent School District", re.I), frozenset({_SCHOOL})),
    (re.compile(r"^Intrastate", re.I), frozenset({_CITY, _COUNTY})),
    (re.compile(r"^Interstate", re.I), frozenset({_STATE})),
    (re.compile(r"^Anyone/general public", re.I), ALL),
    (re.compile(r"^Sponsored organization", re.I), frozenset({_NONPROFIT})),
]
_SAM_PREFIX = re.compile(r"SAM\.gov applicant types:\s*", re.I)
_SAM_SPLIT = re.compile(r";\s*(?=[A-Z])")

#: How published eligibility text names each org type.
MENTIONS: dict[OrgType, re.Pattern[str]] = {
    _CITY: re.compile(
        r"\b(cit(y|ies)|municipal\w*|towns?(hips?)?|villages?|units? of (general )?local government|"
        r"local (government|jurisdiction)s?|local,|local and|local or|mayor'?s? office)\b",
        re.I,
    ),
    _COUNTY: re.compile(
        r"\b(count(y|ies)|parish(es)?|units? of (general )?local government|"
        r"local (government|jurisdiction)s?|local,|local and|local or)\b",
        re.I,
    ),
    _STATE: re.compile(
        r"\b(states?(?! (educational|education|designated|university|universities|college))( "
        r"(government|agenc)\w*)?|territor(y|ies)|state administering agenc\w*|SAAs?)\b",
        re.I,
    ),
    _TRIBE: re.compile(r"\b(tribe|tribes|tribal|indian|native american|alaska native)\b", re.I),
    _NONPROFIT: re.compile(
        r"\b(non-?profits?|not-for-profit|501\s?\(c\)\s?\(3\)|community[- ]based (organi[sz]ations?|groups)|"
        r"community (organi[sz]ations?|groups|partners?|partnerships?)|"
        r"CBOs?|faith[- ]based|private (nonprofit )?organi[sz]ations?|"
        r"non-?government(al)? organi[sz]ations?|intermediar(y|ies)|organizations of every type)\b",
        re.I,
    ),
    _SCHOOL: re.compile(
        r"\b(school districts?|local (school )?districts|local educational agenc(y|ies)|"
        r"local education agenc(y|ies)|LEAs?|independent school)\b",
        re.I,
    ),
    _HOSPITAL: re.compile(
        r"\b(hospitals?|health systems?|trauma cent(er|re)s?|medical cent(er|re)s?)\b", re.I
    ),
    _IHE: re.compile(
        r"\b(institutions? of higher education|IHEs?|universit(y|ies)|colleges?|academic)\b", re.I
    ),
}
_PARTNER = re.compile(
    r"\b(partner(s|ing|ship)?|sub-?grant\w*|sub-?award\w*|sub-?recipients?|sub-?grantees?|"
    r"co-?applicants?|collaborat\w+|consorti(a|um)|pass[- ]through|in partnership with|"
    r"participate as|contract(s|ed)? with)\b",
    re.I,
)
#: Partner words alone, for listings and catalogue notes that name an org type as someone's partner
#: ("partnered with three local districts", "form community partnerships", "participate as partners").
_PARTNERED = re.compile(r"\b(partner(s|ed|ing|ships?)?|in partnership with)\b", re.I)
_NEGATIVE = re.compile(
    r"\b(not eligible|ineligible|are not|is not|cannot apply|may not apply|excluded?s?|excluding|"
    r"only|limited to)\b",
    re.I,
)
_AS_PARTNER = re.compile(
    r"\b(participate|serve|act|involved|included?)\s+as\b|\bas (co-?applicants?|partners?|sub-?recipients?|"
    r"sub-?grantees?)\b|\bmay (partner|collaborate)\b",
    re.I,
)
_ANYONE = re.compile(
    r"\b(organizations of every type|any type of entity|anyone|unrestricted|open to all|"
    r"without restriction)\b",
    re.I,
)
_SUBAWARD = re.compile(
    r"\b(sub-?grants?|sub-?awards?|sub-?recipients?|sub-?grantees?|pass[- ]through|regrant\w*|"
    r"in turn (fund|award|make|support)\w*|(fund|award|make)s? local|contracted providers|"
    r"through (sub)?contracts)\b",
    re.I,
)
_FORMULA_TO_STATES = re.compile(r"\bformula\b[^.]*\b(states?|state agencies|state administ\w+)\b", re.I)
_EXCLUDES_HOSPITAL = re.compile(r"excludes[^;)]*hospitals", re.I)
_NEGATED = re.compile(r"\b(not|no|never)\b", re.I)
_REFUSED = re.compile(r"\b(not eligible|ineligible|cannot apply|may not apply)\b", re.I)
_UNSTATED = re.compile(r"\bnot (stated|shown|listed)\b", re.I)


@dataclass(frozen=True)
class Verdict:
    verdict: VerdictKind
    sentence: str | None = None

    @property
    def label(self) -> str:
        return {
            "eligible": "Eligible to apply",
            "partner": "Eligible as a partner or subrecipient",
            "not eligible": "Not eligible",
            "unknown": "Eligibility unclear",
        }[self.verdict]


def assess(opportunity: Listing, org_type: OrgType | str, programs: Sequence[ProgramRef] = ()) -> Verdict:
    """The org type's eligibility for this opportunity, with the sentence it was read from.

    ``programs`` (the opportunity's curated catalogue programs) add a route the listing may not
    spell out: the catalogue's note that, say, nonprofits receive the money as subrecipients.
    """
    verdict = _assess(opportunity, OrgType(org_type))
    if verdict.verdict == "not eligible":
        return _partner_by_catalogue(programs, OrgType(org_type)) or verdict
    return verdict


#: Verdicts kept per process: a profile query assesses hundreds of candidates with dozens of regexes.
CACHE_SIZE = 200_000
_cache: OrderedDict[tuple[int, str, int], Verdict] = OrderedDict()
_cache_lock = threading.Lock()


def assess_cached(
    opportunity: Listing, org_type: OrgType | str, programs: Sequence[ProgramRef] = ()
) -> Verdict:
    """``assess``, remembered per (opportunity, org type, the text it reads): an edit to the listing
    or to its catalogue programs changes the key, so a stale verdict is never returned."""
    kind = str(OrgType(org_type))
    content = hash(
        (
            opportunity.title,
            opportunity.eligible_applicants,
            opportunity.description,
            tuple(opportunity.eligibility_codes or ()),
            tuple(programs),
        )
    )
    key = (int(opportunity.id), kind, content)
    with _cache_lock:
        found = _cache.get(key)
        if found is not None:
            _cache.move_to_end(key)
            return found
    verdict = assess(opportunity, org_type, programs)
    with _cache_lock:
        _cache[key] = verdict
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return verdict


_RURAL = re.compile(r"\brural\b", re.I)


def rural_only(opportunity: Listing) -> str | None:
    """The title or applicant text that reserves the money for rural applicants, or None."""
    for text in (opportunity.eligible_applicants or "", opportunity.title or ""):
        if _RURAL.search(text):
            return text.strip()[:300]
    return None


def names_rural(profile_text: str) -> bool:
    """The profile calls its area rural (read once per ranking, for ``for_profile``)."""
    return bool(_RURAL.search(profile_text))


def for_profile(verdict: Verdict, opportunity: Listing, rural_profile: bool) -> Verdict:
    """The org type's verdict narrowed by where the profile works: rural-only money does not reach a
    program whose description never calls its area rural (``names_rural``)."""
    if rural_profile or verdict.verdict == "not eligible":
        return verdict
    rural = rural_only(opportunity)
    if rural is None:
        return verdict
    return Verdict("not eligible", f"{rural} (rural applicants only; the profile names no rural area)")


def _partner_by_catalogue(programs: Sequence[ProgramRef], kind: OrgType) -> Verdict | None:
    for ref in programs:
        for sentence in sentences(ref.eligible_applicants):
            mention = _mentions(sentence, kind)
            if kind is _HOSPITAL and mention is None:
                mention = _mentions(sentence, _NONPROFIT)
            if mention is not None and (
                _SUBAWARD.search(sentence) or _PARTNERED.search(_window(sentence, mention))
            ):
                return Verdict("partner", f"{sentence} (CVI catalogue: {ref.name})")
    return None


def _assess(opportunity: Listing, kind: OrgType) -> Verdict:
    text = (opportunity.eligible_applicants or "").strip()
    codes = [c.strip().zfill(2) for c in opportunity.eligibility_codes or [] if c.strip()]
    by_codes = _from_codes(codes, kind)
    if by_codes is not None and by_codes.verdict == "eligible":
        return by_codes
    by_text = _from_text(text, kind) if text else None
    if by_text is not None and by_text.verdict in ("eligible", "partner"):
        return by_text
    if by_codes is not None and by_codes.verdict == "partner":
        return by_codes
    if by_codes is not None and by_codes.verdict == "not eligible":
        # Codes are authoritative, but "25 others" means the text decides.
        if "25" in codes and by_text is not None:
            return by_text
        partner = _partner_anywhere(opportunity, kind)
        return partner or by_codes
    if by_text is not None:
        if by_text.verdict == "not eligible":
            return _partner_anywhere(opportunity, kind) or by_text
        return by_text
    return Verdict("unknown", None)


def _from_codes(codes: list[str], kind: OrgType) -> Verdict | None:
    known = [c for c in codes if c in CODE_ORG_TYPES]
    if not known:
        return None
    for code in known:
        if kind in CODE_ORG_TYPES[code]:
            sentence = f"Grants.gov eligible applicants: {APPLICANT_CODE_NAMES[code]}"
            if kind is _HOSPITAL and code in HOSPITAL_VIA:
                sentence += f" ({HOSPITAL_VIA[code]})"
            return Verdict("eligible", sentence)
    names = "; ".join(APPLICANT_CODE_NAMES[c] for c in known[:4])
    if kind is _HOSPITAL:
        for code in known:
            if code in HOSPITAL_PUBLIC:
                return Verdict(
                    "partner",
                    f"Grants.gov eligible applicants: {APPLICANT_CODE_NAMES[code]} (a public hospital takes "
                    f"part through its {HOSPITAL_PUBLIC[code]} government)",
                )
    return Verdict("not eligible", f"Grants.gov eligible applicants: {names}")


def _from_sam(text: str, kind: OrgType) -> Verdict | None:
    match = _SAM_PREFIX.search(text)
    if not match:
        return None
    categories = [c.strip() for c in _SAM_SPLIT.split(text[match.end() :]) if c.strip()]
    for category in categories:
        for pattern, kinds in SAM_CATEGORIES:
            if pattern.search(category) and kind in kinds:
                via = " (as a nonprofit or public hospital)" if kind is _HOSPITAL else ""
                return Verdict("eligible", f"SAM.gov applicant types: {category.rstrip(';')}{via}")
    return Verdict("not eligible", text[:300])


def _from_text(text: str, kind: OrgType) -> Verdict | None:
    sam = _from_sam(text, kind)
    if sam is not None:
        return sam
    if _UNSTATED.search(text) and not MENTIONS[kind].search(_UNSTATED.split(text, 1)[-1]):
        return Verdict("unknown", _first(text))
    partner_sentence: str | None = None
    candidates = sentences(text)
    for sentence in candidates:
        if _ANYONE.search(sentence):
            return Verdict("eligible", sentence)
        mention = _mentions(sentence, kind)
        if not mention:
            continue
        if kind is _HOSPITAL and _EXCLUDES_HOSPITAL.search(sentence):
            continue
        window = _window(sentence, mention)
        if _REFUSED.search(window):
            continue
        after = sentence[mention.end() : mention.end() + 60]
        if _AS_PARTNER.search(after) or (_PARTNER.search(window) and not _leads(sentence, mention)):
            partner_sentence = partner_sentence or sentence
            continue
        return Verdict("eligible", sentence)
    if partner_sentence:
        return Verdict("partner", partner_sentence)
    if kind is _HOSPITAL:
        # A hospital applies through its nonprofit or public status.
        verdict = _from_text(text, _NONPROFIT)
        if verdict is not None and verdict.verdict in ("eligible", "partner"):
            return Verdict(verdict.verdict, f"{verdict.sentence} (a nonprofit hospital qualifies)")
        for via in (_COUNTY, _CITY, _STATE):
            verdict = _from_text(text, via)
            if verdict is not None and verdict.verdict in ("eligible", "partner"):
                return Verdict(
                    "partner", f"{verdict.sentence} (a public hospital takes part through its government)"
                )
    if candidates and any(pattern_hits(s) for s in candidates):
        # The text names who may apply and this org type is not among them.
        return Verdict("not eligible", _first(text))
    return Verdict("unknown", _first(text))


def _mentions(sentence: str, kind: OrgType) -> re.Match[str] | None:
    for match in MENTIONS[kind].finditer(sentence):
        return match
    return None


def _window(sentence: str, match: re.Match[str]) -> str:
    return sentence[max(0, match.start() - 80) : match.end() + 80]


def _leads(sentence: str, match: re.Match[str]) -> bool:
    """The org type is named as the (lead) applicant before any partner wording."""
    partner = _PARTNER.search(sentence)
    if partner is None:
        return True
    before = sentence[: partner.start()]
    return match.start() < partner.start() and not re.search(r"\bwith\s*$", before[-30:])


def _names(sentence: str, kind: OrgType) -> bool:
    """The sentence names this org type (a hospital also by its nonprofit status)."""
    if _mentions(sentence, kind) is not None:
        return True
    return kind is _HOSPITAL and _mentions(sentence, _NONPROFIT) is not None


def pattern_hits(sentence: str) -> bool:
    return any(p.search(sentence) for p in MENTIONS.values())


def _partner_anywhere(opportunity: Listing, kind: OrgType) -> Verdict | None:
    """Formula and lead-applicant programs that pass money on, or name the org type as the applicant's
    partner ("state agencies, partnered with three local districts"): it takes part without applying."""
    text = "\n".join(p for p in (opportunity.eligible_applicants, opportunity.description) if p)
    found = sentences(text)
    for sentence in found:
        mention = _mentions(sentence, kind)
        if mention is None:
            continue
        window = _window(sentence, mention)
        if _PARTNERED.search(window) and not _REFUSED.search(window):
            return Verdict("partner", sentence[:400])
    for sentence in found:
        subaward = _SUBAWARD.search(sentence)
        if subaward is None or _NEGATED.search(sentence[max(0, subaward.start() - 20) : subaward.start()]):
            continue
        if pattern_hits(sentence) and not _names(sentence, kind):
            continue  # the money passes to others the sentence names, not to this org type
        return Verdict("partner", sentence[:400])
    for sentence in [opportunity.title or "", *found]:
        if _FORMULA_TO_STATES.search(sentence):
            return Verdict(
                "partner", f"{sentence[:360]} (formula money to states reaches local subrecipients)"
            )
    return None


def _first(text: str) -> str:
    found = sentences(text)
    return (found[0] if found else text)[:400]
