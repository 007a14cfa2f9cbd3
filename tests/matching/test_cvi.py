from __future__ import annotations

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Opportunity
from matching import cvi
from matching.text import ProgramRef

CATALOGUE = cvi.Catalogue({"16.045": ProgramRef("cvipi", "CVI Initiative", "16.045", "CBVIPI")})


def _opp(**kw: object) -> Opportunity:
    data: dict[str, object] = {"title": "Grants", "description": "", "aln": []}
    data.update(kw)
    return Opportunity(**data)


def test_catalogue_listing_names_the_program() -> None:
    result = cvi.score_opportunity(
        _opp(aln=["16.045"], description="Street outreach to stop shootings."), CATALOGUE
    )
    assert result.eligible
    assert any("16.045" in r and "CVI Initiative" in r for r in result.reasons)
    assert any("street outreach" in r for r in result.reasons)


def test_keywords_alone_can_qualify() -> None:
    result = cvi.score_opportunity(
        _opp(
            title="Violence interrupters", description="Hospital-based violence intervention after shootings."
        ),
        CATALOGUE,
    )
    assert result.eligible


def test_traps_and_unrelated() -> None:
    cancer = cvi.score_opportunity(
        _opp(title="Tumor signaling intervention research", description=""), CATALOGUE
    )
    assert not cancer.eligible
    assert cancer.reasons
    wildfire = cvi.score_opportunity(_opp(title="Wildfire defense", description="Reduce fuels."), CATALOGUE)
    assert wildfire.score == 0 and not wildfire.eligible


def test_semantic_evidence() -> None:
    vectors = np.eye(4, dtype=np.float32)
    catalogue = cvi.Catalogue({}, ["street outreach", "x", "y", "z"], vectors)
    close = cvi.score_opportunity(_opp(), catalogue, passage_vectors=vectors[:1])
    assert close.score >= cvi.SEMANTIC_CAP - 1e-6
    assert any("close to CVI work" in r for r in close.reasons)
    far = cvi.score_opportunity(_opp(), catalogue, passage_vectors=np.zeros((1, 4), np.float32))
    assert far.score == 0


def test_evidence_is_not_capped() -> None:
    """The score stops at 1.0; the evidence keeps counting, so CVI money outranks money CVI can use."""
    core = cvi.score_opportunity(
        _opp(
            aln=["16.045"],
            title="Community violence intervention",
            description="Violence interrupters, street outreach, group violence intervention and "
            "hospital-based violence intervention to stop shootings; mentoring and trauma-informed care.",
        ),
        CATALOGUE,
    )
    usable = cvi.score_opportunity(
        _opp(aln=["16.045"], description="Flexible funds; may support community violence intervention."),
        CATALOGUE,
    )
    assert core.score == 1.0 and core.evidence > 1.0
    assert core.evidence <= cvi.MAX_EVIDENCE
    assert usable.evidence == usable.score < core.evidence


def test_override_wins(catalogue: Session) -> None:
    from tests.matching.conftest import import_fixture

    import_fixture(catalogue)
    wildfire = catalogue.scalar(select(Opportunity).where(Opportunity.source_id == "m-wildfire"))
    outreach = catalogue.scalar(select(Opportunity).where(Opportunity.source_id == "m-outreach"))
    assert wildfire is not None and outreach is not None
    assert not wildfire.cvi_eligible and outreach.cvi_eligible
    wildfire.cvi_override = True
    outreach.cvi_override = False
    cvi.rescore(catalogue, [wildfire.id, outreach.id])
    catalogue.commit()
    assert wildfire.cvi_eligible and not wildfire.cvi_classified
    assert not outreach.cvi_eligible and outreach.cvi_classified
    assert outreach.cvi_reasons and outreach.cvi_score is not None
    outreach.cvi_override = None
    cvi.rescore(catalogue)
    assert outreach.cvi_eligible
