"""The search use case: filters, facets, sorts, paging and direct hits on numbers and ALNs."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pytest
from pydantic import ValidationError
from sqlalchemy import update
from sqlalchemy.orm import Session

from app.models import Opportunity
from app.services.opportunities import upsert_many
from app.services.search import SearchParams, search
from tests.factories import record

TODAY = dt.date(2026, 11, 21)


@dataclass
class Hit:
    opportunity_id: int
    score: float
    matched_terms: list[str] = field(default_factory=list)


class FakeKeywordIndex:
    """Scores by how many query words occur in the title; stands in for Whoosh in unit tests."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def search(
        self, query: str, limit: int = 10, filter_ids: object = None, *, terms: bool = True
    ) -> list[Hit]:
        words = query.lower().split()
        hits = []
        for opp in self.session.query(Opportunity):
            found = [w for w in words if w in opp.title.lower()]
            if found:
                hits.append(Hit(opp.id, float(len(found)), found))
        return sorted(hits, key=lambda h: -h.score)[:limit]

    def matched_terms(self, query: str, ids: list[int]) -> dict[int, list[str]]:
        return {
            h.opportunity_id: h.matched_terms
            for h in self.search(query, limit=10_000)
            if h.opportunity_id in ids
        }


@pytest.fixture
def catalogue(session: Session) -> None:
    upsert_many(
        session,
        [
            record(
                id="a",
                number="O-BJA-2026-1",
                title="Community violence intervention",
                close_date="2026-11-30",
            ),
            record(
                id="b",
                number="FOA-ETA-26-01",
                agency="DOL",
                sub_agency="DOL-ETA",
                title="Reentry employment for young adults",
                aln=["17.270"],
                eligibility_codes=["12"],
                categories=["ELT"],
                close_date="2027-01-15",
                award_ceiling=4_000_000,
            ),
            record(
                id="c",
                number="ED-26-3",
                agency="ED",
                sub_agency="ED",
                title="Full-service community schools",
                aln=["84.215J"],
                status="forecasted",
                close_date=None,
                award_ceiling=500_000,
            ),
            record(id="d", number="NASA-1", agency="NASA", sub_agency="NASA", title="Heliophysics research"),
        ],
        now=dt.datetime(2026, 11, 1, tzinfo=dt.UTC),
    )
    # Commit first: matching re-scores changed rows after the commit that changed them.
    session.commit()
    session.execute(update(Opportunity).where(Opportunity.source_id != "d").values(cvi_eligible=True))
    session.commit()


def ids(result: object) -> list[str]:
    return [opp.source_id for opp in result.items]  # type: ignore[attr-defined]


def test_cvi_only_is_on_by_default_and_can_be_turned_off(session: Session, catalogue: None) -> None:
    assert sorted(ids(search(session, SearchParams(), today=TODAY))) == ["a", "b", "c"]
    assert len(ids(search(session, SearchParams(cvi_only=False), today=TODAY))) == 4


def test_filters_combine(session: Session, catalogue: None) -> None:
    params = SearchParams(department=["dol", "DOJ"], closing_within=60)
    assert sorted(ids(search(session, params, today=TODAY))) == ["a", "b"]
    result = search(session, SearchParams(eligibility=["12"], category=["ELT"]), today=TODAY)
    assert ids(result) == ["b"]
    result = search(session, SearchParams(award_min=1_000_000), today=TODAY)
    assert sorted(ids(result)) == ["a", "b"]
    result = search(session, SearchParams(status=["forecasted"]), today=TODAY)
    assert ids(result) == ["c"]


def test_closing_within_window(session: Session, catalogue: None) -> None:
    result = search(session, SearchParams(closing_within=30), today=TODAY)
    assert ids(result) == ["a"]


