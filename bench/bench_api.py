"""Partner API throughput: gunicorn (2 workers) on loopback over 85,000 stored opportunities.

Targets (issue 7): ``GET /api/v1/opportunities?q=…`` ≥ 200 requests/s at 16 concurrent clients for
30 s with no errors and p95 ≤ 100 ms; conditional requests (If-None-Match → 304) ≥ 1,000 requests/s.
Both are printed beside a static file served by the same gunicorn in the same run, which shows how
fast this machine and the load tool (wrk) can go at all.

Every API request here carries a key and goes through the real gate: the key check (remembered for
API_KEY_CACHE_SECONDS), the database-backed rate limit (leased per worker in blocks of 1 % of the
key's limit) and the usage counters (written every API_USAGE_FLUSH_SECONDS), all at their defaults.
Keyword queries rotate over 32 URLs;
listings are cached per worker for API_CACHE_SECONDS (the Cache-Control max-age), so most are
answered from that cache — the cache-miss latency is measured separately and printed too.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from bench import api_data

ROOT = Path(__file__).resolve().parent.parent
OUT = api_data.OUT
CONCURRENCY = 16
LOAD_SECONDS = 30
SHORT_SECONDS = 15
TARGET_Q_RPS = 200
TARGET_Q_P95_MS = 100
TARGET_CACHED_RPS = 1000

QUERIES = [
    "violence intervention", "street outreach", "hospital-based violence", "gun violence prevention",
    "violence interrupters", "credible messengers", "youth violence", "reentry employment",
    "focused deterrence", "trauma-informed victim services", "safe passage", "group violence",
]  # fmt: skip
DEPARTMENT_FILTERS = ["", "&department=DOJ", "&department=HHS,DOJ"]


def paths() -> list[str]:
    found = []
    for query in QUERIES:
        for extra in DEPARTMENT_FILTERS:
            found.append(f"/api/v1/opportunities?q={urllib.request.quote(query)}{extra}")
    return found[:32]


def ensure_wrk() -> str:
    """wrk from Debian; installed on first use (the bench machines allow apt-get)."""
    found = shutil.which("wrk")
    if found:
        return found
    print("installing wrk (Debian package) …", flush=True)
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "wrk"],
        check=True,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
    )
    return shutil.which("wrk") or "wrk"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def issue_key(database_url: str) -> str:
    from sqlalchemy.orm import Session

    from app.db import make_engine
    from app.services import api_keys

    engine = make_engine(database_url)
    with Session(engine) as session:
        _row, key = api_keys.create_key(session, "bench", rate_limit_per_minute=1_000_000)
        session.commit()
    engine.dispose()
    return key


LUA = """
local paths = %(paths)s
local etags = %(etags)s
local key = %(key)s
local expected = %(expected)d
local counter = 0
good = 0
bad = 0
request = function()
  counter = counter + 1
  local i = (counter %% #paths) + 1
  local headers = {}
  if key ~= "" then headers["X-API-Key"] = key end
  if etags[i] then headers["If-None-Match"] = etags[i] end
  return wrk.format("GET", paths[i], headers)
end
response = function(status, headers, body)
  if status == expected then good = good + 1 else bad = bad + 1 end
end
local threads = {}
setup = function(thread) table.insert(threads, thread) end
done = function(summary, latency, requests)
  local g, b = 0, 0
  for _, t in ipairs(threads) do g = g + t:get("good"); b = b + t:get("bad") end
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests": %%d, "seconds": %%.3f, "p50_ms": %%.2f, "p95_ms": %%.2f, "p99_ms": %%.2f, ' ..
    '"good": %%d, "bad": %%d, "socket_errors": %%d, "status_errors": %%d}\\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(95) / 1000,
    latency:percentile(99) / 1000, g, b, e.connect + e.read + e.write + e.timeout, e.status))
