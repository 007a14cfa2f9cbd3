from __future__ import annotations

import pytest

from app.models import Opportunity
from matching.eligibility import assess


def _opp(codes: list[str] | None = None, text: str | None = None, description: str = "") -> Opportunity:
    return Opportunity(
        title="t", description=description, eligibility_codes=codes or [], eligible_applicants=text
    )


@pytest.mark.parametrize(
    ("codes", "org_type", "verdict"),
    [
        (["12"], "nonprofit", "eligible"),
        (["13"], "nonprofit", "eligible"),
        (["02"], "city government", "eligible"),
        (["01"], "county government", "eligible"),
        (["00"], "state government", "eligible"),
        (["07"], "tribal government", "eligible"),
        (["05"], "school district", "eligible"),
        (["06"], "institution of higher education", "eligible"),
        (["20"], "institution of higher education", "eligible"),
        (["99"], "school district", "eligible"),
        (["12"], "hospital", "eligible"),
        (["01"], "hospital", "partner"),
        (["00"], "nonprofit", "not eligible"),
        (["06", "20"], "city government", "not eligible"),
        (["21", "22", "23"], "nonprofit", "not eligible"),
    ],
)
def test_codes(codes: list[str], org_type: str, verdict: str) -> None:
    result = assess(_opp(codes), org_type)
    assert result.verdict == verdict
    assert result.sentence and "Grants.gov" in result.sentence


def test_hospital_sentence_names_the_route() -> None:
    assert "nonprofit hospital" in (assess(_opp(["12"]), "hospital").sentence or "")


def test_state_formula_with_subgrants_is_partner_for_nonprofits() -> None:
    opp = _opp(
        ["00"], "States and territories only. States make subgrants to nonprofit victim service providers."
    )
    result = assess(opp, "nonprofit")
    assert result.verdict == "partner"
    assert "subgrants" in (result.sentence or "")


def test_others_code_reads_the_text() -> None:
    opp = _opp(["25"], "Applicants must be hospitals or trauma centers.")
    assert assess(opp, "hospital").verdict == "eligible"


def test_text_eligible_with_sentence() -> None:
    text = "Eligible applicants are cities and counties. Nonprofits are not eligible to apply directly."
    result = assess(_opp(text=text), "city government")
    assert result.verdict == "eligible"
    assert result.sentence == "Eligible applicants are cities and counties."


def test_text_must_partner_with_local_government() -> None:
    text = "Applicants must be units of local government in partnership with community-based organizations."
    assert assess(_opp(text=text), "nonprofit").verdict == "partner"
    assert assess(_opp(text=text), "county government").verdict == "eligible"


def test_text_participate_as_subrecipients() -> None:
    text = "Formula allocation to entitlement cities; nonprofits participate as subrecipients."
    assert assess(_opp(text=text), "nonprofit").verdict == "partner"


def test_text_names_others_only() -> None:
    text = "Local educational agencies (LEAs) and consortia of LEAs."
    assert assess(_opp(text=text), "nonprofit").verdict == "not eligible"
    assert assess(_opp(text=text), "school district").verdict == "eligible"


def test_sam_categories() -> None:
    text = (
        "SAM.gov applicant types: Local (includes State-designated Indian Tribes, excludes institutions of "
        "higher education and hospitals; Private nonprofit institution/organization (includes "
        "institutions of "
        "higher education and hospitals)"
    )
    assert assess(_opp(text=text), "city government").verdict == "eligible"
    assert assess(_opp(text=text), "hospital").verdict == "eligible"
    assert assess(_opp(text="SAM.gov applicant types: State"), "nonprofit").verdict == "not eligible"


def test_nothing_published_is_unknown() -> None:
    assert assess(_opp(), "nonprofit").verdict == "unknown"
    assert assess(_opp(text="Not stated in the stored excerpt."), "nonprofit").verdict == "unknown"


def test_unrestricted_text() -> None:
    text = "Organizations of every type, government and private, may apply."
    assert assess(_opp(text=text), "tribal government").verdict == "eligible"


def test_named_as_the_applicants_partner() -> None:
    """A listing that names the org type as the applicant's partner makes it a partner, not ineligible."""
    opp = _opp(
        ["00"],
        "State educational agencies",
        "Funds state education agencies, partnered with state mental health agencies and three local "
        "districts, to expand school-based mental health.",
    )
    result = assess(opp, "school district")
    assert result.verdict == "partner"
    assert "three local districts" in (result.sentence or "")
    opp = _opp(["01", "02"], description="Grantees, usually local governments, form community partnerships.")
    assert assess(opp, "nonprofit").verdict == "partner"


def test_subawards_to_others_are_no_route() -> None:
    """Money passed on to kinds the sentence names does not reach an org type it leaves out."""
    opp = _opp(
        ["01", "02", "07", "12"],
        "Units of local government, tribes and nonprofits; intermediary nonprofits regrant to small groups.",
    )
    assert assess(opp, "state government").verdict == "not eligible"
    assert assess(opp, "school district").verdict == "not eligible"
    opp = _opp(["00"], "States and territories; subgrants to localities and nonprofits.")
    assert assess(opp, "nonprofit").verdict == "partner"
    assert assess(opp, "institution of higher education").verdict == "not eligible"


def test_subawards_a_sentence_denies_are_no_route() -> None:
    opp = _opp(["06", "12"], description="Training for litigators. It does not fund local prevention.")
    assert assess(opp, "city government").verdict == "not eligible"


def test_catalogue_note_naming_partners() -> None:
    """The catalogue's "hospitals and IHEs usually participate as partners" is a route for them."""
    from matching.text import ProgramRef

    note = "Local governments and nonprofits. Hospitals and IHEs usually participate as partners."
    ref = ProgramRef("cvipi", "CVIPI", "16.045", "CBVIPI", eligible_applicants=note)
    opp = _opp(["01", "02", "12"])
    assert assess(opp, "institution of higher education", [ref]).verdict == "partner"
    assert assess(opp, "school district", [ref]).verdict == "not eligible"


def test_rural_money_needs_a_rural_profile() -> None:
    from matching.eligibility import for_profile, names_rural

    opp = _opp(["00", "01", "02", "07"], "Rural law enforcement agencies and prosecutors' offices")
    verdict = assess(opp, "city government")
    assert verdict.verdict == "eligible"
    city = names_rural("A city violence prevention office in high-violence neighborhoods.")
    narrowed = for_profile(verdict, opp, city)
    assert narrowed.verdict == "not eligible" and "rural applicants only" in (narrowed.sentence or "")
    assert for_profile(verdict, opp, names_rural("Services across a large rural reservation.")) == verdict
    plain = _opp(["02"], "Units of local government")
    assert for_profile(assess(plain, "city government"), plain, city).verdict == "eligible"
