"""The production set-up under a mixed load while its scheduler crawls and sends digests (issue 9).

``scripts/serve.py`` (what ``make serve`` runs: gunicorn workers + the scheduler) on a fresh
PostgreSQL database holding the seed catalogue, 24 organizations with a program profile and three
digest subscriptions each, and a partner API key. wrk on loopback drives 32 connections for 60 s:
8 each on search, opportunity pages, profile matches (signed in) and the partner API. During the run
the scheduler fires a crawl of every source (recorded responses on a loopback HTTP server) and the
daily digests (to aiosmtpd on loopback).

Judged: zero 5xx and zero socket errors; nothing lost or duplicated afterwards (``bench.stack.verify``).
p50/p95/p99 per kind are printed beside a static file fetched by the same wrk against the same
server in the same run, which shows what this machine and load tool reach at all.
``BENCH_DATABASE_URL`` names the PostgreSQL server (default: the local one, database ``test``).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from bench import stack
from bench.bench_api import ensure_wrk
from tests.alerts.conftest import Recorder
from tests.crawlers.conftest import FakeServer, agency_routes, grants_gov_routes

SECONDS = 60
#: When the judged run starts and the scheduler fires the jobs, in seconds from the launch of
#: ``scripts/serve.py``. From warm to JUDGED_AT the same mix runs with no job: the reference.
JUDGED_AT = 55
CRAWL_AT = 70
DIGESTS_AT = 80
MIN_REFERENCE_SECONDS = 15
CONNECTIONS_PER_KIND = 8
ORGANIZATIONS = 24
ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"

LUA = """
local items = %(items)s
local counter = 0
c2, c3, c4, c5 = 0, 0, 0, 0
request = function()
  counter = counter + 1
  local item = items[(counter %% #items) + 1]
  return wrk.format("GET", item[1], item[2])
end
response = function(status, headers, body)
  if status >= 500 then c5 = c5 + 1 elseif status >= 400 then c4 = c4 + 1
  elseif status >= 300 then c3 = c3 + 1 else c2 = c2 + 1 end
end
local threads = {}
setup = function(thread) table.insert(threads, thread) end
done = function(summary, latency, requests)
  local t2, t3, t4, t5 = 0, 0, 0, 0
  for _, t in ipairs(threads) do
    t2 = t2 + t:get("c2"); t3 = t3 + t:get("c3"); t4 = t4 + t:get("c4"); t5 = t5 + t:get("c5")
  end
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests": %%d, "seconds": %%.3f, "p50_ms": %%.1f, "p95_ms": %%.1f, "p99_ms": %%.1f, ' ..
    '"s2xx": %%d, "s3xx": %%d, "s4xx": %%d, "s5xx": %%d, "socket_errors": %%d}\\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000,
    latency:percentile(95) / 1000, latency:percentile(99) / 1000, t2, t3, t4, t5,
    e.connect + e.read + e.write + e.timeout))
