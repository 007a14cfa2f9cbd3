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
    assert parsed.empty or parsed.query is not None
    index = KeywordIndex(tmp_path / "ix")
    assert index.search(text) == []  # no index yet: empty, not an error


def test_operators_only_is_empty() -> None:
    assert safe_query("AND OR NOT").empty
    assert safe_query('"" : ( )').empty


def test_query_term_cap() -> None:
    text = " ".join(f"word{i}" for i in range(500))
    parsed = safe_query(text, max_terms=10)
    assert len(parsed.words_by_stem) == 500
    assert parsed.query is not None
    assert len(parsed.query.subqueries) == 10 * 5  # ten stems over five fields


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
