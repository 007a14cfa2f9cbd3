from __future__ import annotations

import pytest

from app.models import ProgramProfile
from matching.profile import MAX_DESCRIPTION_CHARS, MatchingError, ProfileInput
from tests.matching.conftest import profiles


def test_contract_profiles_validate() -> None:
    for data in profiles().values():
        profile = ProfileInput.parse(data)
        assert profile.id == data["id"]
        assert profile.program_description in profile.query_text()


def test_empty_description_is_a_clear_message() -> None:
    with pytest.raises(MatchingError) as err:
        ProfileInput.parse({"id": "x", "name": "n", "org_type": "nonprofit", "program_description": "   "})
    assert "program_description" in str(err.value)
    assert "few words" in str(err.value)


def test_missing_description_says_required() -> None:
    with pytest.raises(MatchingError, match="program_description: is required"):
        ProfileInput.parse({"org_type": "nonprofit"})


def test_unknown_org_type_lists_the_allowed_ones() -> None:
    with pytest.raises(MatchingError) as err:
        ProfileInput.parse({"org_type": "church", "program_description": "street outreach for young men"})
    message = str(err.value)
    assert "church" in message
    for allowed in ("city government", "nonprofit", "hospital", "institution of higher education"):
        assert allowed in message


def test_org_type_spelling_is_forgiving() -> None:
    profile = ProfileInput.parse(
        {"org_type": "City_Government", "program_description": "street outreach for youth"}
    )
    assert str(profile.org_type) == "city government"


def test_huge_text_is_refused_with_limits() -> None:
    with pytest.raises(MatchingError, match="keep it under"):
        ProfileInput.parse({"org_type": "nonprofit", "program_description": "word " * MAX_DESCRIPTION_CHARS})
    with pytest.raises(MatchingError, match="30 or fewer"):
        ProfileInput.parse(
            {
                "org_type": "nonprofit",
                "program_description": "street outreach work",
                "focus_areas": ["x"] * 31,
            }
        )


def test_not_an_object() -> None:
    with pytest.raises(MatchingError, match="JSON object"):
        ProfileInput.parse(["nonprofit"])


def test_from_model(session) -> None:  # type: ignore[no-untyped-def]
    stored = ProgramProfile(
        external_id="p-1",
        name="Outreach",
        org_type="nonprofit",
        program_description="Street outreach and violence interruption for young men",
        focus_areas=["street outreach"],
        populations=[],
    )
    session.add(stored)
    session.flush()
    profile = ProfileInput.from_model(stored)
    assert profile.id == "p-1"
    assert profile.focus_areas == ["street outreach"]
