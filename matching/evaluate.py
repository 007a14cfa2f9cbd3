"""Evaluate the ranker (contract in DESIGN.md).

``python -m matching.evaluate --opportunities O.jsonl --profiles P.jsonl [--qrels Q.tsv]
[--method hybrid|keyword|semantic] [--compare] [--catalogue seeds/cvi_programs.json] --out RUN.json``

Loads the opportunities into a fresh temporary store through the product's own import (the
after-commit hook indexes them and scores CVI), embeds them with the product's embedding code,
ranks every profile with the site's ranker (no deadline filter: evaluation sets hold closed
records) and writes ``{"rankings": {profile: [opportunity id, … top 50]}, "cvi": {opportunity id:
{"eligible", "score"}}}``. With ``--qrels`` it prints NDCG@10, recall@20 (grade ≥ 2) and P@5
(grade ≥ 2); ``--compare`` prints keyword, semantic and hybrid side by side.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CATALOGUE = ROOT / "seeds" / "cvi_programs.json"
TOP = 50
METHODS = ("keyword", "semantic", "hybrid")
RELEVANT = 2


@dataclass
class Metrics:
    ndcg10: float
    recall20: float
    p5: float
    profiles: int

    def line(self, label: str) -> str:
        return (
            f"{label:<9} NDCG@10 {self.ndcg10:.3f}   recall@20 (grade>=2) {self.recall20:.3f}   "
            f"P@5 {self.p5:.3f}   ({self.profiles} profiles)"
        )


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    """``profile_id  opp_id  grade  note`` (tab-separated, with a header); missing pairs are grade 0."""
    qrels: dict[str, dict[str, int]] = {}
    for number, line in enumerate(_utf8_lines(path), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t")
        if number == 1 and parts[0].strip() == "profile_id":
            continue
        if len(parts) < 3:
            raise SystemExit(f"{path}:{number}: expected profile_id, opp_id, grade, note")
        try:
            grade = int(parts[2])
        except ValueError:
            raise SystemExit(f"{path}:{number}: grade {parts[2]!r} is not a whole number") from None
        qrels.setdefault(parts[0].strip(), {})[parts[1].strip()] = grade
    return qrels


def ndcg(ranking: Sequence[str], grades: dict[str, int], k: int = 10) -> float:
    def gain(grade: int) -> float:
        return float(2**grade - 1)

    dcg = sum(gain(grades.get(opp, 0)) / math.log2(i + 2) for i, opp in enumerate(ranking[:k]))
    ideal = sorted(grades.values(), reverse=True)[:k]
    idcg = sum(gain(g) / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def metrics(rankings: dict[str, list[str]], qrels: dict[str, dict[str, int]]) -> Metrics:
    ndcgs, recalls, precisions = [], [], []
    for profile_id, grades in qrels.items():
        ranking = rankings.get(profile_id, [])
        relevant = {o for o, g in grades.items() if g >= RELEVANT}
        if any(g > 0 for g in grades.values()):
            ndcgs.append(ndcg(ranking, grades))
        if relevant:
            recalls.append(len(relevant & set(ranking[:20])) / len(relevant))
            precisions.append(sum(1 for o in ranking[:5] if grades.get(o, 0) >= RELEVANT) / 5)
    return Metrics(_mean(ndcgs), _mean(recalls), _mean(precisions), len(ndcgs))


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


@contextmanager
def temporary_store(catalogue: Path | None) -> Iterator[tuple[Any, Any, str]]:
    """A fresh app on a temporary SQLite store (migrated), with the catalogue loaded."""
    from alembic import command
    from alembic.config import Config

    from app import create_app
    from app.db import db_session
    from app.services.seeding import load_cvi_programs

    with tempfile.TemporaryDirectory(prefix="cvi-eval-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'eval.db'}"
        config = Config(str(ROOT / "alembic.ini"))
        config.attributes["database_url"] = url
        config.attributes["skip_logging"] = True
        command.upgrade(config, "head")
        index_dir = str(Path(tmp) / "index")
        app = create_app({"DATABASE_URL": url, "INDEX_DIR": index_dir, "TESTING": True})
        with app.app_context():
            session = db_session()
            if catalogue is not None and catalogue.exists():
                load_cvi_programs(session, catalogue)
                session.commit()
            try:
                yield app, session, index_dir
            finally:
                session.close()
                app.extensions["database"].engine.dispose()


def load_opportunities(session: Any, index_dir: str, path: Path, say: Any, encoder: Any = None) -> None:
    from app.services.transfer import import_lines
    from matching.sync import reindex

    with path.open(encoding="utf-8", errors="replace") as stream:
        report = import_lines(session, stream, default_source="eval")
    for error in report.errors:
        say(f"{path}:{error.line}: skipped: {error.message}")
    say(f"loaded {report.result.new + report.result.updated + report.result.unchanged} opportunities")
    reindex(session, index_dir, full=True, say=say, encoder=encoder)


def read_profiles(path: Path) -> list[dict[str, Any]]:
    out = []
    for number, line in enumerate(_utf8_lines(path), start=1):
        if line.strip():
            try:
                data = json.loads(line)
            except json.JSONDecodeError as exc:
                raise SystemExit(f"{path}:{number}: not valid JSON ({exc.msg})") from exc
            if not isinstance(data, dict):
                raise SystemExit(f"{path}:{number}: a profile must be a JSON object")
            out.append(data)
    return out


def _utf8_lines(path: Path) -> list[str]:
    """The file's lines; a file that is not UTF-8 stops the run naming the first bad line."""
    lines = path.read_bytes().splitlines()
    for number, raw in enumerate(lines, start=1):
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SystemExit(f"{path}:{number}: not UTF-8 ({exc.reason} at byte {exc.start})") from None
    return [raw.decode("utf-8") for raw in lines]