def test_facets_count_other_filters(session: Session, catalogue: None) -> None:
    result = search(session, SearchParams(department=["DOL"]), today=TODAY)
    departments = {f.value: (f.count, f.selected) for f in result.facets["department"]}
    assert departments == {"DOJ": (1, False), "DOL": (1, True), "ED": (1, False)}
    statuses = {f.value: f.count for f in result.facets["status"]}
    assert statuses == {"posted": 1}
    closing = {f.value: f.count for f in result.facets["closing_within"]}
    assert closing["30"] == 0 and closing["60"] == 1


class EveryHit(FakeKeywordIndex):
    """Every opportunity is a hit: keyword results must then match plain filtering."""

    def search(
        self, query: str, limit: int = 10, filter_ids: object = None, *, terms: bool = True
    ) -> list[Hit]:
        return [Hit(opp.id, 1.0) for opp in self.session.query(Opportunity).order_by(Opportunity.id)]


@pytest.mark.parametrize(
    "filters",
    [
        {"department": ["DOJ", "ED"], "status": ["posted"]},
        {"department": ["DOL"], "cvi_only": False},
        {"status": ["posted", "forecasted"], "closing_within": 60, "eligibility": ["01"]},
        {"department": ["DOJ"], "status": ["closed"], "posted_within": 365, "cvi_only": False},
        {"cvi_only": False},
    ],
)
def test_keyword_facets_equal_sql_facets(
    session: Session, catalogue: None, filters: dict[str, object]
) -> None:
    """The keyword path counts facets from the candidates' rows (reading only rows that fail at most
    one filter); with every opportunity a candidate it must give the SQL path's totals and counts."""
    plain = search(session, SearchParams.model_validate(filters), today=TODAY)
    keyword = search(
        session, SearchParams.model_validate({**filters, "q": "any"}), keyword=EveryHit(session), today=TODAY
    )
    assert keyword.total == plain.total
    assert sorted(o.id for o in keyword.items) == sorted(o.id for o in plain.items)
    # (the two paths may order values of equal count differently)
    assert {k: sorted(v, key=repr) for k, v in keyword.facets.items()} == {
        k: sorted(v, key=repr) for k, v in plain.facets.items()
    }


def test_number_and_aln_find_directly(session: Session, catalogue: None) -> None:
    result = search(session, SearchParams(q="foa-eta-26-01"), today=TODAY)
    assert result.exact is not None and ids(result) == ["b"]
    result = search(session, SearchParams(q="84.215J"), today=TODAY)
    assert ids(result) == ["c"]
    # A number finds its opportunity even when it is not CVI-eligible.
    assert ids(search(session, SearchParams(q="NASA-1"), today=TODAY)) == ["d"]


def test_keyword_relevance_order_and_terms(session: Session, catalogue: None) -> None:
    result = search(
        session, SearchParams(q="community violence"), keyword=FakeKeywordIndex(session), today=TODAY
    )
    assert ids(result) == ["a", "c"]
    assert result.matched_terms[result.items[0].id] == ["community", "violence"]


def test_sorts_and_pages(session: Session, catalogue: None) -> None:
    by_close = search(session, SearchParams(sort="close_date"), today=TODAY)
    assert ids(by_close) == ["a", "b", "c"]
    by_award = search(session, SearchParams(sort="award_ceiling"), today=TODAY)
    assert ids(by_award) == ["b", "a", "c"]
    page2 = search(session, SearchParams(sort="close_date", per_page=2, page=2), today=TODAY)
    assert ids(page2) == ["c"] and page2.total == 3 and page2.pages == 2


@pytest.mark.parametrize(
    ("bad", "field_name"),
    [
        ({"closing_within": 45}, "closing_within"),
        ({"per_page": 1000}, "per_page"),
        ({"status": ["open"]}, "status"),
        ({"sort": "random"}, "sort"),
        ({"award_min": 10, "award_max": 5}, "award_min"),
        ({"page": 0}, "page"),
    ],
)
def test_bad_params_name_the_field(bad: dict[str, object], field_name: str) -> None:
    with pytest.raises(ValidationError) as info:
        SearchParams.model_validate(bad)
    assert field_name in str(info.value)
