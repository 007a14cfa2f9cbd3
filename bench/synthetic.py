"""A cached store of N synthetic-but-realistic opportunities, for benchmarks.

Built once under ``bench/out/synthetic-<N>/`` (SQLite store through the Alembic migrations and the
product's own ``upsert_many``, the Whoosh keyword index, and one synthetic unit vector per
opportunity in ``passage_embeddings``) and reused by every bench that asks for the same N.
Realistic shape: departments, sub-agencies, Grants.gov codes and ALNs in federal proportions;
about 2,000 posted or forecasted and the rest closed or archived; ~6% CVI-eligible.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent / "out"
SEED = 20261121

DEPARTMENTS = [
    ("HHS", "HHS-CDC", "Centers for Disease Control and Prevention", "93.136", 30),
    ("HHS", "HHS-SAMHS", "Substance Abuse and Mental Health Services Administration", "93.243", 15),
    ("DOJ", "USDOJ-OJP-BJA", "Bureau of Justice Assistance", "16.045", 10),
    ("DOJ", "USDOJ-OJP-OJJDP", "Office of Juvenile Justice and Delinquency Prevention", "16.540", 8),
    ("DOL", "DOL-ETA", "Employment and Training Administration", "17.270", 6),
    ("ED", "ED-OESE", "Office of Elementary and Secondary Education", "84.215J", 8),
    ("HUD", "HUD", "Department of Housing and Urban Development", "14.218", 5),
    ("NSF", "NSF", "National Science Foundation", "47.076", 10),
    ("USDA", "USDA-NIFA", "National Institute of Food and Agriculture", "10.310", 8),
]
TOPICS = {
    "cvi": "community violence intervention street outreach hospital-based violence intervention credible "
    "messengers conflict mediation gun violence reduction youth at risk reentry trauma-informed services",
    "health": "public health surveillance chronic disease prevention maternal health substance use treatment "
    "behavioral health workforce rural clinics data modernization",
    "education": "full-service community schools student support mentoring after-school programs family "
    "engagement school climate teacher training",
    "jobs": "workforce training apprenticeships employment services young adults career pathways reentry "
    "employment supportive services",
    "science": "research instrumentation graduate fellowships climate modeling heliophysics materials "
    "science agricultural research soil health crop genetics",
}
CODES = ["00", "01", "02", "04", "05", "06", "07", "08", "11", "12", "13", "20", "22", "23", "25", "99"]
CATEGORIES = ["HL", "LJL", "ED", "ELT", "ISS", "CD", "ST", "AG", "HO"]


@dataclass(frozen=True)
class SyntheticStore:
    n: int
    url: str
    index_dir: str
    directory: Path


def _records(n: int, today: dt.date) -> list[dict[str, object]]:
    rng = random.Random(SEED)
    weights = [d[4] for d in DEPARTMENTS]
    words = {k: v.split() for k, v in TOPICS.items()}
    out = []
    open_every = max(1, n // 2000)
    for i in range(n):
        dep, sub, name, aln, _w = rng.choices(DEPARTMENTS, weights)[0]
        topic = "cvi" if rng.random() < 0.08 else rng.choice(list(TOPICS))
        body = " ".join(rng.choices(words[topic], k=60) + rng.choices(words[rng.choice(list(TOPICS))], k=20))
        is_open = i % open_every == 0
        if is_open:
            status = "forecasted" if rng.random() < 0.25 else "posted"
            post = today - dt.timedelta(days=rng.randint(0, 60))
            close = None if status == "forecasted" else today + dt.timedelta(days=rng.randint(3, 120))
        else:
            status = "closed" if rng.random() < 0.3 else "archived"
            post = today - dt.timedelta(days=rng.randint(120, 15 * 365))
            close = post + dt.timedelta(days=rng.randint(30, 90))
        ceiling = rng.choice([100_000, 250_000, 500_000, 1_000_000, 2_000_000, 5_000_000])
        out.append(
            {
                "id": f"syn-{i}",
                "source": "synthetic",
                "number": f"SYN-{dep}-{post.year}-{i:06d}",
                "title": f"{topic.capitalize()} program {' '.join(rng.choices(words[topic], k=5))}",
                "agency": dep,
                "sub_agency": sub,
                "agency_name": name,
                "aln": [aln],
                "status": status,
                "post_date": post.isoformat(),
                "close_date": close.isoformat() if close else None,
                "award_floor": ceiling // 10,
                "award_ceiling": ceiling,
                "eligibility_codes": rng.sample(CODES, k=rng.randint(1, 5)),
                "funding_instruments": [rng.choice(["G", "CA"])],
                "categories": [rng.choice(CATEGORIES)],
                "description": body,
                "_cvi": topic == "cvi",
            }
        )
    return out


def build_store(n: int = 85_000, *, today: dt.date | None = None, say=print) -> SyntheticStore:  # type: ignore[no-untyped-def]
    """The cached store for ``n`` opportunities (built on first use; a few minutes for 85,000)."""
    directory = OUT / f"synthetic-{n}"
    db_path = directory / "store.db"
    store = SyntheticStore(n, f"sqlite:///{db_path}", str(directory / "index"), directory)
    marker = directory / "done.json"
    from alembic import command
    from alembic.config import Config

    root = Path(__file__).resolve().parent.parent
    config = Config(str(root / "alembic.ini"))
    config.attributes["database_url"] = store.url
    config.attributes["skip_logging"] = True
    if marker.exists():
        command.upgrade(config, "head")  # every run: a cached store gets new migrations too
        return store
    from sqlalchemy import insert, update
    from sqlalchemy.orm import Session

    from app.db import make_engine
    from app.models import Opportunity, PassageEmbedding
    from app.services.opportunities import upsert_many
    from crawlers.normalize import NormalizedOpportunity
    from matching.embeddings import DIMENSIONS, MODEL_NAME
    from matching.keyword import KeywordIndex

    directory.mkdir(parents=True, exist_ok=True)
    db_path.unlink(missing_ok=True)
    command.upgrade(config, "head")
    engine = make_engine(store.url)
    today = today or dt.date.today()
    started = time.perf_counter()
    records = _records(n, today)
    cvi_sources = [str(r["id"]) for r in records if r.pop("_cvi")]
    with Session(engine) as session:
        for start in range(0, n, 2000):
            batch = [NormalizedOpportunity.model_validate(r) for r in records[start : start + 2000]]
            upsert_many(session, batch)
            session.commit()
        for start in range(0, len(cvi_sources), 900):
            session.execute(
                update(Opportunity)
                .where(Opportunity.source_id.in_(cvi_sources[start : start + 900]))
                .values(
                    cvi_eligible=True,
                    cvi_classified=True,
                    cvi_score=0.8,
                    cvi_evidence=0.8,
                    cvi_reasons=["Names community violence intervention activities"],
                )
            )
        session.commit()
        say(f"  loaded {n:,} opportunities in {time.perf_counter() - started:.0f} s")
        rng = np.random.default_rng(SEED)
        ids = [
            row[0]
            for row in session.execute(Opportunity.__table__.select().with_only_columns(Opportunity.id))
        ]
        for start in range(0, len(ids), 5000):
            chunk = ids[start : start + 5000]
            vectors = rng.standard_normal((len(chunk), DIMENSIONS)).astype(np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            session.execute(
                insert(PassageEmbedding),
                [
                    {
                        "opportunity_id": opp_id,
                        "passage_index": 0,
                        "model": MODEL_NAME,
                        "text_hash": hashlib.sha256(f"{opp_id}".encode()).hexdigest(),
                        "passage": "Synthetic passage.",
                        "vector": vec.tobytes(),
                    }
                    for opp_id, vec in zip(chunk, vectors, strict=True)
                ],
            )
        session.commit()
        say(f"  synthetic vectors written at {time.perf_counter() - started:.0f} s")
        KeywordIndex(store.index_dir).rebuild(session)
        say(f"  keyword index built at {time.perf_counter() - started:.0f} s")
    engine.dispose()
    marker.write_text(
        json.dumps({"n": n, "built": dt.datetime.now(dt.UTC).isoformat(), "today": today.isoformat()})
    )
    return store
