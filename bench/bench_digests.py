"""Digest build for 1,000 users x 3 subscriptions over a 5,000-opportunity catalogue, beside the matcher.

The catalogue is generated once and cached under ``bench/out/`` (SQLite store + Whoosh index):
5,000 opportunities across DOJ, DOL, ED and HHS, of which 150 arrived in the last day and 30
forecasts became posted; 250 organizations with one program profile each and 8 tracked opportunities
(some with moved deadlines, some closing at a reminder lead time); 1,000 users (4 per organization),
each subscribed daily to their own saved search, their organization's profile and its tracked list.

Passage vectors are stored with a deterministic hash encoder (embedding 5,000 opportunities with the
real model takes minutes and changes nothing about the cost of a ranking); profile queries are
embedded by the real model, as in production. The model is loaded before timing.

Measured in this run:
* build: ``build_digests(..., dry_run=True)`` — every digest built and rendered (HTML and text),
  nothing written or sent; first with the saved-search and tracked subscriptions only (median of 3,
  beside the same ``search()`` calls run alone), then with all three subscriptions per user, twice,
  each beside its ``search()``/``rank()`` calls timed one by one (plus ``rank()`` per profile for 20
  profiles): cold (no profile vector stored and none in the process: all 250 profiles embedded in the
  build), and as in production, where the nightly re-index stored each profile's vector (only profiles
  edited since are embedded by the run).

Targets (issue 6, judged on both builds with all three subscriptions): build <= 30 s; build / matcher
calls alone <= 1.5. The saved-search + tracked build is printed as a breakdown of the overhead.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import random
import shutil
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out" / "digests-v2"
OPPORTUNITIES = 5_000
USERS = 1_000
USERS_PER_ORG = 4
NEW = 150
NOW = dt.datetime(2026, 11, 2, 12, 0, tzinfo=dt.UTC)
BUILD_TARGET_S = 30.0
RATIO_TARGET = 1.5

#: Topic words: each opportunity and profile is about one or two of these clusters.
TOPICS = [
    "street outreach violence interrupters conflict mediation",
    "hospital based violence intervention trauma care",
    "youth mentoring afterschool programs",
    "reentry employment workforce training apprenticeship",
    "victim services counseling family support",
    "school safety mental health counseling",
    "gun violence prevention public safety",
    "substance use treatment recovery housing",
    "tribal justice public safety",
    "data evaluation technical assistance capacity building",
]


def _vocabulary() -> list[str]:
    """A Zipf-shaped general vocabulary of made-up words, like the long tail of real NOFO text."""
    rng = random.Random(11)
    letters = "abcdefghijklmnoprstuvw"
    return ["".join(rng.choice(letters) for _ in range(rng.randint(4, 10))) for _ in range(12_000)]


VOCABULARY = _vocabulary()
ZIPF = [1.0 / (rank + 1) ** 1.05 for rank in range(len(VOCABULARY))]
PHRASES = [
    "street outreach",
    "hospital violence",
    "youth mentoring",
    "reentry employment",
    "victim services",
    "school safety",
    "trauma care",
    "gun violence",
    "workforce training",
    "conflict mediation",
    "mental health youth",
    "tribal public safety",
    "family support",
    "case management",
    "apprenticeship",
]
DEPARTMENTS = ["DOJ", "DOL", "ED", "HHS"]


def _text(rng: random.Random, n: int) -> str:
    """``n`` words of general text with a topic or two woven in."""
    words = rng.choices(VOCABULARY, weights=ZIPF, k=n)
    for topic in rng.sample(TOPICS, rng.choice([1, 1, 2])):
        for word in topic.split():
            words.insert(rng.randrange(len(words) + 1), word)
    return " ".join(words).capitalize() + "."


def fake_encoder(texts: list[str]) -> np.ndarray:
    """Deterministic unit vectors from text hashes: same cost downstream as real embeddings."""
    rows = []
    for text in texts:
        seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
        vector = np.random.default_rng(seed).standard_normal(384).astype(np.float32)
        rows.append(vector / np.linalg.norm(vector))
    return np.vstack(rows) if rows else np.zeros((0, 384), dtype=np.float32)


def _app(db: Path) -> Any:
    from app import create_app

    return create_app(
        {
            "DATABASE_URL": f"sqlite:///{db}",
            "INDEX_DIR": str(OUT / "index"),
            "SECRET_KEY": "bench-secret",
            "BASE_URL": "https://cvi.example.org",
            "DIGEST_TIMEZONE": "America/New_York",
            "LOG_LEVEL": "WARNING",
        }
    )


def _migrate(db: Path) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["database_url"] = f"sqlite:///{db}"
    config.attributes["skip_logging"] = True
    command.upgrade(config, "head")


def build_store(db: Path) -> None:
    """Generate the catalogue, accounts and subscriptions (once; cached)."""
    from alembic import command
    from alembic.config import Config

    from app.db import db_session
    from app.models import (
        AlertSubscription,
        Frequency,
        Opportunity,
        Organization,
        ProgramProfile,
        SavedSearch,
        SubscriptionKind,
        TrackedOpportunity,
        User,
    )
    from app.services.opportunities import upsert_many
    from crawlers.normalize import NormalizedOpportunity
    from matching.sync import reindex

    OUT.mkdir(parents=True, exist_ok=True)
    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["database_url"] = f"sqlite:///{db}"
    config.attributes["skip_logging"] = True
    command.upgrade(config, "head")
    rng = random.Random(7)
    app = _app(db)
    today = NOW.date()
    with app.app_context():
        session = db_session()

        def record(i: int, **over: Any) -> NormalizedOpportunity:
            data: dict[str, Any] = {
                "id": f"b-{i}",
                "source": "bench",
                "number": f"O-BENCH-{i:05d}",
                "title": _text(rng, 3).title(),
                "agency": DEPARTMENTS[i % 4],
                "status": "forecasted" if i % 50 == 0 else "posted",
                "close_date": str(today + dt.timedelta(days=10 + i % 200)),
                "award_ceiling": rng.choice([250_000, 500_000, 1_000_000, 2_000_000]),
                "eligibility_codes": ["25", "12"],
                "description": _text(rng, 180),
            }
            data.update(over)
            return NormalizedOpportunity.model_validate(data)

        old = [record(i) for i in range(OPPORTUNITIES - NEW)]
        for start in range(0, len(old), 500):
            upsert_many(session, old[start : start + 500], now=NOW - dt.timedelta(days=30))
            session.commit()
        upsert_many(
            session,
            [record(i) for i in range(OPPORTUNITIES - NEW, OPPORTUNITIES)],
            now=NOW - dt.timedelta(hours=12),
        )
        # 30 forecasts open; 60 opportunities move their deadline.
        opened = [record(i, status="posted") for i in range(0, 1500, 50)]
        moved = [record(i, close_date=str(today + dt.timedelta(days=40 + i % 30))) for i in range(1, 600, 10)]
        session.commit()
        upsert_many(session, opened + moved, now=NOW - dt.timedelta(hours=6))
        session.commit()
        session.query(Opportunity).update({"cvi_override": True, "cvi_eligible": True})
        session.commit()
        reindex(session, str(OUT / "index"), full=True, encoder=fake_encoder)
        session.query(Opportunity).update({"cvi_override": True, "cvi_eligible": True})
        session.commit()

        ids = [row for (row,) in session.query(Opportunity.id).order_by(Opportunity.id)]
        for org_no in range(USERS // USERS_PER_ORG):
            org = Organization(name=f"Office of Violence Prevention {org_no}", org_type="city government")
            session.add(org)
            session.flush()
            profile = ProgramProfile(
                organization_id=org.id,
                name=f"Program {org_no}",
                org_type="nonprofit",
                program_description=_text(rng, 40),
                focus_areas=rng.sample(PHRASES, 2),
                populations=["young adults"],
            )
            session.add(profile)
            # Tracked: some with moved deadlines (ids 2, 12, … are in ``moved``), some at lead times.
            tracked = {ids[1 + 10 * rng.randrange(60)], ids[rng.randrange(len(ids))]}
            tracked |= {ids[rng.randrange(len(ids))] for _ in range(6)}
            for opp_id in tracked:
                session.add(TrackedOpportunity(organization_id=org.id, opportunity_id=opp_id))
            session.flush()
            for n in range(USERS_PER_ORG):
                user = User(email=f"user{org_no}-{n}@example.org", password_hash="x", organization_id=org.id)
                session.add(user)
                session.flush()
                query: dict[str, Any] = {"q": rng.choice(PHRASES)}
                if n % 2:
                    query["department"] = [DEPARTMENTS[(org_no + n) % 4]]
                if n % 3 == 0:
                    query["closing_within"] = rng.choice([30, 60, 90])
                saved = SavedSearch(user_id=user.id, name=f"Search {n}", query=query)
                session.add(saved)
                session.flush()
                since = NOW - dt.timedelta(days=1)
                for kind, extra in (
                    (SubscriptionKind.SAVED_SEARCH, {"saved_search_id": saved.id}),
                    (SubscriptionKind.PROGRAM_PROFILE, {"profile_id": profile.id}),
                    (SubscriptionKind.TRACKED, {}),
                ):
                    session.add(
                        AlertSubscription(
                            user_id=user.id,
                            kind=kind,
                            frequency=Frequency.DAILY,
                            created_at=NOW - dt.timedelta(days=60),
                            last_digest_at=since,
                            **extra,
                        )
                    )
        session.commit()


def _matcher_alone(
    session: Any, app: Any, matcher: Any, keyword: Any, kinds: set[str], sample: int | None = None
) -> tuple[float, list[float]]:
    """The same search()/rank() calls a build makes (one per distinct target), timed alone."""
    from app.models import AlertSubscription, ProgramProfile, SavedSearch, SubscriptionKind
    from app.services import digests, search

    reference = digests.builder_from_config(session, app.config, matcher=matcher, keyword=keyword)
    new_ids, posted, _ = reference._window_data(NOW - dt.timedelta(days=1))
    candidates = new_ids | posted
    subs = session.query(AlertSubscription).all()
    queries = {}
    for sub in subs:
        if sub.kind == SubscriptionKind.SAVED_SEARCH and sub.active and "search" in kinds:
            saved = session.get(SavedSearch, sub.saved_search_id)
            queries[repr(sorted(saved.query.items()))] = saved.query
    profiles = sorted(
        {s.profile_id for s in subs if s.kind == SubscriptionKind.PROGRAM_PROFILE and "profile" in kinds}
    )[:sample]
    started = time.perf_counter()
    restricted = digests._AmongCandidates(keyword, candidates)
    for query in queries.values():
        params = search.SearchParams.model_validate({**query, "per_page": 100, "sort": "close_date"})
        search.search(
            session, params, keyword=restricted, today=reference.today, with_facets=False, only_ids=candidates
        )
    per_profile = []
    for profile_id in profiles:
        profile = session.get(ProgramProfile, profile_id)
        one = time.perf_counter()
        matcher.matches(session, profile, digests.PROFILE_MATCH_LIMIT)
        per_profile.append(time.perf_counter() - one)
    return time.perf_counter() - started, per_profile


def _report(label: str, run: Any, build: float, alone: float, *, judged: bool = True) -> bool:
    ratio = build / alone if alone else float("inf")
    sections = sum(len(d.sections) for d in run.digests)
    print(f"[{label}]")
    print(
        f"  users {run.users}, digests built {run.built} ({sections} match sections, "
        f"{sum(len(d.changes) for d in run.digests)} tracked changes, "
        f"{sum(len(d.reminders) for d in run.digests)} reminders), nothing new for {run.empty}; "
        f"{run.matcher_calls} matcher calls"
    )
    target = f"target <= {BUILD_TARGET_S:.0f} s" if judged else "(breakdown, not the target)"
    print(f"  build:                 {build:8.2f} s   {target}")
    print(f"  matcher calls alone:   {alone:8.2f} s   (timed inside the build: {run.matcher_seconds:.2f} s)")
    print(f"  build / matcher alone: {ratio:8.2f}     {f'target <= {RATIO_TARGET}' if judged else ''}")
    print(f"  per digest: {1000 * build / max(run.built, 1):.1f} ms")
    return build <= BUILD_TARGET_S and ratio <= RATIO_TARGET


def main() -> int:
    import time_machine

    from app import jobs
    from app.db import db_session
    from app.models import AlertSubscription, Frequency, ProgramProfile, SubscriptionKind
    from app.services import digests
    from matching import embeddings

    db = OUT / "store.db"
    ready = OUT / "ready"
    if not ready.exists():
        started = time.perf_counter()
        print("generating the catalogue and accounts (cached in bench/out/digests-v2) …", flush=True)
        if OUT.exists():
            shutil.rmtree(OUT)
        build_store(db)
        ready.write_text("ok")
        print(f"  done in {time.perf_counter() - started:.0f} s", flush=True)
    _migrate(db)  # every run: a cached store gets new migrations too
    app = _app(db)
    embeddings.embed_query("warm up the model")  # loaded once per process, as in the scheduler
    print(f"catalogue {OPPORTUNITIES} opportunities, {NEW} new and 30 forecasts opened in the window;")
    print(f"{USERS} users in {USERS // USERS_PER_ORG} organizations, 3 daily subscriptions each", flush=True)
    results = []
    with app.app_context(), time_machine.travel(NOW, tick=False):
        session = db_session()
        matcher = jobs.profile_matcher()
        keyword = jobs.keyword_index(app.config)
        assert matcher is not None and keyword is not None
        # 1. Saved searches and tracked lists only (the profile subscriptions switched off, rolled back).
        session.query(AlertSubscription).filter(
            AlertSubscription.kind == SubscriptionKind.PROGRAM_PROFILE
        ).update({"active": False})
        builds, alones = [], []
        for _ in range(3):
            builder = digests.builder_from_config(session, app.config, matcher=matcher, keyword=keyword)
            started = time.perf_counter()
            run = digests.build_digests(session, builder, Frequency.DAILY, dry_run=True, keep=True)
            builds.append(time.perf_counter() - started)
            session.query(AlertSubscription).filter(
                AlertSubscription.kind == SubscriptionKind.PROGRAM_PROFILE
            ).update({"active": False})
            alones.append(_matcher_alone(session, app, matcher, keyword, {"search"})[0])
        # A breakdown: the target is the build with all three subscriptions (below).
        _report(
            "saved searches + tracked only, median of 3",
            run,
            statistics.median(builds),
            statistics.median(alones),
            judged=False,
        )
        session.rollback()
        # 2. All three subscriptions per user (one build: each distinct profile is ranked once), twice:
        #    cold (no profile vector stored, none in this process: every profile embedded in the run),
        #    then as in production, after the nightly re-index stored every profile's vector.
        for label, stored in (
            ("cold: every profile embedded in the build", False),
            ("profile vectors stored by the nightly re-index", True),
        ):
            session.query(ProgramProfile).update({"query_vector": None, "query_vector_key": None})
            session.commit()
            embeddings._query_cache.clear()  # the re-index runs in a process of its own
            if stored:
                started = time.perf_counter()
                _reused, embedded = embeddings.refresh_profiles(session)
                session.commit()
                print(
                    f"(nightly re-index: {embedded} profile vectors embedded and stored in "
                    f"{time.perf_counter() - started:.1f} s, not part of the build)"
                )
            embeddings._query_cache.clear()  # a fresh scheduler process
            builder = digests.builder_from_config(session, app.config, matcher=matcher, keyword=keyword)
            started = time.perf_counter()
            run = digests.build_digests(session, builder, Frequency.DAILY, dry_run=True, keep=True)
            build = time.perf_counter() - started
            # The matcher calls are timed one by one inside this build (a second full run would double
            # a bench dominated by rank()); a sample of profiles is ranked alone for the per-call figure.
            results.append(_report(f"all 3 subscriptions, {label}", run, build, run.matcher_seconds))
        _alone, per_profile = _matcher_alone(session, app, matcher, keyword, {"profile"}, sample=20)
        per_profile.sort()
        print(
            f"  rank() per profile alone: median {statistics.median(per_profile):.3f} s, "
            f"p95 {per_profile[int(0.95 * (len(per_profile) - 1))]:.3f} s over {len(per_profile)} profiles"
        )
        session.query(ProgramProfile).update({"query_vector": None, "query_vector_key": None})
        session.commit()
    return 0 if all(results) else 1


if __name__ == "__main__":
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    raise SystemExit(main())
