from __future__ import annotations

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Opportunity
from matching.keyword import KeywordIndex, get_index, safe_query
from matching.sync import mark_changed
from tests.matching.conftest import import_fixture, load_catalogue

NASTY = [
    "",
    "   ",
    '"',
    '"unterminated phrase',
    "title:",
    "::::",
    "AND OR NOT",
    "AND",
    "(((",
    ")",
    "*",
    "?",
    "~2",
    "^3",
    "field:value AND (street OR",
    "NOT -+ && || !",
    "[a TO",
    "{}",
    "'",
    "\\",
    "\x00\x01",
    "ünïcödé violence",
    "a" * 5000,
    "outreach " * 3000,
]


@pytest.mark.parametrize("text", NASTY)
def test_safe_query_never_raises(text: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    parsed = safe_query(text)
    assert parsed.empty or parsed.build() is not None
    index = KeywordIndex(tmp_path / "ix")
    assert index.search(text) == []  # no index yet: empty, not an error


def test_operators_only_is_empty() -> None:
    assert safe_query("AND OR NOT").empty
    assert safe_query('"" : ( )').empty


def test_query_keeps_the_most_informative_terms() -> None:
    text = " ".join(f"word{i}" for i in range(500))
    parsed = safe_query(text)
    assert len(parsed.words_by_stem) == 500
    query = parsed.build(None, max_terms=10)
    assert query is not None
    assert len(query.subqueries) == 10 * 3  # ten stems over title, programs and body
    assert parsed.matched_terms("word3 and word7") == ["word3", "word7"]


def test_profile_length_query_keeps_a_word_said_once() -> None:
    """A profile names its work in about 40 informative words: one it says once ("messengers") is still
    searched beside 30 it repeats, where a 24-stem query dropped it."""
    parsed = safe_query(" ".join(f"word{i} word{i}" for i in range(30)) + " credible messengers")
    query = parsed.build(None)
    assert query is not None
    searched = {parsed.words_by_stem[clause.text] for clause in query.subqueries}
    assert {"credible", "messengers"} <= searched


def test_rebuild_search_and_matched_terms(app: Flask, catalogue: Session) -> None:
    import_fixture(catalogue)
    index = get_index(app.config["INDEX_DIR"])
    assert index.rebuild(catalogue) == 12
    hits = index.search("violence interrupters street outreach", limit=5)
    top = catalogue.get(Opportunity, hits[0].opportunity_id)
    assert top is not None and top.source_id == "m-outreach"
    assert {"street", "outreach"} <= set(hits[0].matched_terms)
    # Stemming: "interrupting" finds "interrupters"/"interruption".
    assert any(h.opportunity_id == top.id for h in index.search("interrupting"))
    # Catalogue program names are searchable (field "programs").
    assert index.search("Reentry Employment Test Opportunities")[0].opportunity_id == catalogue.scalar(
        select(Opportunity.id).where(Opportunity.source_id == "m-reentry")
    )
    # filter_ids restricts.
    only = {top.id}
    assert [h.opportunity_id for h in index.search("violence", filter_ids=only)] == [top.id]
    assert index.search("violence", filter_ids=set()) == []
    for text in NASTY:
        index.search(text)
    many = index.search("violence interrupters street outreach", limit=200)
    assert many and all(h.matched_terms == [] for h in many)  # large pages skip term collection


def test_index_follows_commits(app: Flask, catalogue: Session) -> None:
    """Import → after_commit indexes; hiding and merging (via mark_changed) remove from the index."""
    index = get_index(app.config["INDEX_DIR"])
    import_fixture(catalogue)
    assert index.doc_count() == 12
    outreach = catalogue.scalar(select(Opportunity).where(Opportunity.source_id == "m-outreach"))
    assert outreach is not None
    assert outreach.cvi_score is not None and outreach.cvi_eligible  # CVI scored in the same unit of work
    assert index.search("interrupters")[0].opportunity_id == outreach.id

    outreach.hidden = True
    mark_changed(catalogue, [outreach.id])
    catalogue.commit()
    assert all(h.opportunity_id != outreach.id for h in index.search("interrupters"))
    assert index.doc_count() == 11

    school = catalogue.scalar(select(Opportunity).where(Opportunity.source_id == "m-school"))
    assert school is not None
    school.merged_into_id = outreach.id
    mark_changed(catalogue, [school.id])
    catalogue.commit()
    assert index.doc_count() == 10


def test_changed_record_is_reindexed(app: Flask, catalogue: Session) -> None:
    from app.services.opportunities import upsert
    from tests.factories import record

    index = get_index(app.config["INDEX_DIR"])
    upsert(catalogue, record(id="x1", title="Bicycle lanes", description="Paint bicycle lanes."))
    catalogue.commit()
    assert index.search("bicycle")
    upsert(
        catalogue, record(id="x1", title="Credible messenger grants", description="Mentoring by messengers.")
    )
    catalogue.commit()
    assert index.search("bicycle") == []
    assert len(index.search("credible messenger")) == 1


def test_rolled_back_changes_are_forgotten(app: Flask, catalogue: Session) -> None:
    from app.services.opportunities import CHANGED_KEY, upsert
    from tests.factories import record

    upsert(catalogue, record(id="x2", title="Rolled back"))
    catalogue.rollback()
    assert CHANGED_KEY not in catalogue.info
    assert get_index(app.config["INDEX_DIR"]).search("rolled back") == []
    load_catalogue(catalogue)


def test_scores_and_order_equal_whoosh(app: Flask, catalogue: Session) -> None:
    """The numpy BM25F scoring gives Whoosh's own hits, order and scores (within float rounding), on
    a multi-segment index with deleted documents, with and without an id filter, and the same words."""
    import random

    from whoosh.scoring import BM25F

    from app.services.opportunities import upsert
    from tests.factories import record

    rng = random.Random(5)
    vocabulary = [
        "violence",
        "intervention",
        "street",
        "outreach",
        "hospital",
        "credible",
        "messengers",
        "youth",
        "mentoring",
        "reentry",
        "employment",
        "housing",
        "trauma",
        "schools",
        "research",
        "evaluation",
        "prevention",
        "gun",
        "shootings",
        "families",
        "neighborhood",
        "safety",
        "training",
        "workforce",
        "health",
        "clinics",
        "substance",
        "treatment",
        "victims",
        "services",
    ]
    weights = [1 / rank for rank in range(1, len(vocabulary) + 1)]  # a few common words, many rare
    index = get_index(app.config["INDEX_DIR"])
    for batch in range(3):  # three commits: three segments
        for i in range(60):
            words = rng.choices(vocabulary, weights, k=rng.randint(3, 30))
            upsert(
                catalogue,
                record(
                    id=f"eq-{batch}-{i}",
                    number=f"EQ-{batch}-{i}",
                    title=" ".join(rng.choices(vocabulary, weights, k=rng.randint(1, 5))).title(),
                    description=" ".join(words) + ".",
                ),
            )
        catalogue.commit()
    for i in range(0, 60, 7):  # changed records: the old versions are deleted in their segments
        upsert(catalogue, record(id=f"eq-0-{i}", number=f"EQ-0-{i}", title="Changed street outreach"))
    catalogue.commit()

    searcher = index.searcher()
    assert not searcher.is_atomic() and searcher.reader().has_deletions()
    queries = [
        "violence intervention",
        "street outreach hospital credible messengers",
        "youth mentoring and reentry employment for young men",
        '"street outreach" trauma',
        '"violence intervention street" youth',
        "research",
        "shootings",
    ]
    some_ids = [int(i) for i in rng.sample(sorted(index._table(searcher).docnum_by_id), 40)]
    for text in queries:
        parsed = safe_query(text, phrases=["violence intervention"])
        built = parsed.build(searcher)
        assert built is not None
        with index._ix.searcher(weighting=BM25F()) as reference:
            expected = [(int(h["id"]), h.score) for h in reference.search(built, limit=None)]
            found = index.search(parsed, limit=None)
            assert [h.opportunity_id for h in found] == [i for i, _s in expected], text
            assert [h.score for h in found] == pytest.approx([s for _i, s in expected], rel=1e-12)
            top = index.search(parsed, limit=7)
            assert [h.opportunity_id for h in top] == [i for i, _s in expected[:7]]

            allowed = {str(i) for i in some_ids}
            within = [(i, s) for i, s in expected if str(i) in allowed]
            filtered = index.search(parsed, limit=None, filter_ids=some_ids)
            assert [h.opportunity_id for h in filtered] == [i for i, _s in within]

            words = {
                int(h["id"]): {
                    parsed.words_by_stem.get(t.decode(), t.decode()) for _f, t in h.matched_terms()
                }
                for h in reference.search(built, limit=10, terms=True)
            }
            mine = index.search(parsed, limit=10, terms=True)
            assert {h.opportunity_id: set(h.matched_terms) for h in mine} == words
    assert len(index._table(searcher)._postings) > 20  # the term clauses were scored from postings
