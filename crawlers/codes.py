"""Grants.gov code tables with their published labels, and agency code → department mapping.

Labels are the ones Grants.gov itself shows in its search facets; codes that never appear in the
facets carry the name Grants.gov's successor (simpler.grants.gov) uses for them.
"""

from __future__ import annotations

APPLICANT_TYPES: dict[str, str] = {
    "00": "State governments",
    "01": "County governments",
    "02": "City or township governments",
    "04": "Special district governments",
    "05": "Independent school districts",
    "06": "Public and State controlled institutions of higher education",
    "07": "Native American tribal governments (Federally recognized)",
    "08": "Public housing authorities/Indian housing authorities",
    "11": "Native American tribal organizations (other than Federally recognized tribal governments)",
    "12": "Nonprofits having a 501(c)(3) status with the IRS, other than institutions of higher education",
    "13": "Nonprofits that do not have a 501(c)(3) status with the IRS, other than institutions of "
    "higher education",
    "20": "Private institutions of higher education",
    "21": "Individuals",
    "22": "For profit organizations other than small businesses",
    "23": "Small businesses",
    "25": 'Others (see text field entitled "Additional Information on Eligibility" for clarification)',
    "99": "Unrestricted (i.e., open to any type of entity above), subject to any clarification in text "
    'field entitled "Additional Information on Eligibility"',
}

FUNDING_CATEGORIES: dict[str, str] = {
    "RA": "Recovery Act",
    "AG": "Agriculture",
    "AR": 'Arts (see "Cultural Affairs" in CFDA)',
    "BC": "Business and Commerce",
    "CD": "Community Development",
    "CP": "Consumer Protection",
    "DPR": "Disaster Prevention and Relief",
    "ED": "Education",
    "ELT": "Employment, Labor and Training",
    "EN": "Energy",
    "ENV": "Environment",
    "FN": "Food and Nutrition",
    "HL": "Health",
    "HO": "Housing",
    "HU": 'Humanities (see "Cultural Affairs" in CFDA)',
    "IIJ": "Infrastructure Investment and Jobs Act",
    "IS": "Information and Statistics",
    "ISS": "Income Security and Social Services",
    "LJL": "Law, Justice and Legal Services",
    "NR": "Natural Resources",
    "OZ": "Opportunity Zone Benefits",
    "RD": "Regional Development",
    "ST": "Science and Technology and other Research and Development",
    "T": "Transportation",
    "ACA": "Affordable Care Act",
    "O": 'Other (see text field entitled "Explanation of Other Category of Funding Activity" for '
    "clarification)",
}

FUNDING_INSTRUMENTS: dict[str, str] = {
    "CA": "Cooperative Agreement",
    "G": "Grant",
    "PC": "Procurement Contract",
    "O": "Other",
}

OPPORTUNITY_CATEGORIES: dict[str, str] = {
    "D": "Discretionary",
    "M": "Mandatory",
    "C": "Continuation",
    "E": "Earmark",
    "O": "Other",
}

#: Top-level Grants.gov agency codes of the four core departments (search2 ``agencies`` filter).
DEPARTMENT_AGENCY_CODES: dict[str, str] = {"DOJ": "USDOJ", "DOL": "DOL", "ED": "ED", "HHS": "HHS"}

#: Other departments, so contrast records get a readable department code rather than the raw prefix.
_OTHER_PREFIXES: dict[str, str] = {
    "HUD": "HUD",
    "DOC": "DOC",
    "USDA": "USDA",
    "DOI": "DOI",
    "DOS": "DOS",
    "DOT": "DOT",
    "DOE": "DOE",
    "DOD": "DOD",
    "DHS": "DHS",
    "EPA": "EPA",
    "NSF": "NSF",
    "NASA": "NASA",
    "USAID": "USAID",
    "VA": "VA",
    "SBA": "SBA",
    "TREAS": "Treasury",
    "AC": "AmeriCorps",
    "CNCS": "AmeriCorps",
    "NEA": "NEA",
    "NEH": "NEH",
    "IMLS": "IMLS",
}


def department_for(agency_code: str | None) -> str | None:
    """The department of a Grants.gov agency code: ``USDOJ-OJP-BJA`` → ``DOJ``, ``HHS-SAMHS`` → ``HHS``.

    Returns None for an empty code. ED codes have no separator (``ED``, ``ED-OESE`` both occur).
    """
    if not agency_code:
        return None
    code = agency_code.strip().upper()
    prefix = code.split("-", 1)[0]
    if prefix in ("USDOJ", "DOJ"):
        return "DOJ"
    if prefix in ("DOL", "HHS"):
        return prefix
    if prefix == "ED" or (code.startswith("ED") and not code.startswith("EDA")):
        return "ED"
    if prefix in _OTHER_PREFIXES:
        return _OTHER_PREFIXES[prefix]
    return prefix[:40] or None


def is_core(agency_code: str | None) -> bool:
    """True for an agency of DOJ, DOL, ED or HHS (any sub-agency)."""
    return department_for(agency_code) in DEPARTMENT_AGENCY_CODES


def label(table: dict[str, str], code: str) -> str:
    """A code's label, or the code itself when the table does not know it."""
    return table.get(code, code)


def labels(table: dict[str, str], codes: list[str]) -> list[str]:
    return [label(table, code) for code in codes]