def run(
    session: Any, index_dir: str, profiles: list[dict[str, Any]], method: str, cvi_only: bool, say: Any
) -> dict[str, list[str]]:
    from matching.profile import MatchingError, ProfileInput
    from matching.ranker import RankFilters, rank

    rankings: dict[str, list[str]] = {}
    for data in profiles:
        profile_id = str(data.get("id"))
        try:
            profile = ProfileInput.parse(data)
            matches = rank(
                session,
                profile,
                filters=RankFilters.everything(cvi_only=cvi_only),
                limit=TOP,
                method=method,
                index_dir=index_dir,
            )
        except MatchingError as exc:
            say(f"profile {profile_id}: {exc}")
            rankings[profile_id] = []
            continue
        rankings[profile_id] = [m.opportunity.source_id for m in matches]
    return rankings


def cvi_table(session: Any) -> dict[str, dict[str, Any]]:
    from sqlalchemy import select

    from app.models import Opportunity

    return {
        o.source_id: {"eligible": bool(o.cvi_eligible), "score": float(o.cvi_score or 0.0)}
        for o in session.scalars(select(Opportunity).order_by(Opportunity.id))
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m matching.evaluate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--opportunities", type=Path, required=True)
    parser.add_argument("--profiles", type=Path, required=True)
    parser.add_argument("--qrels", type=Path)
    parser.add_argument("--method", choices=("hybrid", "keyword", "semantic"), default="hybrid")
    parser.add_argument("--compare", action="store_true", help="Also rank with the other two methods.")
    parser.add_argument("--catalogue", type=Path, default=DEFAULT_CATALOGUE, help="CVI program catalogue.")
    parser.add_argument("--cvi-only", action="store_true", help="Rank only CVI-eligible opportunities.")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)

    def say(message: str) -> None:
        if not args.quiet:
            print(message, file=sys.stderr, flush=True)

    for path in (args.opportunities, args.profiles, args.qrels):
        if path is not None and not path.exists():
            parser.error(f"{path} does not exist")
    if not args.catalogue.exists():
        say(f"catalogue {args.catalogue} not found: CVI scores use text evidence only")
    started = time.perf_counter()
    profiles = read_profiles(args.profiles)
    qrels = read_qrels(args.qrels) if args.qrels else None
    with temporary_store(args.catalogue) as (_app, session, index_dir):
        load_opportunities(session, index_dir, args.opportunities, say)
        methods = ["keyword", "semantic", "hybrid"] if args.compare else [args.method]
        if args.compare and args.method not in methods:
            methods.append(args.method)
        results = {m: run(session, index_dir, profiles, m, args.cvi_only, say) for m in methods}
        payload = {"rankings": results[args.method], "cvi": cvi_table(session)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    say(f"wrote {args.out} ({len(profiles)} profiles) in {time.perf_counter() - started:.0f} s")
    if qrels is not None:
        for method in methods:
            print(metrics(results[method], qrels).line(method))
    return 0


if __name__ == "__main__":
    sys.exit(main())
