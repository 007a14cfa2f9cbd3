"""Human labels for the codes Grants.gov and the store use, so pages never show a bare code.

Applicant types, categories and instruments are Grants.gov's published code tables; the short
sentence forms (``APPLICANT_SENTENCE``) let the opportunity page say who may apply in plain words.
"""

from __future__ import annotations

from collections.abc import Iterable

APPLICANT_TYPES: dict[str, str] = {
    "00": "State governments",
    "01": "County governments",
    "02": "City or township governments",
    "04": "Special district governments",
    "05": "Independent school districts",
    "06": "Public and state-controlled institutions of higher education",
    "07": "Native American tribal governments (federally recognized)",
    "08": "Public housing authorities and Indian housing authorities",
    "11": "Native American tribal organizations (other than federally recognized tribal governments)",
    "12": "Nonprofits with 501(c)(3) status, other than institutions of higher education",
    "13": "Nonprofits without 501(c)(3) status, other than institutions of higher education",
    "20": "Private institutions of higher education",
    "21": "Individuals",
    "22": "For-profit organizations other than small businesses",
    "23": "Small businesses",
    "25": "Others (see the additional eligibility information)",
    "99": "Unrestricted (open to any type of entity), subject to the additional eligibility information",
}

#: How each applicant type reads inside a sentence ("… may apply: county governments, …").
APPLICANT_SENTENCE: dict[str, str] = {
    "00": "state governments",
    "01": "county governments",
    "02": "city or township governments",
    "04": "special district governments",
    "05": "independent school districts",
    "06": "public and state-controlled colleges and universities",
    "07": "federally recognized tribal governments",
    "08": "public and Indian housing authorities",
    "11": "tribal organizations other than federally recognized tribal governments",
    "12": "nonprofits with 501(c)(3) status",
    "13": "nonprofits without 501(c)(3) status",
    "20": "private colleges and universities",
    "21": "individuals",
    "22": "for-profit organizations",
    "23": "small businesses",
    "25": "other applicants described in the eligibility notes",
}

CATEGORIES: dict[str, str] = {
    "RA": "Recovery Act",
    "AG": "Agriculture",
    "AR": "Arts",
    "BC": "Business and commerce",
    "CD": "Community development",
    "CP": "Consumer protection",
    "DPR": "Disaster prevention and relief",
    "ED": "Education",
    "ELT": "Employment, labor and training",
    "EN": "Energy",
    "ENV": "Environment",
    "FN": "Food and nutrition",
    "HL": "Health",
    "HO": "Housing",
    "HU": "Humanities",
    "IIJ": "Infrastructure Investment and Jobs Act",
    "IS": "Information and statistics",
    "ISS": "Income security and social services",
    "LJL": "Law, justice and legal services",
    "NR": "Natural resources",
    "OZ": "Opportunity zone benefits",
    "RD": "Regional development",
    "ST": "Science, technology and research",
    "T": "Transportation",
    "ACA": "Affordable Care Act",
    "O": "Other",
}

INSTRUMENTS: dict[str, str] = {
    "CA": "Cooperative agreement",
    "G": "Grant",
    "PC": "Procurement contract",
    "O": "Other",
}

OPPORTUNITY_CATEGORIES: dict[str, str] = {
    "D": "Discretionary",
    "M": "Mandatory",
    "C": "Continuation",
    "E": "Earmark",
    "O": "Other",
}

DEPARTMENTS: dict[str, str] = {
    "DOJ": "Department of Justice",
    "DOL": "Department of Labor",
    "ED": "Department of Education",
    "HHS": "Department of Health and Human Services",
    "HUD": "Department of Housing and Urban Development",
    "DHS": "Department of Homeland Security",
    "USDA": "Department of Agriculture",
    "DOT": "Department of Transportation",
    "DOC": "Department of Commerce",
    "DOD": "Department of Defense",
    "DOE": "Department of Energy",
    "DOI": "Department of the Interior",
    "DOS": "Department of State",
    "VA": "Department of Veterans Affairs",
    "TREAS": "Department of the Treasury",
    "EPA": "Environmental Protection Agency",
    "NASA": "National Aeronautics and Space Administration",
    "NSF": "National Science Foundation",
    "AC": "AmeriCorps",
    "CNCS": "AmeriCorps",
    "NEA": "National Endowment for the Arts",
    "NEH": "National Endowment for the Humanities",
    "SBA": "Small Business Administration",
    "IMLS": "Institute of Museum and Library Services",
}

STATUSES: dict[str, str] = {
    "forecasted": "Forecasted",
    "posted": "Open for applications",
    "closed": "Closed",
    "archived": "Archived",
}

#: Opportunity fields as a person names them (change history, CSV headers).
FIELD_NAMES: dict[str, str] = {
    "title": "Title",
    "number": "Opportunity number",
    "status": "Status",
    "post_date": "Posted date",
    "close_date": "Close date",
    "close_date_note": "Close date note",
    "second_close_date": "Second deadline",
    "archive_date": "Archive date",
    "forecast_post_date": "Expected posting date",
    "forecast_award_date": "Expected award date",
    "award_floor": "Smallest award",
    "award_ceiling": "Largest award",
    "total_funding": "Total funding",
    "expected_awards": "Expected number of awards",
    "eligible_applicants": "Eligibility notes",
    "eligibility_codes": "Eligible applicants",
    "funding_instruments": "Funding instrument",
    "categories": "Funding category",
    "aln": "Assistance listing",
    "description": "Description",
    "description_html": "Description",
    "url": "Link",
    "agency": "Department",
    "department": "Department",
    "sub_agency": "Agency",
    "agency_name": "Agency",
    "cost_sharing": "Cost sharing",
    "contact": "Contact",
    "fiscal_year": "Fiscal year",
}

_TABLES: dict[str, dict[str, str]] = {
    "eligibility": APPLICANT_TYPES,
    "eligibility_codes": APPLICANT_TYPES,
    "category": CATEGORIES,
    "categories": CATEGORIES,
    "instrument": INSTRUMENTS,
    "funding_instruments": INSTRUMENTS,
    "department": DEPARTMENTS,
    "status": STATUSES,
    "opportunity_category": OPPORTUNITY_CATEGORIES,
}


def label(kind: str, code: object) -> str:
    """The label of ``code`` in the table ``kind``; an unknown code is shown as it is."""
    text = "" if code is None else str(code)
    return _TABLES.get(kind, {}).get(text, text)


def labels(kind: str, codes: Iterable[object]) -> list[str]:
    return [label(kind, code) for code in codes]


def join_words(items: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    if not items:
        return ""
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + " and " + items[-1]


def eligibility_sentence(codes: Iterable[str]) -> str:
    """Who may apply, as a sentence a grant writer can read without the code table."""
    codes = [str(c) for c in codes]
    if not codes:
        return "The listing does not say which kinds of organizations may apply; read the eligibility notes."
    if "99" in codes:
        return "Any type of organization may apply, subject to the notes in the listing."
    kinds = [APPLICANT_SENTENCE.get(code, f"applicant type {code}") for code in codes]
    return "These may apply: " + join_words(kinds) + "."
