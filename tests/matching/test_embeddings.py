from __future__ import annotations

from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import Opportunity, PassageEmbedding
from matching import embeddings
from tests.matching.conftest import import_fixture, load_catalogue


class CountingEncoder:
    """Wraps the real encoder and counts what it was asked to embed."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def __call__(self, texts: list[str]) -> np.ndarray:
        self.texts.extend(texts)
        return embeddings.encode(texts)


def test_model_vectors(model: Any) -> None:
    vectors = embeddings.encode(["street outreach to stop shootings", "wildfire fuel reduction"])
    assert vectors.shape == (2, embeddings.DIMENSIONS)
    assert vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    query = embeddings.embed_query("violence interrupters mediate conflicts")
    assert float(vectors[0] @ query) > float(vectors[1] @ query)
    assert embeddings.get_model() is model  # loaded once per process


def test_embed_only_new_or_changed(session: Session, model: Any) -> None:
    from app.services.opportunities import upsert
    from tests.factories import record

    load_catalogue(session)
    import_fixture(session)
    first = CountingEncoder()
    report = embeddings.embed_pending(session, encoder=first)
    passages = session.scalar(select(func.count()).select_from(PassageEmbedding))
    assert report.embedded == len(first.texts) == passages > 0

    again = CountingEncoder()
    report = embeddings.embed_pending(session, encoder=again)
    assert report.embedded == 0 and again.texts == []  # nothing changed: nothing embedded

    upsert(
        session,
        record(
            id="m-wildfire",
            source="fixture",
            agency="USDA",
            title="Community Wildfire Defense Planning",
            description="Now also pays for youth violence prevention crews.",
        ),
    )
    session.commit()
    changed = CountingEncoder()
    report = embeddings.embed_pending(session, encoder=changed)
    assert report.embedded == len(changed.texts) == 1
    assert "youth violence prevention crews" in changed.texts[0]

    wildfire = session.scalar(select(Opportunity).where(Opportunity.source_id == "m-wildfire"))
    assert wildfire is not None
    wildfire.hidden = True
    session.commit()
    report = embeddings.embed_pending(session, encoder=CountingEncoder())
    assert report.removed == 1 and report.embedded == 0
    assert not session.scalar(select(func.count()).where(PassageEmbedding.opportunity_id == wildfire.id))


def test_same_text_reuses_vector(session: Session, model: Any) -> None:
    from app.services.opportunities import upsert
    from tests.factories import record

    upsert(
        session,
        record(
            id="a",
            title="Same",
            description="Identical text",
            aln=[],
            eligibility_codes=[],
            categories=[],
            agency="DOJ",
            sub_agency=None,
            agency_name=None,
        ),
    )
    upsert(
        session,
        record(
            id="b",
            title="Same",
            description="Identical text",
            aln=[],
            eligibility_codes=[],
            categories=[],
            agency="DOJ",
            sub_agency=None,
            agency_name=None,
        ),
    )
    session.commit()
    counting = CountingEncoder()
    embeddings.embed_pending(session, encoder=counting)
    assert len(counting.texts) == 1  # embedded once, stored twice
    assert session.scalar(select(func.count()).select_from(PassageEmbedding)) == 2


def test_matrix_cache_reloads(session: Session, model: Any) -> None:
    embeddings.VECTORS.invalidate()
    load_catalogue(session)
    import_fixture(session)
    assert len(embeddings.VECTORS.get(session)) == 0
    embeddings.embed_pending(session)
    matrix = embeddings.VECTORS.get(session)
    assert len(matrix) > 0
    assert len(matrix.opportunity_ids) == 12
    scores = matrix.scores(embeddings.embed_query("hospital violence intervention at the bedside"))
    best = int(matrix.opportunity_ids[int(np.argmax(scores))])
    top = session.get(Opportunity, best)
    assert top is not None and top.source_id == "m-hvip"


def test_embed_queries_batches_many_profiles_into_one_encode(model: Any) -> None:
    """A digest run embeds all its profiles at once; the vectors equal one-at-a-time embedding."""
    long = "Street outreach workers mediate conflicts. " * 120  # several passages
    texts = ["hospital-based violence intervention", long, "reentry jobs for young adults"]
    alone = []
    for text in texts:
        embeddings._query_cache.pop(text, None)
        alone.append(embeddings.embed_query(text))
        embeddings._query_cache.pop(text, None)
    calls: list[int] = []

    def batched(chunks: list[str]) -> np.ndarray:
        calls.append(len(chunks))
        return embeddings.encode(chunks)

    assert embeddings.embed_queries([*texts, texts[0]], encoder=batched) == 3
    assert len(calls) == 1 and calls[0] > 3  # one encode, the long text split into passages
    for text, vector in zip(texts, alone, strict=True):
        assert np.allclose(embeddings.embed_query(text, encoder=batched), vector, atol=1e-5)
    assert len(calls) == 1  # later lookups are cache hits
    assert embeddings.embed_queries(texts, encoder=batched) == 0


def test_loading_the_model_leaves_numpy_one_blas_thread(model: Any, monkeypatch: Any) -> None:
    """numpy's spinning BLAS threads would slow the model's own threads down right after a ranking."""
    from threadpoolctl import threadpool_info, threadpool_limits

    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    with threadpool_limits(limits=2, user_api="blas"):
        embeddings._one_blas_thread()
        blas = [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]
        assert blas and all(n == 1 for n in blas)
    monkeypatch.setenv("OMP_NUM_THREADS", "2")  # an operator's choice wins
    with threadpool_limits(limits=2, user_api="blas"):
        before = [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]
        embeddings._one_blas_thread()
        assert [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"] == before
