from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Opportunity, OrgType
from matching import cvi
from matching.profile import MatchingError, ProfileInput
from matching.ranker import RankFilters, cvi_strength, parse_budget, rank, researches, reserved_for
from tests.matching.conftest import TODAY, profiles

EVERYTHING = RankFilters.everything()


def _ids(matches: list) -> list[str]:  # type: ignore[type-arg]
    return [m.opportunity.source_id for m in matches]


def test_hybrid_puts_the_right_program_first(loaded: Session) -> None:
    expected = {"p-outreach": "m-outreach", "p-hvip": "m-hvip", "p-school": "m-school"}
    for profile_id, top in expected.items():
        matches = rank(loaded, profiles()[profile_id], filters=EVERYTHING, today=TODAY)
        assert _ids(matches)[0] == top, (profile_id, _ids(matches))


@pytest.mark.parametrize("method", ["keyword", "semantic", "hybrid"])
def test_every_method_works(loaded: Session, method: str) -> None:
    matches = rank(loaded, profiles()["p-outreach"], filters=EVERYTHING, method=method, today=TODAY)
    assert matches
    assert "m-outreach" in _ids(matches)[:3]
    scores = [m.score for m in matches]
    assert scores == sorted(scores, reverse=True)


def test_explanation(loaded: Session) -> None:
    match = rank(loaded, profiles()["p-outreach"], filters=EVERYTHING, today=TODAY)[0]
    exp = match.explanation
    assert exp.reason and "\n" not in exp.reason
    assert "outreach" in exp.matched_terms
    assert exp.passage and "outreach" in exp.passage.lower()
    assert exp.eligibility.verdict == "eligible" and "501(c)(3)" in (exp.eligibility.sentence or "")
    assert exp.cvi_programs == [
        {"slug": "t-cvipi", "name": "Community Violence Intervention Test Initiative", "aln": "16.045"}
    ]
    assert exp.days_left == (dt.date(2027, 3, 1) - TODAY).days
    assert any("16.045" in r for r in exp.cvi_reasons)
    assert exp.as_dict()["eligibility"]["verdict"] == "eligible"


def test_explain_only_writes_reasons_for_those_ids_and_ranks_the_same(loaded: Session) -> None:
    """A digest explains only the new opportunities among a profile's matches."""
    full = rank(loaded, profiles()["p-outreach"], filters=EVERYTHING, today=TODAY)
    chosen = full[1].opportunity.id
    partial = rank(loaded, profiles()["p-outreach"], filters=EVERYTHING, today=TODAY, explain_only={chosen})
    assert [(m.opportunity.id, m.score) for m in partial] == [(m.opportunity.id, m.score) for m in full]
    reasons = {m.opportunity.id: m.explanation.reason for m in partial}
    assert reasons[chosen] == full[1].explanation.reason and reasons[chosen]
    assert all(not reason for opp_id, reason in reasons.items() if opp_id != chosen)
    assert all(m.explanation.eligibility.verdict for m in partial)


def test_not_eligible_goes_down(loaded: Session) -> None:
    """The state-only violence-against-women formula grant is below what a nonprofit can apply for."""
    ids = _ids(rank(loaded, profiles()["p-hvip"], filters=EVERYTHING, today=TODAY, limit=50))
    assert ids.index("m-hvip") < ids.index("m-dv-formula") if "m-dv-formula" in ids else True
    state = dict(profiles()["p-hvip"], org_type="state government")
    for match in rank(loaded, state, filters=EVERYTHING, today=TODAY, limit=50):
        if match.opportunity.source_id == "m-hvip":
            assert match.explanation.eligibility.verdict == "not eligible"


def test_default_filters_open_cvi_only(loaded: Session) -> None:
    ids = _ids(rank(loaded, profiles()["p-outreach"], today=TODAY, limit=50))
    assert "m-closed" not in ids  # closed
    assert "m-wildfire" not in ids and "m-cancer" not in ids  # not CVI
    assert "m-mentoring" in ids  # forecasted counts as open
    loaded_all = _ids(rank(loaded, profiles()["p-outreach"], filters=EVERYTHING, today=TODAY, limit=50))
    assert "m-closed" in loaded_all


def test_filters(loaded: Session) -> None:
    profile = profiles()["p-outreach"]
    only_dol = rank(loaded, profile, filters=RankFilters(departments=["DOL"], cvi_only=False), today=TODAY)
    assert {m.opportunity.department for m in only_dol} == {"DOL"}
    window = RankFilters(close_after=dt.date(2027, 2, 1), close_before=dt.date(2027, 2, 28), cvi_only=False)
    for match in rank(loaded, profile, filters=window, today=TODAY, limit=50):
        assert match.opportunity.close_date and dt.date(2027, 2, 1) <= match.opportunity.close_date
    soon = RankFilters(min_days_left=120, cvi_only=False)
    for match in rank(loaded, profile, filters=soon, today=TODAY, limit=50):
        assert match.explanation.days_left is None or match.explanation.days_left >= 120
    outreach = loaded.scalar(select(Opportunity.id).where(Opportunity.source_id == "m-outreach"))
    assert outreach is not None
    excluded = rank(loaded, profile, filters=RankFilters(exclude_ids=[outreach]), today=TODAY)
    assert "m-outreach" not in _ids(excluded)
    page2 = rank(loaded, profile, filters=EVERYTHING, today=TODAY, limit=3, offset=3)
    page1 = rank(loaded, profile, filters=EVERYTHING, today=TODAY, limit=3)
    assert not set(_ids(page1)) & set(_ids(page2))


