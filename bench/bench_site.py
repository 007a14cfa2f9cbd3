"""Site speed with 85,000 opportunities: ``/search`` (keyword + two filters) and ``/profiles/<id>/matches``.

Served by gunicorn (2 sync workers, one per core) on loopback; a small threaded HTTP
client drives 1 and 8 concurrent clients. Server time comes from gunicorn's access log (``%(D)s``,
microseconds per request); client time is the loopback round trip. Each figure is printed beside
the bare database query behind the page. Targets: search p95 <= 150 ms, matches p95 <= 400 ms.
"""

from __future__ import annotations

import http.client
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from bench.synthetic import OUT, build_store

N = int(os.environ.get("BENCH_SITE_N", "85000"))
#: Requests per run at 1 client (8 clients send the same total).
REQUESTS = int(os.environ.get("BENCH_SITE_REQUESTS", "40"))
SEARCH_URL = "/search?q=violence+intervention+outreach&department=DOJ&status=posted"
SEARCH_TARGET_MS = 150.0
MATCHES_TARGET_MS = 400.0
ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def _prepare_account(url: str) -> int:
    """A grant writer with one program profile in the bench store; returns the profile id."""
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from app.db import make_engine
    from app.models import Organization, ProgramProfile
    from app.services.accounts import create_user, find_user

    engine = make_engine(url)
    with Session(engine) as session:
        user = find_user(session, "bench@ovp.example.gov")
        if user is None:
            org = Organization(name="Bench Office of Violence Prevention")
            session.add(org)
            user = create_user(session, "bench@ovp.example.gov", "bench password 123", organization=org)
        profile = session.scalar(
            select(ProgramProfile).where(ProgramProfile.organization_id == user.organization_id)
        )
        if profile is None:
            profile = ProgramProfile(
                organization_id=user.organization_id,
                name="Safe Streets",
                org_type="nonprofit",
                program_description="Credible messengers do street outreach and hospital-based violence "
                "intervention with young adults at highest risk of gun violence.",
                focus_areas=["street outreach", "violence intervention"],
                populations=["young adults"],
            )
            session.add(profile)
        session.commit()
        profile_id = profile.id
    engine.dispose()
    return profile_id


def _bare_queries(url: str) -> dict[str, list[float]]:
    """The SQL behind each page without the page: search's filtered count and first page, and the
    ranker's filter query (ids of open CVI-eligible opportunities)."""
    import datetime as dt

    from sqlalchemy import func, select
    from sqlalchemy.orm import Session

    from app.db import make_engine
    from app.models import Opportunity

    engine = make_engine(url)
    times: dict[str, list[float]] = {"search": [], "matches": []}
    today = dt.date.today()
    with Session(engine) as session:
        where = (
            Opportunity.hidden.is_(False),
            Opportunity.merged_into_id.is_(None),
            Opportunity.department == "DOJ",
            Opportunity.status == "posted",
            Opportunity.cvi_eligible.is_(True),
        )
        for _ in range(30):
            started = time.perf_counter()
            session.scalar(select(func.count()).select_from(Opportunity).where(*where))
            list(session.scalars(select(Opportunity).where(*where).order_by(Opportunity.id).limit(25)))
            times["search"].append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            list(
                session.scalars(
                    select(Opportunity.id).where(
                        Opportunity.hidden.is_(False),
                        Opportunity.status.in_(["posted", "forecasted"]),
                        Opportunity.cvi_eligible.is_(True),
                        (Opportunity.close_date.is_(None))
                        | (Opportunity.close_date >= today + dt.timedelta(days=7)),
                    )
                )
            )
            times["matches"].append((time.perf_counter() - started) * 1000)
    engine.dispose()
    return times


