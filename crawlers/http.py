"""One HTTP layer for every source: polite, fault-tolerant, and recording what it fetched.

* timeouts on every request, retries with exponential backoff on connection errors, timeouts, 429
  and 5xx, honouring ``Retry-After`` (seconds or an HTTP date);
* a wall-clock deadline per response (``HttpSettings.deadline``): the read timeout only bounds the
  wait for each packet, so a server trickling a byte at a time would otherwise hold a crawl forever;
* a per-host rate limit (minimum interval between requests to one host);
* robots.txt, read once per host: a disallowed URL is refused with ``RobotsDisallowed``;
* conditional GET: ``ETag``/``Last-Modified`` validators kept in a ``ValidatorCache`` (the service
  backs it with the ``http_cache`` table), a 304 hands back the cached body;
* a User-Agent naming the product and a contact address;
* every response body handed to an ``archive`` callback (the service stores it compressed per run),
  so a parser fix can re-parse without fetching again (``ReplayClient``).

Sleeping and the clock are injectable so tests never wait for real backoff.
"""

from __future__ import annotations

import abc
import contextlib
import email.utils
import json
import logging
import socket
import threading
import time
import urllib.robotparser
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import requests
import urllib3
import urllib3.exceptions
from requests.adapters import HTTPAdapter

log = logging.getLogger(__name__)

PRODUCT = "CVI-Funding-Finder"
PRODUCT_VERSION = "0.1"


