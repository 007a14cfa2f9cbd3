"""``ingest-extract`` at full scale against lxml parse-only time of the same file, same run.

A synthetic Grants.gov extract with the real schema (namespace, element order, repeatable elements,
``MMDDYYYY`` dates, escaped HTML descriptions, double-escaped contact text) and realistic text lengths
is generated once (85,000 records) and cached under ``bench/out/``. Then, in this run:

* parse-only: ``lxml.etree.iterparse`` over the file, clearing elements (median of 3);
* ``flask ingest-extract`` in a subprocess into an empty SQLite store, then again with the file
  unchanged (median of 3), then the same into a throwaway PostgreSQL database (created through the
  ``test`` database on 127.0.0.1:5432 and dropped after); wall time, records/s and the child's peak
  RSS (``ru_maxrss`` from ``wait4``).

Targets: first ingest ≤ 2.5x parse-only, unchanged re-ingest ≤ 1.3x parse-only, peak RSS < 300 MB.
"""

from __future__ import annotations

import html
import os
import random
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
RECORDS = int(os.environ.get("BENCH_EXTRACT_RECORDS", "85000"))
NS = "http://apply.grants.gov/system/OpportunityDetail-V1.0"
PG_ADMIN_URL = os.environ.get("BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
INGEST_RATIO_TARGET = 2.5
REINGEST_RATIO_TARGET = 1.3
RSS_TARGET_MB = 300.0

#: Share of records per agency code: roughly the real mix (HHS/NIH dominate; the four core
#: departments are a little under half of the extract).
AGENCIES = [
    ("HHS-NIH11", "National Institutes of Health", 0.24),
    ("HHS-CDC-NCIPC", "Centers for Disease Control - NCIPC", 0.04),
    ("HHS-ACF-FYSB", "Administration for Children & Families - ACYF/FYSB", 0.03),
    ("HHS-SAMHS", "Substance Abuse and Mental Health Services Adminis", 0.03),
    ("HHS-HRSA", "Health Resources and Services Administration", 0.03),
    ("USDOJ-OJP-BJA", "Bureau of Justice Assistance", 0.025),
    ("USDOJ-OJP-OJJDP", "Office of Juvenile Justice Delinquency Prevention", 0.02),
    ("USDOJ-OJP-OVW", "Office on Violence Against Women", 0.015),
    ("ED", "Department of Education", 0.05),
    ("DOL-ETA", "Employment and Training Administration", 0.02),
    ("DOS-IDN", "U.S. Mission to Indonesia", 0.10),
    ("NSF", "National Science Foundation", 0.10),
    ("USDA-NIFA", "National Institute of Food and Agriculture", 0.08),
    ("DOI-FWS", "Fish and Wildlife Service", 0.08),
    ("DOC-NOAA-ERA", "DOC NOAA - ERA Production", 0.06),
    ("EPA", "Environmental Protection Agency", 0.06),
]
_VOCABULARY = """
    community violence intervention prevention program grant funding applicants eligible local
    government nonprofit organizations street outreach hospital based services youth adults
    training technical assistance evaluation research data states tribes public safety health
    behavioral mental support implementation planning capacity partners victims trauma informed
    approaches evidence strategies award period performance budget costs project activities goals
    objectives outcomes measures the of and to in for with on by under this will be may must are is
    as an at from or
"""
WORDS = tuple(_VOCABULARY.split())


def _text(rng: random.Random, length: int) -> str:
    words: list[str] = []
    size = 0
    while size < length:
        word = rng.choice(WORDS)
        words.append(word)
        size += len(word) + 1
    return " ".join(words)[:length]


def _date(rng: random.Random, start_year: int, end_year: int) -> str:
    return f"{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}{rng.randint(start_year, end_year)}"


def generate(path: Path, count: int) -> None:
    """Write the synthetic extract (real schema, realistic lengths); deterministic for a given count."""
    rng = random.Random(20261121)
    weights = [w for _, _, w in AGENCIES]
    tmp = path.with_suffix(".part")
    with tmp.open("w", encoding="utf-8") as out:
        out.write(f'<?xml version="1.0" encoding="UTF-8"?>\n<Grants xmlns="{NS}">\n')
        forecasts = []
        for index in range(count):
            code, name, _ = rng.choices(AGENCIES, weights)[0]
            is_forecast = rng.random() < 0.06
            desc_len = min(18000, int(rng.lognormvariate(7.25, 0.7)))
            paragraphs = [_text(rng, max(40, desc_len // 3)) for _ in range(3)]
            if rng.random() < 0.5:
                description = html.escape("".join(f"<p>{p}</p>" for p in paragraphs))
            else:
                description = "\n\n".join(paragraphs)
            fields = [
                ("OpportunityID", str(200000 + index)),
                ("OpportunityTitle", html.escape(_text(rng, rng.randint(40, 180)).title())),
                ("OpportunityNumber", f"{code.split('-')[0]}-{rng.randint(20, 26)}-{index:06d}"),
                ("OpportunityCategory", rng.choice("DDDDMCE")),
            ]
            fields += [
                ("FundingInstrumentType", c) for c in rng.sample(["G", "CA", "O", "PC"], rng.randint(1, 2))
            ]
            fields += [
                ("CategoryOfFundingActivity", c) for c in rng.sample(["HL", "LJL", "ED", "ISS", "ST"], 2)
            ]
            fields += [("CFDANumbers", f"{rng.randint(10, 99)}.{rng.randint(1, 999):03d}")]
            fields += [
                ("EligibleApplicants", c) for c in rng.sample(["00", "01", "02", "07", "12", "25", "99"], 3)
            ]
            fields += [
                ("AdditionalInformationOnEligibility", _text(rng, rng.randint(80, 700))),
                ("AgencyCode", code),
                ("AgencyName", html.escape(name)),
                ("PostDate", _date(rng, 2008, 2026)),
            ]
            if not is_forecast:
                fields += [("CloseDate", _date(rng, 2008, 2027))]
            fields += [("LastUpdatedDate", _date(rng, 2008, 2026))]
            if is_forecast:
                fields += [
                    ("EstimatedSynopsisPostDate", _date(rng, 2026, 2027)),
                    ("FiscalYear", str(rng.randint(2024, 2027))),
                    ("EstimatedSynopsisCloseDate", _date(rng, 2026, 2027)),
                    ("EstimatedAwardDate", _date(rng, 2026, 2028)),
                    ("EstimatedProjectStartDate", _date(rng, 2026, 2028)),
                ]
            fields += [
                ("AwardCeiling", rng.choice(["none", "0", str(rng.randint(1, 500) * 10000)])),
                ("AwardFloor", rng.choice(["0", str(rng.randint(1, 50) * 10000)])),
                ("EstimatedTotalProgramFunding", str(rng.randint(1, 9000) * 10000)),
                ("ExpectedNumberOfAwards", str(rng.randint(1, 60))),
                ("Description", description),
                ("Version", f"{'Forecast' if is_forecast else 'Synopsis'} {rng.randint(1, 4)}"),
                ("CostSharingOrMatchingRequirement", rng.choice(["Yes", "No"])),
                ("ArchiveDate", _date(rng, 2008, 2027)),
                ("AdditionalInformationURL", f"https://www.example.gov/funding/{index}"),
                ("AdditionalInformationText", "Full announcement"),
                ("GrantorContactEmail", f"grants{index % 500}@example.gov"),
                ("GrantorContactEmailDescription", "Grants officer"),
            ]
            contact = (
                f"{_text(rng, 40).title()}, 202-555-{index % 10000:04d}&amp;lt;br/&amp;gt;grants@example.gov"
            )
            if is_forecast:
                fields += [("GrantorContactName", contact), ("GrantorContactPhoneNumber", "202-555-0100")]
            else:
                fields += [("GrantorContactText", contact)]
            tag = "OpportunityForecastDetail_1_0" if is_forecast else "OpportunitySynopsisDetail_1_0"
            body = "".join(f"<{k}>{v}</{k}>" for k, v in fields)
            record = f"<{tag}>{body}</{tag}>\n"
            if is_forecast:
                forecasts.append(record)  # the schema puts every forecast after the synopses
            else:
                out.write(record)
        out.writelines(forecasts)
        out.write("</Grants>\n")
    tmp.replace(path)


def extract_file() -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"GrantsDBExtract_synthetic_{RECORDS}v2.xml"
    if not path.exists():
        print(f"generating {path.name} ({RECORDS} records) …", flush=True)
        started = time.perf_counter()
        generate(path, RECORDS)
        print(f"  generated in {time.perf_counter() - started:.0f} s", flush=True)
    return path


def parse_only(path: Path) -> tuple[float, int]:
    from lxml import etree

    started = time.perf_counter()
    count = 0
    for _event, element in etree.iterparse(
        str(path),
        events=("end",),
        tag=(f"{{{NS}}}OpportunitySynopsisDetail_1_0", f"{{{NS}}}OpportunityForecastDetail_1_0"),
        huge_tree=True,
    ):
        count += 1
        element.clear(keep_tail=False)
        parent = element.getparent()
        while element.getprevious() is not None:
            del parent[0]
    return time.perf_counter() - started, count


def migrate(url: str) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["database_url"] = url
    config.attributes["skip_logging"] = True
    command.upgrade(config, "head")


def run_ingest(url: str, path: Path) -> tuple[float, float, str]:
    """(seconds, peak RSS in MB, summary line) of ``flask ingest-extract`` in a child process."""
    env = dict(os.environ, DATABASE_URL=url, LOG_LEVEL="WARNING", CRAWL_ARCHIVE_DIR=str(OUT / "archive"))
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "wsgi", "ingest-extract", str(path)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert process.stdout is not None
    output = process.stdout.read().decode()
    _pid, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"ingest-extract failed ({process.returncode}): {output.strip()}")
    return seconds, usage.ru_maxrss / 1024.0, output.strip().splitlines()[-1]


def stored_count(url: str) -> int:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM opportunities")).scalar_one())
    finally:
        engine.dispose()


def bench_store(label: str, url: str, path: Path, parse_seconds: float) -> list[str]:
    """Run first ingest + unchanged re-ingests into ``url``; returns missed-target messages."""
    migrate(url)
    missed: list[str] = []
    seconds, rss, summary = run_ingest(url, path)
    stored = stored_count(url)
    ratio = seconds / parse_seconds
    print(
        f"{label} first ingest:   {seconds:7.2f} s  {stored / seconds:8.0f} records/s stored  "
        f"ratio {ratio:.2f}x parse-only (target ≤ {INGEST_RATIO_TARGET})  peak RSS {rss:6.1f} MB"
    )
    print(f"   {summary}")
    again: list[float] = []
    rss_again = 0.0
    for _ in range(3):
        s, r, summary2 = run_ingest(url, path)
        again.append(s)
        rss_again = max(rss_again, r)
    median = statistics.median(again)
    ratio2 = median / parse_seconds
    print(
        f"{label} unchanged re-ingest: median {median:6.2f} s of {[round(a, 2) for a in again]}  "
        f"ratio {ratio2:.2f}x parse-only (target ≤ {REINGEST_RATIO_TARGET})  peak RSS {rss_again:6.1f} MB"
    )
    print(f"   {summary2}")
    if ratio > INGEST_RATIO_TARGET:
        missed.append(f"{label} ingest ratio {ratio:.2f} > {INGEST_RATIO_TARGET}")
    if ratio2 > REINGEST_RATIO_TARGET:
        missed.append(f"{label} re-ingest ratio {ratio2:.2f} > {REINGEST_RATIO_TARGET}")
    for value in (rss, rss_again):
        if value >= RSS_TARGET_MB:
            missed.append(f"{label} peak RSS {value:.0f} MB ≥ {RSS_TARGET_MB:.0f} MB")
    return missed


def main() -> int:
    path = extract_file()
    size_mb = path.stat().st_size / 1e6
    parses = [parse_only(path) for _ in range(3)]
    parse_seconds = statistics.median(p[0] for p in parses)
    total = parses[0][1]
    print(f"extract: {path.name}, {size_mb:.0f} MB, {total} records")
    print(
        f"lxml parse-only: median {parse_seconds:.2f} s of {[round(p[0], 2) for p in parses]} "
        f"({total / parse_seconds:.0f} records/s)"
    )
    missed: list[str] = []

    sqlite_path = OUT / f"bench_ingest_{os.getpid()}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{sqlite_path}{suffix}").unlink(missing_ok=True)
    try:
        missed += bench_store("SQLite    ", f"sqlite:///{sqlite_path}", path, parse_seconds)
    finally:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{sqlite_path}{suffix}").unlink(missing_ok=True)

    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    admin_url = make_url(PG_ADMIN_URL)
    name = f"bench_ingest_{uuid.uuid4().hex[:8]}"
    try:
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        print(f"PostgreSQL not reachable at {PG_ADMIN_URL}: {exc}")
        missed.append("PostgreSQL not measured")
    else:
        try:
            url = admin_url.set(database=name).render_as_string(hide_password=False)
            missed += bench_store("PostgreSQL", url, path, parse_seconds)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()

    if missed:
        print("MISSED: " + "; ".join(missed))
        return 1
    print("all ingest targets met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