class Server:
    def __init__(self, url: str, index_dir: str) -> None:
        self.port = _free_port()
        self.log = OUT / "bench-site-access.log"
        env = dict(
            os.environ,
            DATABASE_URL=url,
            INDEX_DIR=index_dir,
            SECRET_KEY="bench-secret",
            LOG_LEVEL="WARNING",
            BASE_URL=f"http://127.0.0.1:{self.port}",
        )
        self.process = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "gunicorn"),
                "-w",
                "2",
                "-b",
                f"127.0.0.1:{self.port}",
                "--access-logfile",
                str(self.log),
                "--access-logformat",
                "%(U)s %(s)s %(D)s",
                "--timeout",
                "120",
                "wsgi:app",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("gunicorn did not start")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:  # workers still busy with slow requests
            self.process.kill()
            self.process.wait(timeout=10)

    def server_times(self, path_prefix: str) -> list[float]:
        times = []
        for line in self.log.read_text().splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[0].startswith(path_prefix) and parts[1] == "200":
                times.append(int(parts[2]) / 1000)
        return times


def _sign_in(port: int) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("GET", "/sign-in")
    response = conn.getresponse()
    html = response.read().decode()
    cookie = response.getheader("Set-Cookie", "").split(";")[0]
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html)
    assert token, "no CSRF token on /sign-in"
    from urllib.parse import urlencode

    body = urlencode(
        {"csrf_token": token.group(1), "email": "bench@ovp.example.gov", "password": "bench password 123"}
    )
    conn.request(
        "POST", "/sign-in", body, {"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"}
    )
    response = conn.getresponse()
    response.read()
    assert response.status == 302, f"sign-in failed: {response.status}"
    return response.getheader("Set-Cookie", "").split(";")[0] or cookie


def _load(port: int, path: str, cookie: str, clients: int, per_client: int) -> list[float]:
    """``clients`` threads, each with a keep-alive connection, each sending ``per_client`` requests."""
    latencies: list[float] = []
    lock = threading.Lock()
    errors: list[str] = []

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        for _ in range(per_client):
            started = time.perf_counter()
            conn.request("GET", path, headers={"Cookie": cookie})
            response = conn.getresponse()
            response.read()
            elapsed = (time.perf_counter() - started) * 1000
            if response.status != 200:
                errors.append(f"{path}: {response.status}")
            with lock:
                latencies.append(elapsed)
        conn.close()

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise RuntimeError(errors[0])
    return latencies


def main() -> int:
    print(f"store: {N:,} synthetic opportunities (cached under bench/out/)", flush=True)
    store = build_store(N)
    profile_id = _prepare_account(store.url)
    bare = _bare_queries(store.url)
    server = Server(store.url, store.index_dir)
    ok = True
    try:
        cookie = _sign_in(server.port)
        pages = [
            ("search", SEARCH_URL, SEARCH_TARGET_MS),
            ("matches", f"/profiles/{profile_id}/matches", MATCHES_TARGET_MS),
        ]
        for _name, path, _target in pages:  # warm both workers: index searcher, vector matrix, model
            _load(server.port, path, cookie, 2, 2)
        for name, path, target in pages:
            bare_median, bare_p95 = statistics.median(bare[name]), _p95(bare[name])
            for clients, per_client in ((1, REQUESTS), (8, max(1, REQUESTS // 8))):
                server.log.write_text("")
                client_ms = _load(server.port, path, cookie, clients, per_client)
                time.sleep(0.3)
                server_ms = server.server_times(path.split("?")[0])
                p95 = _p95(server_ms)
                hit = p95 <= target
                ok = ok and hit
                print(
                    f"{name:8s} {clients} client{'s' if clients > 1 else ' '}: server median "
                    f"{statistics.median(server_ms):6.1f} ms  p95 {p95:6.1f} ms (target <= {target:.0f}: "
                    f"{'ok' if hit else 'MISSED'})  | loopback p95 {_p95(client_ms):6.1f} ms  "
                    f"| bare DB query median {bare_median:5.1f} ms p95 {bare_p95:5.1f} ms"
                    f"  (n={len(server_ms)})",
                    flush=True,
                )
    finally:
        server.stop()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