class FetchError(Exception):
    """A request that failed for good (after retries). ``kind`` names the failure for crawl_errors."""

    kind = "fetch"

    def __init__(self, url: str, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.url = url
        self.message = message
        self.status = status


class RobotsDisallowed(FetchError):
    kind = "robots"


class HttpStatusError(FetchError):
    kind = "http_status"


class FetchTimeout(FetchError):
    kind = "timeout"


class ConnectionFailed(FetchError):
    kind = "connection"


class NotArchived(FetchError):
    kind = "not_archived"


class StorageFailed(FetchError):
    """A download that arrived but could not be written to disk (full, read-only)."""

    kind = "storage"


@dataclass
class Response:
    """A finished response: the body is always bytes (possibly the cached body of a 304)."""

    url: str
    status: int
    headers: dict[str, str]
    body: bytes
    not_modified: bool = False
    method: str = "GET"

    @property
    def content_type(self) -> str | None:
        return self.headers.get("content-type")

    def text(self) -> str:
        charset = "utf-8"
        content_type = self.content_type or ""
        if "charset=" in content_type:
            charset = content_type.split("charset=", 1)[1].split(";", 1)[0].strip() or "utf-8"
        try:
            return self.body.decode(charset, errors="replace")
        except LookupError:
            return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body as JSON; a truncated or invalid body raises ``FetchError`` naming the URL."""
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise FetchError(
                self.url, f"response is not valid JSON ({exc}); {len(self.body)} bytes received"
            ) from exc


@dataclass
class CachedValidators:
    etag: str | None
    last_modified: str | None
    body: bytes | None


class ValidatorCache(Protocol):
    """Where conditional-GET validators live between runs."""

    def get(self, url: str) -> CachedValidators | None: ...

    def put(self, url: str, etag: str | None, last_modified: str | None, body: bytes) -> None: ...


class MemoryValidatorCache:
    def __init__(self) -> None:
        self.entries: dict[str, CachedValidators] = {}

    def get(self, url: str) -> CachedValidators | None:
        return self.entries.get(url)

    def put(self, url: str, etag: str | None, last_modified: str | None, body: bytes) -> None:
        self.entries[url] = CachedValidators(etag, last_modified, body)


@dataclass
class ArchivedPayload:
    """One response as archived: enough to serve it again for a re-parse."""

    url: str
    method: str
    request_body: str | None
    status: int
    content_type: str | None
    body: bytes


ArchiveCallback = Callable[[ArchivedPayload], None]


@dataclass
class HttpSettings:
    contact: str = "ops@cvi-funding-finder.invalid"
    timeout: float = 30.0
    #: Seconds a whole response (headers and body) may take; None for no limit. Downloads are exempt.
    deadline: float | None = 120.0
    max_retries: int = 4
    backoff_base: float = 1.0
    backoff_max: float = 60.0
    #: A Retry-After longer than this is not waited for: the request fails instead.
    max_retry_after: float = 300.0
    #: Minimum seconds between two requests to the same host.
    min_interval: float = 1.0
    respect_robots: bool = True
    hosts_min_interval: dict[str, float] = field(default_factory=dict)

    @property
    def user_agent(self) -> str:
        return f"{PRODUCT}/{PRODUCT_VERSION} (+mailto:{self.contact}; federal funding catalogue crawler)"


def _request_key(method: str, url: str, body: str | None) -> tuple[str, str, str]:
    return method.upper(), url, body or ""


def _encode_body(json_body: Any | None) -> str | None:
    if json_body is None:
        return None
    return json.dumps(json_body, sort_keys=True, separators=(",", ":"))


class _Verbs(abc.ABC):
    """GET with query parameters and JSON POST, both through the subclass's ``fetch``."""

    @abc.abstractmethod
    def fetch(
        self,
        method: str,
        url: str,
        *,
        json_body: Any | None = None,
        conditional: bool = False,
        archive: bool = True,
    ) -> Response: ...

    def get(self, url: str, *, params: dict[str, Any] | None = None, conditional: bool = True) -> Response:
        if params:
            url = requests.Request("GET", url, params=params).prepare().url or url
        return self.fetch("GET", url, conditional=conditional)

    def post_json(self, url: str, body: Any) -> Response:
        return self.fetch("POST", url, json_body=body)


class HttpClient(_Verbs):
    """The live client: ``fetch`` returns a ``Response`` or raises ``FetchError``."""

    def __init__(
        self,
        settings: HttpSettings | None = None,
        *,
        cache: ValidatorCache | None = None,
        archive: ArchiveCallback | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        session: requests.Session | None = None,
    ) -> None:
        self.settings = settings or HttpSettings()
        self.cache = cache
        self.archive = archive
        self.sleep = sleep
        self.clock = clock
        self.session = session or requests.Session()
        if session is None:
            for prefix in ("http://", "https://"):
                self.session.mount(prefix, _WatchedAdapter())
        self.session.headers["User-Agent"] = self.settings.user_agent
        self.session.headers["Accept-Encoding"] = "gzip, deflate"
        self._last_request: dict[str, float] = {}
        self._robots: dict[str, urllib.robotparser.RobotFileParser | None] = {}
        self.requests_made = 0
        self.slept: list[float] = []

    # -- public API ----------------------------------------------------------------------------

    def can_fetch(self, method: str, url: str, json_body: Any | None = None) -> bool:
        """Whether ``fetch`` could answer this request (always, for the live client)."""
        return True

    def fetch(
        self,
        method: str,
        url: str,
        *,
        json_body: Any | None = None,
        conditional: bool = False,
        archive: bool = True,
    ) -> Response:
        method = method.upper()
        self._check_robots(url)
        headers: dict[str, str] = {}
        cached = self.cache.get(url) if (conditional and method == "GET" and self.cache) else None
        if cached and cached.body is not None:
            if cached.etag:
                headers["If-None-Match"] = cached.etag
            if cached.last_modified:
                headers["If-Modified-Since"] = cached.last_modified
        raw = self._send_with_retries(method, url, headers, json_body)
        response = Response(
            url=url,
            status=raw.status_code,
            headers={k.lower(): v for k, v in raw.headers.items()},
            body=raw.content,
            method=method,
        )
        if response.status == 304 and cached and cached.body is not None:
            response.body = cached.body
            response.not_modified = True
        elif response.status >= 400:
            raise HttpStatusError(url, f"HTTP {response.status} from {method} {url}", status=response.status)
        elif conditional and method == "GET" and self.cache is not None:
            etag = response.headers.get("etag")
            modified = response.headers.get("last-modified")
            if etag or modified:
                self.cache.put(url, etag, modified, response.body)
        if archive and self.archive is not None:
            self.archive(
                ArchivedPayload(
                    url=url,
                    method=method,
                    request_body=_encode_body(json_body),
                    status=response.status,
                    content_type=response.content_type,
                    body=response.body,
                )
            )
        return response

    def download(self, url: str, destination: Path, *, chunk_size: int = 1 << 20) -> Path:
        """Stream a large file (the XML extract) to disk with the same politeness and retries."""
        self._check_robots(url)
        attempt = 0
        while True:
            self._wait_for_host(url)
            try:
                with self.session.get(url, stream=True, timeout=self.settings.timeout) as raw:
                    if raw.status_code == 429 or raw.status_code >= 500:
                        delay = self._retry_delay(attempt, raw.headers.get("Retry-After"), url)
                        if attempt >= self.settings.max_retries or delay is None:
                            raise HttpStatusError(url, f"HTTP {raw.status_code} from GET {url}")
                        attempt += 1
                        self._sleep(delay)
                        continue
                    if raw.status_code >= 400:
                        raise HttpStatusError(url, f"HTTP {raw.status_code} from GET {url}")
                    self._save(raw, url, destination, chunk_size)
                    return destination
            except (requests.ConnectionError, requests.Timeout) as exc:
                if attempt >= self.settings.max_retries:
                    raise ConnectionFailed(url, f"download of {url} failed: {exc}") from exc
                self._sleep(self._backoff(attempt))
                attempt += 1

    # -- internals ---------------------------------------------------------------------------------

    def _save(self, raw: requests.Response, url: str, destination: Path, chunk_size: int) -> None:
        """Write the body beside ``destination`` and rename it into place once whole. A disk error
        (full, read-only) removes the partial file, so a full disk is not left fuller, and an
        earlier complete download at ``destination`` stays as it was."""
        partial = destination.with_suffix(destination.suffix + ".part")
        written = 0
        try:
            destination.parent.mkdir(parents=True, exist_ok=True)
            with partial.open("wb") as out:
                for chunk in raw.iter_content(chunk_size):
                    out.write(chunk)
                    written += len(chunk)
            partial.replace(destination)
        except OSError as exc:
            if isinstance(exc, requests.RequestException):
                raise  # a network error while reading: retried by the caller
            partial.unlink(missing_ok=True)
            raise StorageFailed(
                url,
                f"could not save {url} to {destination}: {exc.strerror or exc} "
                f"(errno {exc.errno}; {written} bytes received, partial file removed)",
            ) from exc

    def _sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.slept.append(seconds)
            self.sleep(seconds)

    def _host(self, url: str) -> str:
        return urlsplit(url).netloc.lower()

    def _wait_for_host(self, url: str) -> None:
        host = self._host(url)
        interval = self.settings.hosts_min_interval.get(host, self.settings.min_interval)
        last = self._last_request.get(host)
        if last is not None and interval > 0:
            wait = last + interval - self.clock()
            if wait > 0:
                self._sleep(wait)
        self._last_request[host] = self.clock()

    def _backoff(self, attempt: int) -> float:
        return float(min(self.settings.backoff_max, self.settings.backoff_base * (2**attempt)))

    def _retry_delay(self, attempt: int, retry_after: str | None, url: str) -> float | None:
        """Seconds to wait before the next attempt; None when the server asks for too long a wait."""
        delay = self._backoff(attempt)
        if retry_after:
            asked = _parse_retry_after(retry_after)
            if asked is not None:
                if asked > self.settings.max_retry_after:
                    log.warning("retry-after too long, giving up", extra={"url": url, "retry_after": asked})
                    return None
                delay = max(asked, 0.0)
        return delay

    def _send_with_retries(
        self, method: str, url: str, headers: dict[str, str], json_body: Any | None
    ) -> requests.Response:
        attempt = 0
        while True:
            self._wait_for_host(url)
            self.requests_made += 1
            try:
                # The whole body is read now so a connection dropped mid-body is retried too.
                raw = self._request(method, url, headers=headers, json_body=json_body)
            except requests.Timeout as exc:
                detail = (
                    str(exc)
                    if isinstance(exc, TooSlow)
                    else f"no response from {method} {url} within {self.settings.timeout:g} s"
                )
                failure: FetchError = FetchTimeout(url, detail)
                cause: Exception = exc
            except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
                failure = ConnectionFailed(url, f"connection failed for {method} {url}: {_short(exc)}")
                cause = exc
            else:
                if raw.status_code != 429 and raw.status_code < 500:
                    return raw
                delay = self._retry_delay(attempt, raw.headers.get("Retry-After"), url)
                log.info(
                    "http retryable status",
                    extra={"url": url, "status": raw.status_code, "attempt": attempt + 1, "delay": delay},
                )
                if attempt >= self.settings.max_retries or delay is None:
                    detail = f"HTTP {raw.status_code} from {method} {url}"
                    if attempt:
                        detail += f" after {attempt + 1} attempts"
                    raise HttpStatusError(url, detail, status=raw.status_code)
                attempt += 1
                self._sleep(delay)
                continue
            log.info(
                "http request failed", extra={"url": url, "attempt": attempt + 1, "error": failure.message}
            )
            if attempt >= self.settings.max_retries:
                failure.message += f" (after {attempt + 1} attempts)"
                failure.args = (failure.message,)
                raise failure from cause
            self._sleep(self._backoff(attempt))
            attempt += 1

    def _request(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        json_body: Any | None = None,
    ) -> requests.Response:
        """One request with its body read in full before ``deadline`` seconds have passed.

        Each socket read waits at most ``timeout``; between reads the deadline is checked, so a
        server that keeps sending a byte now and then is cut off (``TooSlow``) instead of holding
        the crawl. urllib3's own errors are raised as the requests errors the callers handle.
        """
        started = time.monotonic()
        deadline = self.settings.deadline
        with _Watchdog(deadline) as watchdog:
            try:
                raw = self.session.request(
                    method, url, headers=headers, json=json_body, timeout=self.settings.timeout, stream=True
                )
                return self._read_body(raw, method, url, started)
            except requests.RequestException as exc:
                if watchdog.fired and not isinstance(exc, TooSlow):
                    raise TooSlow(
                        f"response from {method} {url} not complete within {deadline:g} s "
                        "(the server is sending too slowly)"
                    ) from exc
                raise

    def _read_body(self, raw: requests.Response, method: str, url: str, started: float) -> requests.Response:
        deadline = self.settings.deadline
        chunks: list[bytes] = []
        try:
            while True:
                if deadline is not None and time.monotonic() - started > deadline:
                    raise TooSlow(
                        f"response from {method} {url} not complete within {deadline:g} s "
                        f"({sum(map(len, chunks))} bytes received; the server is sending too slowly)"
                    )
                chunk = raw.raw.read1(_READ_SIZE, decode_content=True)
                if not chunk:
                    break
                chunks.append(chunk)
        except requests.RequestException:  # TooSlow (an OSError too, so caught before those)
            raw.close()
            raise
        except urllib3.exceptions.ReadTimeoutError as exc:
            raw.close()
            raise requests.exceptions.ReadTimeout(exc) from exc
        except urllib3.exceptions.DecodeError as exc:
            raw.close()
            raise requests.exceptions.ContentDecodingError(exc) from exc
        except (urllib3.exceptions.ProtocolError, OSError) as exc:
            raw.close()
            raise requests.exceptions.ChunkedEncodingError(exc) from exc
        except BaseException:
            raw.close()
            raise
        raw._content = b"".join(chunks)
        raw._content_consumed = True  # type: ignore[attr-defined]
        raw.raw.release_conn()  # read to the end: the connection goes back to the pool
        return raw

    def _check_robots(self, url: str) -> None:
        if not self.settings.respect_robots:
            return
        parts = urlsplit(url)
        host = parts.netloc.lower()
        if host not in self._robots:
            self._robots[host] = self._load_robots(f"{parts.scheme}://{parts.netloc}/robots.txt")
        parser = self._robots[host]
        if parser is not None and not parser.can_fetch(self.settings.user_agent, url):
            raise RobotsDisallowed(url, f"robots.txt of {host} disallows {url}")

    def _load_robots(self, robots_url: str) -> urllib.robotparser.RobotFileParser | None:
        """The host's rules; a missing robots.txt allows everything, a 401/403 disallows everything."""
        parser = urllib.robotparser.RobotFileParser(robots_url)
        try:
            self._wait_for_host(robots_url)
            raw = self._request("GET", robots_url)
        except requests.RequestException as exc:
            log.warning("robots.txt unreachable; proceeding", extra={"url": robots_url, "error": _short(exc)})
            return None
        if raw.status_code in (401, 403):
            parser.disallow_all = True  # type: ignore[attr-defined]
            return parser
        if raw.status_code >= 400:
            return None
        parser.parse(raw.text.splitlines())
        return parser


#: Bytes asked of the socket per read (one read returns what has arrived, up to this).
_READ_SIZE = 1 << 16


class TooSlow(requests.exceptions.Timeout):
    """A response that did not finish within ``HttpSettings.deadline`` (a trickling server)."""


class _Watchdog:
    """Shuts the socket of the request made in its ``with`` block once ``deadline`` seconds passed.

    The read timeout bounds each wait for bytes, and the body loop checks the deadline between
    reads; but while the status line and headers are read nothing returns to us, so a server
    trickling its headers is cut from this timer thread (the read then fails at once).
    """

    _current = threading.local()

    def __init__(self, deadline: float | None) -> None:
        self.deadline = deadline
        self.connection: Any = None
        self.fired = False
        self._done = False
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None

    @classmethod
    def watching(cls) -> _Watchdog | None:
        watchdog: _Watchdog | None = getattr(cls._current, "watchdog", None)
        return watchdog

    def __enter__(self) -> _Watchdog:
        if self.deadline is not None:
            self._timer = threading.Timer(self.deadline, self._cut)
            self._timer.daemon = True
            self._timer.start()
            _Watchdog._current.watchdog = self
        return self

    def __exit__(self, *_exc: object) -> None:
        with self._lock:
            self._done = True
        if self._timer is not None:
            self._timer.cancel()
            _Watchdog._current.watchdog = None

    def _cut(self) -> None:
        with self._lock:
            if self._done:
                return
            self.fired = True
            sock = getattr(self.connection, "sock", None)
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


class _WatchedPoolMixin:
    """Tells the watchdog of the current request which connection the request went out on."""

    def _make_request(self, conn: Any, *args: Any, **kwargs: Any) -> Any:
        watchdog = _Watchdog.watching()
        if watchdog is not None:
            watchdog.connection = conn
        return super()._make_request(conn, *args, **kwargs)  # type: ignore[misc]


class _WatchedHTTPPool(_WatchedPoolMixin, urllib3.HTTPConnectionPool):
    """An HTTP pool whose requests the deadline watchdog can cut off."""


class _WatchedHTTPSPool(_WatchedPoolMixin, urllib3.HTTPSConnectionPool):
    """An HTTPS pool whose requests the deadline watchdog can cut off."""


class _WatchedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}