end
"""


def lua_list(values: list[str]) -> str:
    return "{" + ", ".join(json.dumps(v) for v in values) + "}"


def run_wrk(
    wrk: str,
    base: str,
    name: str,
    targets: list[str],
    *,
    seconds: int,
    expected: int,
    key: str = "",
    etags: list[str] | None = None,
) -> dict[str, float]:
    script = OUT / f"wrk_{name}.lua"
    script.write_text(
        LUA
        % {
            "paths": lua_list(targets),
            "etags": lua_list(etags or []),
            "key": json.dumps(key),
            "expected": expected,
        }
    )
    completed = subprocess.run(
        [
            wrk,
            "-t",
            "2",
            "-c",
            str(CONCURRENCY),
            "-d",
            f"{seconds}s",
            "--timeout",
            "5s",
            "-s",
            str(script),
            base,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    line = next((ln for ln in completed.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if line is None:
        raise RuntimeError(f"wrk failed: {completed.stdout}\n{completed.stderr}")
    result: dict[str, float] = json.loads(line.removeprefix("RESULT "))
    result["rps"] = result["requests"] / result["seconds"]
    return result


def get(url: str, headers: dict[str, str]) -> tuple[int, dict[str, str], float]:
    started = time.perf_counter()
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()
            status, got = response.status, dict(response.headers)
    except urllib.error.HTTPError as exc:
        status, got = exc.code, dict(exc.headers)
    return status, got, (time.perf_counter() - started) * 1000


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    wrk = ensure_wrk()
    database_url = os.environ.get("BENCH_DATABASE_URL") or f"sqlite:///{OUT / 'api.db'}"
    index_dir = OUT / "index"
    started = time.perf_counter()
    info = api_data.build(database_url, index_dir)
    print(
        f"store: {info['opportunities']:,} opportunities ({info['open']:,} open, "
        f"{info['cvi_eligible']:,} CVI-eligible); "
        f"ready in {time.perf_counter() - started:.1f} s (first build {info['total_seconds']} s)",
        flush=True,
    )
    key = issue_key(database_url)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "INDEX_DIR": str(index_dir),
        "SECRET_KEY": "bench-secret",
        "LOG_LEVEL": "WARNING",
        "API_CACHE_SECONDS": os.environ.get("API_CACHE_SECONDS", "60"),
    }
    gunicorn = [
        sys.executable,
        "-m",
        "gunicorn",
        "-w",
        "2",
        "-b",
        f"127.0.0.1:{port}",
        "--log-level",
        "warning",
        "wsgi:app",
    ]
    server = subprocess.Popen(gunicorn, cwd=ROOT, env=env)
    try:
        for _ in range(300):
            try:
                if get(f"{base}/api/v1/", {})[0] == 200:
                    break
            except OSError:
                time.sleep(0.1)
        else:
            print("gunicorn did not start")
            return 1
        targets = paths()
        headers = {"X-API-Key": key}
        # Cache misses: each query once with a page size nobody else asks for, one client, sequential.
        misses = []
        for n, path in enumerate(targets):
            status, _h, ms = get(f"{base}{path}&per_page={60 + n}", headers)
            assert status == 200, (path, status)
            misses.append(ms)
        etags = []
        for path in targets:
            for _ in range(4):  # reach both workers
                status, got, _ms = get(f"{base}{path}", headers)
                assert status == 200, (path, status)
            etags.append(got["ETag"])
        static = run_wrk(wrk, base, "static", ["/static/site.css"], seconds=SHORT_SECONDS, expected=200)
        search = run_wrk(wrk, base, "search", targets, seconds=LOAD_SECONDS, expected=200, key=key)
        cached = run_wrk(
            wrk, base, "cached", targets, seconds=SHORT_SECONDS, expected=304, key=key, etags=etags
        )
    finally:
        server.terminate()
        server.wait(timeout=30)

    misses.sort()
    miss_p95 = misses[int(0.95 * (len(misses) - 1))]
    print(
        f"\nwrk, {CONCURRENCY} connections, gunicorn 2 sync workers on 127.0.0.1 "
        f"({os.cpu_count()} cores shared with wrk)"
    )
    print(f"{'':38} {'req/s':>9} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'errors':>7}  target")
    rows = [
        ("static file (baseline)", static, ""),
        (
            f"opportunities?q=… ({LOAD_SECONDS} s)",
            search,
            f"≥ {TARGET_Q_RPS} req/s, p95 ≤ {TARGET_Q_P95_MS} ms",
        ),
        ("opportunities?q=… If-None-Match → 304", cached, f"≥ {TARGET_CACHED_RPS} req/s"),
    ]
    for label, r, target in rows:
        errors = int(r["bad"] + r["socket_errors"])
        print(
            f"{label:38} {r['rps']:9.0f} {r['p50_ms']:8.1f} {r['p95_ms']:8.1f} {r['p99_ms']:8.1f} "
            f"{errors:7d}  {target}"
        )
    print(
        f"{'ratio to static':38} search {search['rps'] / static['rps']:.2f}, "
        f"cached {cached['rps'] / static['rps']:.2f}"
    )
    print(
        f"cache-miss latency (1 client, {len(misses)} queries): median {statistics.median(misses):.0f} ms, "
        f"p95 {miss_p95:.0f} ms"
    )
    ok = (
        search["rps"] >= TARGET_Q_RPS
        and search["p95_ms"] <= TARGET_Q_P95_MS
        and search["bad"] == 0
        and search["socket_errors"] == 0
        and cached["rps"] >= TARGET_CACHED_RPS
        and cached["bad"] == 0
        and cached["socket_errors"] == 0
    )
    return 0 if ok else 1
