from __future__ import annotations

from app.models import Opportunity
from matching.text import PASSAGE_WORDS, ProgramRef, document_text, passages


def _opportunity(**kw: object) -> Opportunity:
    data: dict[str, object] = {
        "title": "Violence Interruption Awards",
        "description": "Pays for street outreach.",
        "department": "DOJ",
        "sub_agency": "OJP-BJA",
        "aln": ["16.045"],
        "eligibility_codes": ["12"],
        "eligible_applicants": "Nonprofits and cities.",
        "categories": ["LJL"],
    }
    data.update(kw)
    return Opportunity(**data)


def test_document_text_has_every_part() -> None:
    programs = {"16.045": ProgramRef("cvipi", "CVI Initiative", "16.045", "Community-Based Violence")}
    text = document_text(_opportunity(), programs)
    for part in (
        "Violence Interruption Awards",
        "street outreach",
        "DOJ",
        "16.045",
        "CVI Initiative",
        "Nonprofits having a 501(c)(3)",
        "Nonprofits and cities",
        "Law, Justice and Legal Services",
    ):
        assert part in text


def test_document_text_without_catalogue() -> None:
    text = document_text(_opportunity(aln=["99.999"]), {})
    assert "Assistance listing 99.999" in text


def test_passages_fit_the_model() -> None:
    long = " ".join(
        f"Sentence number {i} talks about outreach and jobs for young people." for i in range(200)
    )
    chunks = passages(long)
    assert len(chunks) > 5
    assert all(len(c.split()) <= PASSAGE_WORDS for c in chunks)
    assert passages("") == []
    assert passages("short text") == ["short text"]


def test_one_huge_sentence_is_cut_by_words() -> None:
    chunks = passages("word " * 1000)
    assert all(len(c.split()) <= PASSAGE_WORDS for c in chunks)
    assert sum(len(c.split()) for c in chunks) >= 1000