def _short(exc: BaseException) -> str:
    text = str(exc)
    for marker in ("ConnectionResetError", "Connection reset", "RemoteDisconnected", "Connection refused"):
        if marker in text:
            return marker
    return text[:300]


def _parse_retry_after(value: str) -> float | None:
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - time.time())


class ReplayClient(_Verbs):
    """Serves the archived responses of an earlier run instead of the network (``crawl --reparse``)."""

    def __init__(self, payloads: Iterable[ArchivedPayload]) -> None:
        self._responses: dict[tuple[str, str, str], ArchivedPayload] = {}
        for payload in payloads:
            self._responses[_request_key(payload.method, payload.url, payload.request_body)] = payload
        self.requests_made = 0
        self.slept: list[float] = []

    def can_fetch(self, method: str, url: str, json_body: Any | None = None) -> bool:
        return _request_key(method, url, _encode_body(json_body)) in self._responses

    def fetch(
        self,
        method: str,
        url: str,
        *,
        json_body: Any | None = None,
        conditional: bool = False,
        archive: bool = True,
    ) -> Response:
        payload = self._responses.get(_request_key(method, url, _encode_body(json_body)))
        if payload is None:
            raise NotArchived(url, f"{method} {url} is not in the archived run")
        self.requests_made += 1
        headers = {"content-type": payload.content_type} if payload.content_type else {}
        return Response(url, 200, headers, payload.body, not_modified=payload.status == 304, method=method)

    def download(self, url: str, destination: Path, *, chunk_size: int = 1 << 20) -> Path:
        raise NotArchived(url, "downloads are not archived; re-run ingest-extract on the kept file")


class Fetcher(Protocol):
    """What a source module needs from an HTTP client (live or replayed)."""

    requests_made: int

    def can_fetch(self, method: str, url: str, json_body: Any | None = None) -> bool: ...

    def get(
        self, url: str, *, params: dict[str, Any] | None = None, conditional: bool = True
    ) -> Response: ...

    def post_json(self, url: str, body: Any) -> Response: ...

    def fetch(
        self,
        method: str,
        url: str,
        *,
        json_body: Any | None = None,
        conditional: bool = False,
        archive: bool = True,
    ) -> Response: ...

    def download(self, url: str, destination: Path, *, chunk_size: int = ...) -> Path: ...
