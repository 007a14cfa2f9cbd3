"""A real HTTP server on 127.0.0.1 serving recorded responses, and an app pointed at it."""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "crawlers"


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    reset: bool = False
    content_type: str = "application/json"


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"null")


Handler = Callable[[Seen], Reply]


class FakeServer:
    """Routes (method, path) to a handler or a sequence of replies (the last one repeats)."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Handler] = {}
        self.requests: list[Seen] = []
        server = self

        class RequestHandler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                seen = Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                server.requests.append(seen)
                handler = server.routes.get((self.command, self.path.split("?", 1)[0]))
                reply = handler(seen) if handler else Reply(404, b"not found", content_type="text/plain")
                if reply.delay:
                    time.sleep(reply.delay)
                if reply.reset:
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.connection.close()
                    self.close_connection = True
                    return
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", reply.content_type)
                    self.send_header("Content-Length", str(len(reply.body)))
                    for key, value in reply.headers.items():
                        self.send_header(key, value)
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(reply.body)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True

            do_GET = _handle
            do_POST = _handle

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), RequestHandler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def route(self, method: str, path: str, *replies: Reply, handler: Handler | None = None) -> None:
        if handler is None:
            queue = list(replies)

            def handler(_seen: Seen) -> Reply:
                return queue.pop(0) if len(queue) > 1 else queue[0]

        self.routes[(method, path)] = handler

    def calls(self, method: str, path: str) -> list[Seen]:
        return [r for r in self.requests if r.method == method and r.path.split("?", 1)[0] == path]

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def json_reply(name: str, **kwargs: Any) -> Reply:
    return Reply(body=fixture_bytes(name), **kwargs)


def html_reply(name: str, **kwargs: Any) -> Reply:
    return Reply(body=fixture_bytes(name), content_type="text/html; charset=utf-8", **kwargs)


def grants_gov_routes(server: FakeServer, *, page1: Reply | None = None, page2: Reply | None = None) -> None:
    """search2 answers by startRecordNum; fetchOpportunity by opportunityId."""
    first = [page1 or json_reply("grants_gov/search2_page1.json")]
    second = [page2 or json_reply("grants_gov/search2_page2.json")]

    def search(seen: Seen) -> Reply:
        start = seen.json().get("startRecordNum", 0)
        return first[0] if start == 0 else second[0]

    def detail(seen: Seen) -> Reply:
        opp_id = seen.json()["opportunityId"]
        path = FIXTURES / "grants_gov" / f"fetchOpportunity_{opp_id}.json"
        if not path.exists():
            return Reply(body=json.dumps({"errorcode": 0, "data": {"errorMessages": ["no record"]}}).encode())
        return Reply(body=path.read_bytes())

    server.route("POST", "/v1/api/search2", handler=search)
    server.route("POST", "/v1/api/fetchOpportunity", handler=detail)


def agency_routes(server: FakeServer) -> None:
    server.route("GET", "/funding-api/current_funding_data", json_reply("ojp/current_funding_data.json"))
    server.route("GET", "/funding/current", html_reply("ojp/funding_current.html"))
    server.route("GET", "/eta/find-opportunities", html_reply("dol_eta/find_opportunities.html"))
    server.route("GET", "/ed/forecast", html_reply("ed/forecast.html"))
    server.route("GET", "/samhsa/grants-dashboard", html_reply("samhsa/grants_dashboard.html"))
    for slug in ("sm-26-011", "ti-26-004"):
        server.route(
            "GET",
            f"/grants/grant-announcements/{slug}",
            html_reply(f"samhsa/{slug}.html", headers={"ETag": f'"{slug}-v1"'}),
        )


@pytest.fixture
def server() -> Iterator[FakeServer]:
    fake = FakeServer()
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def crawl_app(app: Flask, server: FakeServer) -> Flask:
    """The test app with every source URL pointing at the loopback server and fast HTTP settings."""
    app.config.update(
        GRANTS_GOV_API_URL=f"{server.url}/v1/api",
        GRANTS_GOV_EXTRACT_URL=f"{server.url}/xml-extract",
        OJP_FUNDING_URL=f"{server.url}/funding-api",
        DOL_ETA_URL=f"{server.url}/eta/find-opportunities",
        ED_FORECAST_URL=f"{server.url}/ed/forecast",
        SAMHSA_NOFO_URL=f"{server.url}/samhsa/grants-dashboard",
        CRAWL_CONTACT="crawler-test@example.org",
        CRAWL_TIMEOUT=0.5,
        CRAWL_MAX_RETRIES=2,
        CRAWL_BACKOFF=0.01,
        CRAWL_MIN_INTERVAL=0.0,
        CRAWL_PAGE_SIZE=3,
        CRAWL_BATCH_SIZE=2,
        EXTRACT_BATCH_SIZE=2,
    )
    return app