def test_curation(loaded: Session) -> None:
    from matching.sync import mark_changed

    profile = profiles()["p-outreach"]
    reentry = loaded.scalar(select(Opportunity).where(Opportunity.source_id == "m-reentry"))
    outreach = loaded.scalar(select(Opportunity).where(Opportunity.source_id == "m-outreach"))
    assert reentry is not None and outreach is not None
    before = {
        m.opportunity.source_id: m.score for m in rank(loaded, profile, filters=EVERYTHING, today=TODAY)
    }
    reentry.featured = True
    outreach.hidden = True
    mark_changed(loaded, [reentry.id, outreach.id])
    loaded.commit()
    after = {m.opportunity.source_id: m.score for m in rank(loaded, profile, filters=EVERYTHING, today=TODAY)}
    assert "m-outreach" not in after
    assert after["m-reentry"] > before["m-reentry"]


@pytest.mark.parametrize(
    ("profile", "message"),
    [
        ({"org_type": "nonprofit", "program_description": ""}, "program_description"),
        ({"org_type": "church", "program_description": "street outreach to young men"}, "org_type"),
        ({"org_type": "nonprofit", "program_description": "outreach " * 5000}, "keep it under"),
    ],
)
def test_bad_profiles_are_clear_errors(loaded: Session, profile: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(MatchingError, match=message):
        rank(loaded, profile)


def test_operator_only_profile(loaded: Session) -> None:
    profile = {"org_type": "nonprofit", "program_description": "AND OR NOT AND OR NOT"}
    with pytest.raises(MatchingError, match="searchable words"):
        rank(loaded, profile, method="keyword")
    # Hybrid still answers from the embedding, never a traceback.
    rank(loaded, profile, filters=EVERYTHING)


def test_bad_arguments(loaded: Session) -> None:
    profile = ProfileInput.parse(profiles()["p-outreach"])
    with pytest.raises(MatchingError, match="method"):
        rank(loaded, profile, method="magic")
    with pytest.raises(MatchingError, match="limit"):
        rank(loaded, profile, limit=0)
    with pytest.raises(MatchingError, match="close_after"):
        rank(
            loaded,
            profile,
            filters=RankFilters(close_after=dt.date(2027, 1, 2), close_before=dt.date(2027, 1, 1)),
        )


def test_parse_budget() -> None:
    assert parse_budget("$300,000-$900,000") == (300_000, 900_000)
    assert parse_budget("$1M-$2M") == (1_000_000, 2_000_000)
    assert parse_budget("up to 500k") == (125_000, 500_000)
    assert parse_budget("small") is None
    assert parse_budget(None) is None


def test_reserved_for_peers_and_open_codes() -> None:
    """Money for local governments and tribes is set aside for a city as much as city-only money;
    "others (see text)" and "unrestricted" listings are reserved for no one."""
    local = Opportunity(eligibility_codes=["01", "02", "07"])
    assert reserved_for(local, OrgType.CITY_GOVERNMENT)
    assert reserved_for(local, OrgType.TRIBAL_GOVERNMENT)
    assert not reserved_for(local, OrgType.STATE_GOVERNMENT)
    assert not reserved_for(Opportunity(eligibility_codes=["01", "02", "12"]), OrgType.CITY_GOVERNMENT)
    assert reserved_for(Opportunity(eligibility_codes=["12", "13"]), OrgType.NONPROFIT)
    assert not reserved_for(Opportunity(eligibility_codes=["12", "13", "25"]), OrgType.NONPROFIT)
    assert not reserved_for(Opportunity(eligibility_codes=["05", "99"]), OrgType.SCHOOL_DISTRICT)
    assert not reserved_for(Opportunity(eligibility_codes=[]), OrgType.NONPROFIT)


def test_cvi_strength_reads_the_uncapped_evidence() -> None:
    assert cvi_strength(Opportunity(cvi_score=1.0, cvi_evidence=cvi.MAX_EVIDENCE)) == 1.0
    assert cvi_strength(Opportunity(cvi_score=1.0, cvi_evidence=1.0)) < 0.7
    assert cvi_strength(Opportunity(cvi_score=0.8, cvi_evidence=None)) == 0.8  # not re-scored yet


def test_a_research_partner_does_not_make_a_researcher() -> None:
    assert researches("A university research center that studies firearm injury.")
    assert not researches("Our research partner found fewer gun assaults near remediated lots.")


def test_a_shared_rank_cache_gives_the_same_rankings(loaded: Session) -> None:
    """A digest run shares one RankCache between its rankings: rows and filter results are read once,
    and every profile, filter set and exclusion ranks exactly as it does alone."""
    from matching.ranker import RankCache

    cache = RankCache()
    outreach = rank(loaded, profiles()["p-outreach"], filters=EVERYTHING, today=TODAY)
    excluded = outreach[0].opportunity.id
    cases = [
        (profile_id, filters)
        for profile_id in profiles()
        for filters in (
            EVERYTHING,
            RankFilters(min_days_left=None),
            RankFilters.everything(cvi_only=True),
            RankFilters(statuses=None, min_days_left=None, departments=["HHS"], cvi_only=False),
            RankFilters(statuses=None, min_days_left=None, cvi_only=False, exclude_ids=[excluded]),
        )
    ]
    for _round in range(2):  # the second round reads everything from the cache
        for profile_id, filters in cases:
            alone = rank(loaded, profiles()[profile_id], filters=filters, today=TODAY, limit=50)
            shared = rank(loaded, profiles()[profile_id], filters=filters, today=TODAY, limit=50, cache=cache)
            assert [(m.opportunity.id, m.score, m.explanation.reason) for m in shared] == [
                (m.opportunity.id, m.score, m.explanation.reason) for m in alone
            ], (profile_id, filters)
            if filters.exclude_ids:
                assert excluded not in {m.opportunity.id for m in shared}
    assert cache._rows and cache._allowed
