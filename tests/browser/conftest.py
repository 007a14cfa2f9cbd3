"""Reusable browser-test fixtures: a live server on loopback and a headless Chromium page.

``live_server`` serves the test app (built on the test database) with werkzeug in a thread on a
free 127.0.0.1 port. ``page``, a Playwright page of Debian's ``chromium`` (never ``playwright
install``), comes from ``tests/conftest.py``, shared with the widget test. Screenshots go to
``test-artifacts/`` via ``screenshot(page, name)``.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from werkzeug.serving import make_server

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LiveServer:
    def __init__(self, app: Flask) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        app.config["BASE_URL"] = self.url
        self.server = make_server("127.0.0.1", self.port, app, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(timeout=5)


@pytest.fixture
def live_server(app: Flask) -> Iterator[LiveServer]:
    server = LiveServer(app)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def screenshot(page: Any, name: str) -> Path:
    """Save a full-page screenshot as a test artifact and return its path."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


#: In-page accessibility checks: unlabelled controls, heading order, one h1.
A11Y_SCRIPT = """
() => {
  const problems = [];
  const controls = document.querySelectorAll('input:not([type=hidden]), select, textarea, button');
  for (const el of controls) {
    if (el.tagName === 'BUTTON') {
      if (!el.textContent.trim() && !el.getAttribute('aria-label')) problems.push('button without text');
      continue;
    }
    const labelled = (el.labels && el.labels.length > 0) || el.getAttribute('aria-label')
      || el.getAttribute('aria-labelledby');
    if (!labelled) problems.push('unlabelled ' + el.tagName.toLowerCase() + ' ' + (el.name || el.id));
  }
  const headings = [...document.querySelectorAll('h1, h2, h3, h4, h5, h6')].map(h => +h.tagName[1]);
  if (headings.filter(l => l === 1).length !== 1) problems.push('expected exactly one h1');
  for (let i = 1; i < headings.length; i++) {
    if (headings[i] > headings[i - 1] + 1) {
      problems.push('heading skips from h' + headings[i - 1] + ' to h' + headings[i]);
    }
  }
  if (!document.querySelector('a.skip-link[href="#main"]')) problems.push('no skip link');
  if (document.documentElement.lang !== 'en') problems.push('no lang');
  return problems;
}
"""


def accessibility_problems(page: Any) -> list[str]:
    return list(page.evaluate(A11Y_SCRIPT))