end
"""


def lua_items(items: list[stack.Target]) -> str:
    """A Lua table of {path, headers} pairs."""
    rows = []
    for item in items:
        headers = ", ".join(f"[{json.dumps(k)}] = {json.dumps(v)}" for k, v in item.headers.items())
        rows.append(f"{{{json.dumps(item.path)}, {{{headers}}}}}")
    return "{" + ",\n".join(rows) + "}"


def start_wrk(
    wrk: str, port: int, name: str, items: list[stack.Target], workdir: Path, seconds: int
) -> subprocess.Popen[str]:
    script = workdir / f"load_{name}.lua"
    script.write_text(LUA % {"items": lua_items(items)})
    command = [
        wrk, "-t", "1", "-c", str(CONNECTIONS_PER_KIND), "-d", f"{seconds}s", "--timeout", "30s",
        "-s", str(script), f"http://127.0.0.1:{port}",
    ]  # fmt: skip
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def result_of(process: subprocess.Popen[str]) -> dict[str, Any]:
    out, err = process.communicate(timeout=SECONDS + JUDGED_AT + 120)
    line = next((ln for ln in out.splitlines() if ln.startswith("RESULT ")), None)
    if line is None:
        raise RuntimeError(f"wrk failed: {out}\n{err}")
    result: dict[str, Any] = json.loads(line.removeprefix("RESULT "))
    result["rps"] = result["requests"] / result["seconds"]
    return result


def mixed_load(
    wrk: str, port: int, kinds: dict[str, list[stack.Target]], workdir: Path, seconds: int
) -> dict[str, dict[str, Any]]:
    """One wrk per kind, all at once, ``CONNECTIONS_PER_KIND`` connections each."""
    loads = {name: start_wrk(wrk, port, name, items, workdir, seconds) for name, items in kinds.items()}
    return {name: result_of(process) for name, process in loads.items()}


def under_load(run: Any, start: dt.datetime, end: dt.datetime) -> float:
    """Seconds of a job run (naive UTC times from the store) that fell inside the load [start, end]."""
    began = max(start, run.started_at.replace(tzinfo=dt.UTC))
    ended = min(end, run.finished_at.replace(tzinfo=dt.UTC))
    return max(0.0, (ended - began).total_seconds())


def main() -> int:
    wrk = ensure_wrk()
    admin_url = os.environ.get("BENCH_DATABASE_URL") or ADMIN_URL
    sources = FakeServer()
    grants_gov_routes(sources)
    agency_routes(sources)
    sources.start()
    recorder = Recorder()
    recorder.port = stack.free_port()
    mail = Controller(recorder, hostname="127.0.0.1", port=recorder.port)
    mail.start()
    try:
        with tempfile.TemporaryDirectory(prefix="cvi-load-") as tmp, stack.fresh_database(admin_url) as url:
            workdir = Path(tmp)
            port = stack.free_port()
            env = stack.stack_env(url, workdir, port=port, sources=sources.url, smtp_port=recorder.port)
            print(f"preparing: migrate, seed, reindex, {ORGANIZATIONS} organizations …", flush=True)
            population = stack.prepare(env, ORGANIZATIONS)
            launched = dt.datetime.now(dt.UTC)
            stack.schedule(
                env,
                crawl_at=launched + dt.timedelta(seconds=CRAWL_AT),
                digest_at=launched + dt.timedelta(seconds=DIGESTS_AT),
            )
            server = stack.Stack(env, workdir / "serve.log")
            code = 1
            try:
                ready = server.wait_ready()
                cookies = stack.cookies_for(population, port)
                kinds = stack.targets(population, port, cookies)
                warm_at = (dt.datetime.now(dt.UTC) - launched).total_seconds()
                reference_seconds = max(MIN_REFERENCE_SECONDS, round(JUDGED_AT - warm_at))
                print(
                    f"warm after {ready:.1f} s; reference run (no jobs) for {reference_seconds} s", flush=True
                )
                reference = mixed_load(wrk, port, kinds, workdir, reference_seconds)
                load_started = dt.datetime.now(dt.UTC)
                offset = (load_started - launched).total_seconds()
                print(
                    f"judged run from +{offset:.0f} s for {SECONDS} s; "
                    f"crawl fires at +{CRAWL_AT} s, digests at +{DIGESTS_AT} s",
                    flush=True,
                )
                results = mixed_load(wrk, port, kinds, workdir, SECONDS)
                load_ended = dt.datetime.now(dt.UTC)
                static_items = [stack.Target("static", "/static/site.css", {})]
                static = result_of(start_wrk(wrk, port, "static", static_items, workdir, 15))
                runs = stack.wait_for_jobs(url, ("crawl-incremental", "digests-daily"), timeout=300)
            finally:
                code = server.stop()
            api_answered = sum(
                r["api"]["s2xx"] + r["api"]["s3xx"] + r["api"]["s4xx"] + r["api"]["s5xx"]
                for r in (reference, results)
            )
            verdict = stack.verify(
                url, population, recorder.messages, api_answered=api_answered, slack=2 * CONNECTIONS_PER_KIND
            )
    finally:
        mail.stop()
        sources.stop()

    print(f"\n{'kind':<26} {'requests':>9} {'req/s':>7} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} "
          f"{'2xx':>6} {'3xx':>5} {'4xx':>5} {'5xx':>5} {'sock':>5}")  # fmt: skip
    rows = [(f"{k} (no jobs)", v) for k, v in reference.items()] + [
        (f"{k} (crawl+digests)", v) for k, v in results.items()
    ]
    for name, r in [*rows, ("static file, alone", static)]:
        print(
            f"{name:<26} {r['requests']:>9} {r['rps']:>7.1f} {r['p50_ms']:>8.1f} {r['p95_ms']:>8.1f} "
            f"{r['p99_ms']:>8.1f} {r['s2xx']:>6} {r['s3xx']:>5} {r['s4xx']:>5} {r['s5xx']:>5} "
            f"{r['socket_errors']:>5}"
        )
    for name, run in runs.items():
        took = (run.finished_at - run.started_at).total_seconds()
        overlap = under_load(run, load_started, load_ended)
        print(f"job {name}: {run.outcome} in {took:.1f} s, {overlap:.1f} s of it under the judged load")
    for key, value in verdict.facts.items():
        if key != "jobs":
            print(f"{key}: {value}")
    errors_5xx = sum(r["s5xx"] for _name, r in rows)
    socket_errors = sum(r["socket_errors"] for _name, r in rows)
    total = sum(r["requests"] for r in results.values())
    for kind in results:
        ratio = results[kind]["p95_ms"] / max(reference[kind]["p95_ms"], 0.001)
        print(f"{kind}: p95 with the crawl and digests running is {ratio:.1f}x the p95 without them")
    print(
        f"\n{total} requests at {CONNECTIONS_PER_KIND * len(results)} connections over {SECONDS} s: "
        f"{errors_5xx} 5xx, {socket_errors} socket errors (target 0 and 0); serve exited {code}"
    )
    for problem in verdict.problems:
        print(f"PROBLEM: {problem}")
    inside = all(
        run.started_at.replace(tzinfo=dt.UTC) >= load_started
        and run.finished_at.replace(tzinfo=dt.UTC) <= load_ended
        for run in runs.values()
    )
    if not inside:
        print("PROBLEM: the crawl or the digests did not run inside the load window")
    ok = errors_5xx == 0 and socket_errors == 0 and not verdict.problems and code == 0 and inside
    print("nothing lost or duplicated" if not verdict.problems else "SOMETHING WAS LOST OR DUPLICATED")
    return 0 if ok else 1
