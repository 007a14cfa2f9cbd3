"""A synthetic federal catalogue for the API benchmark: 85,000 opportunities (about 2,000 open),
generated deterministically and loaded once into a store under bench/out/api/ (reused while the
generator version is unchanged).
"""

from __future__ import annotations

import datetime as dt
import json
import random
import time
from pathlib import Path

from sqlalchemy import update
from sqlalchemy.orm import Session

OUT = Path(__file__).resolve().parent / "out" / "api"
VERSION = "1"
TOTAL = 85_000
OPEN = 2_000

DEPARTMENTS = {
    "DOJ": ["USDOJ-OJP-BJA", "USDOJ-OJP-OJJDP", "USDOJ-OJP-OVC", "USDOJ-COPS"],
    "HHS": ["HHS-CDC-NCIPC", "HHS-SAMHSA", "HHS-HRSA", "HHS-ACF"],
    "DOL": ["DOL-ETA"],
    "ED": ["ED-OESE", "ED-OCTAE"],
    "HUD": ["HUD-CPD"],
    "NSF": ["NSF"],
    "USDA": ["USDA-NIFA"],
    "DOE": ["DOE-EERE"],
}
CVI_PHRASES = [
    "community violence intervention", "street outreach", "hospital-based violence intervention",
    "violence interrupters", "gun violence prevention", "group violence intervention",
    "credible messengers", "trauma-informed victim services", "youth violence prevention",
    "reentry employment for young adults", "focused deterrence", "safe passage for students",
]  # fmt: skip
OTHER_PHRASES = [
    "heliophysics research", "rural broadband", "crop resilience", "energy efficiency retrofits",
    "museum collections", "watershed restoration", "biomedical workforce", "transit planning",
    "housing rehabilitation", "early literacy", "substance use treatment", "digital equity",
    "small business development", "coastal resilience", "advanced manufacturing", "arts education",
]  # fmt: skip
FILLER_TEXT = (
    "applicants will describe partnerships data collection evaluation sustainability budget "
    "narrative performance measures capacity building technical assistance outcomes community "
    "engagement equity implementation timeline staffing training reporting requirements award period "
    "matching funds"
)
FILLER = FILLER_TEXT.split()


def _record(n: int, rng: random.Random, today: dt.date) -> tuple[dict[str, object], bool]:
    department = rng.choice(list(DEPARTMENTS))
    cvi = department in ("DOJ", "HHS", "DOL", "ED") and rng.random() < 0.25
    phrases = rng.sample(CVI_PHRASES if cvi else OTHER_PHRASES, 3)
    open_now = n < OPEN
    if open_now:
        post = today - dt.timedelta(days=rng.randint(0, 60))
        close = today + dt.timedelta(days=rng.randint(1, 120))
        status = "forecasted" if rng.random() < 0.15 else "posted"
    else:
        post = today - dt.timedelta(days=rng.randint(150, 365 * 15))
        close = post + dt.timedelta(days=rng.randint(30, 120))
        status = "archived" if rng.random() < 0.6 else "closed"
    words = [rng.choice(FILLER) for _ in range(rng.randint(80, 140))]
    description = (
        f"This program supports {phrases[0]} and {phrases[1]}. " + " ".join(words) + f" {phrases[2]}."
    )
    ceiling = rng.choice([100_000, 250_000, 500_000, 1_000_000, 2_000_000, 5_000_000])
    record = {
        "id": f"bench-{n}",
        "source": "bench",
        "number": f"{department}-{post.year}-{n:06d}",
        "title": f"{phrases[0].capitalize()} and {phrases[1]} {post.year}",
        "agency": department,
        "sub_agency": rng.choice(DEPARTMENTS[department]),
        "status": status,
        "post_date": post.isoformat(),
        "close_date": close.isoformat(),
        "award_floor": ceiling // 10,
        "award_ceiling": ceiling,
        "total_funding": ceiling * rng.randint(3, 40),
        "expected_awards": rng.randint(1, 40),
        "eligibility_codes": rng.sample(["00", "01", "02", "06", "07", "12", "13", "25"], 3),
        "funding_instruments": ["G"],
        "categories": [rng.choice(["LJL", "HL", "ED", "ELT", "CD", "ST"])],
        "aln": [f"{rng.randint(10, 99)}.{rng.randint(1, 999):03d}"],
        "eligible_applicants": rng.choice(
            ["Units of local government, nonprofits and tribes", "Hospitals in California and Oregon",
             "Nonprofits in Texas only", "State governments", "Local educational agencies"]
        ),
        "description": description,
    }  # fmt: skip
    return record, cvi


def migrate(database_url: str) -> None:
    """``alembic upgrade head`` on the store, every run: a cached store gets new migrations too."""
    from alembic import command
    from alembic.config import Config

    config = Config(str(Path(__file__).resolve().parent.parent / "alembic.ini"))
    config.attributes["database_url"] = database_url
    config.attributes["skip_logging"] = True
    command.upgrade(config, "head")


def _same_store(built: str, wanted: str) -> bool:
    """The marker names the store it describes; a SQLite store copied from another checkout
    (same file under bench/out/api/) is the same store."""
    if built == wanted:
        return True
    prefix = "sqlite:///"
    return (
        built.startswith(prefix)
        and wanted.startswith(prefix)
        and Path(built.removeprefix(prefix)).name == Path(wanted.removeprefix(prefix)).name
        and Path(wanted.removeprefix(prefix)).parent == OUT
    )


def build(database_url: str, index_dir: Path, say: object = print) -> dict[str, object]:
    """Generate and load the catalogue (once); returns what was built and how long it took."""
    from app.db import make_engine
    from app.models import Opportunity
    from app.services.opportunities import upsert_many
    from crawlers.normalize import NormalizedOpportunity
    from matching.keyword import KeywordIndex

    migrate(database_url)
    marker = OUT / "built.json"
    if marker.exists():
        data = json.loads(marker.read_text())
        if data.get("version") == VERSION and _same_store(str(data.get("database_url")), database_url):
            return dict(data)
    started = time.perf_counter()
    rng = random.Random(20261121)
    today = dt.date.today()
    engine = make_engine(database_url)
    cvi_ids: list[str] = []
    with Session(engine) as session:
        batch = []
        for n in range(TOTAL):
            record, cvi = _record(n, rng, today)
            if cvi:
                cvi_ids.append(str(record["id"]))
            batch.append(NormalizedOpportunity.model_validate(record))
            if len(batch) == 1000:
                upsert_many(session, batch)
                session.commit()
                batch.clear()
                if (n + 1) % 10_000 == 0:
                    print(f"  loaded {n + 1:,} opportunities", flush=True)
        if batch:
            upsert_many(session, batch)
            session.commit()
        for start in range(0, len(cvi_ids), 900):
            session.execute(
                update(Opportunity)
                .where(Opportunity.source_id.in_(cvi_ids[start : start + 900]))
                .values(cvi_eligible=True, cvi_classified=True, cvi_score=0.8)
            )
        session.commit()
        loaded = time.perf_counter() - started
        print("  building the keyword index …", flush=True)
        KeywordIndex(index_dir).rebuild(session)
    engine.dispose()
    data = {
        "version": VERSION,
        "database_url": database_url,
        "opportunities": TOTAL,
        "open": OPEN,
        "cvi_eligible": len(cvi_ids),
        "load_seconds": round(loaded, 1),
        "total_seconds": round(time.perf_counter() - started, 1),
    }
    marker.write_text(json.dumps(data))
    return data
