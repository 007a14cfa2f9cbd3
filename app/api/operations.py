"""Each API operation declared once: its pydantic models validate the request, shape the response,
and feed the OpenAPI document (``app.api.openapi``), so the document cannot drift from the code.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import threading
import time
import typing
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from flask import Response, current_app, request
from pydantic import BaseModel, ValidationError

from app.api.problems import ApiProblem, field_errors
from app.api.schemas import FieldError

Auth = Literal["none", "optional", "required"]
MAX_BODY_BYTES = 64 * 1024
MAX_NAME_ECHO = 60


@dataclass
class Operation:
    """What the OpenAPI document says about one route, and how the route validates and answers."""

    endpoint: str
    method: str
    path: str
    summary: str
    description: str
    tag: str
    query: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    media_type: str = "application/json"
    auth: Auth = "optional"
    cacheable: bool = False
    public_cors: bool = False
    path_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    errors: tuple[int, ...] = (400, 429)


#: Every operation by endpoint name, filled as the views module is imported.
REGISTRY: dict[str, Operation] = {}


def register(op: Operation) -> Operation:
    REGISTRY[op.endpoint] = op
    return op


def _is_list(annotation: Any) -> bool:
    return typing.get_origin(annotation) is list


def _has_control(text: str) -> bool:
    """NUL and other C0 controls (tab and newlines aside) are never meaningful in our parameters,
    and PostgreSQL refuses NUL in text, so they are a 400 here rather than a 500 later."""
    return any(ord(ch) < 32 and ch not in "\t\n\r" for ch in text)


def _printable(text: str) -> str:
    return "".join(ch if ord(ch) >= 32 else "?" for ch in text)[:MAX_NAME_ECHO]


def _control_path(value: Any, path: str) -> str | None:
    """The dotted path of the first string in a JSON value holding a control character."""
    if isinstance(value, str):
        return path if _has_control(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            found = _control_path(key, path) or _control_path(item, f"{path}.{key}" if path else str(key))
            if found is not None:
                return _printable(found) or "body"
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = _control_path(item, f"{path}.{index}")
            if found is not None:
                return found
    return None


def parse_query(model: type[BaseModel]) -> BaseModel:
    """Query string → ``model``: lists may repeat or use commas; unknown or repeated names are errors."""
    fields = model.model_fields
    data: dict[str, Any] = {}
    errors: list[FieldError] = []
    for name in request.args:
        values = request.args.getlist(name)
        info = fields.get(name)
        if any(_has_control(v) for v in [name, *values]):
            errors.append(FieldError(field=_printable(name), message="contains a control character"))
        elif info is None:
            errors.append(FieldError(field=_printable(name), message="is not a known parameter"))
        elif _is_list(info.annotation):
            data[name] = [part for value in values for part in value.split(",")]
        elif len(values) > 1:
            errors.append(FieldError(field=name, message="is given more than once"))
        else:
            data[name] = values[0]
    try:
        parsed = model.model_validate(data)
    except ValidationError as exc:
        errors.extend(field_errors(exc, fields, root="query"))
    if errors:
        raise ApiProblem(400, "A query parameter is unknown or not valid.", errors=errors)
    return parsed


def parse_json_body(model: type[BaseModel]) -> BaseModel:
    """The JSON request body → ``model``, with the wrong field named in the problem."""
    if request.mimetype != "application/json" and not request.mimetype.endswith("+json"):
        raise ApiProblem(
            415,
            "Send the body as JSON with Content-Type: application/json.",
            errors=[FieldError(field="body", message=f"has media type {request.mimetype or 'none'!r}")],
        )
    if (request.content_length or 0) > MAX_BODY_BYTES:
        raise ApiProblem(413, f"The body is larger than {MAX_BODY_BYTES // 1024} KB.")
    raw = request.get_data(cache=False)
    if len(raw) > MAX_BODY_BYTES:
        raise ApiProblem(413, f"The body is larger than {MAX_BODY_BYTES // 1024} KB.")
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ApiProblem(
            400, "The body is not UTF-8.", errors=[FieldError(field="body", message="is not UTF-8 text")]
        ) from None
    except json.JSONDecodeError as exc:
        raise ApiProblem(
            400,
            "The body is not valid JSON.",
            errors=[FieldError(field="body", message=f"{exc.msg} at line {exc.lineno} column {exc.colno}")],
        ) from None
    bad = _control_path(data, "")
    if bad is not None:
        raise ApiProblem(
            400,
            "A text field holds a control character.",
            errors=[FieldError(field=bad, message="contains a control character")],
        )
    if not isinstance(data, dict):
        raise ApiProblem(
            400,
            "The body must be a JSON object.",
            errors=[FieldError(field="body", message="is not an object")],
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ApiProblem(
            400,
            "A field of the body is not valid.",
            errors=field_errors(exc, model.model_fields, root="body"),
        ) from None


class ResponseCache:
    """Recently rendered listing bodies per worker, kept as long as Cache-Control lets clients keep them.

    A repeated listing (a widget on a busy page, a conditional request) is answered without running
    the search again; data is at most ``ttl`` seconds stale, exactly what ``max-age`` already allows.
    """

    def __init__(self, size: int = 1024) -> None:
        self.size = size
        self._entries: OrderedDict[str, tuple[float, str, bytes]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str, ttl: float) -> tuple[str, bytes] | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or time.monotonic() - entry[0] > ttl:
                return None
            self._entries.move_to_end(key)
            return entry[1], entry[2]

    def put(self, key: str, etag: str, body: bytes) -> None:
        with self._lock:
            self._entries[key] = (time.monotonic(), etag, body)
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def cache_for(app_extensions: dict[str, Any]) -> ResponseCache:
    cache = app_extensions.get("api_response_cache")
    if cache is None:
        cache = app_extensions["api_response_cache"] = ResponseCache()
    return cache  # type: ignore[no-any-return]


def listing_etag(version: str, api_version: str, key: str, today: str) -> str:
    """The ETag of a cacheable answer: the catalogue version, the API version, the operation with
    its normalized parameters, and the day (deadlines and "closing within" windows move daily)."""
    seed = f"{api_version}|{version}|{today}|{key}"
    return hashlib.sha256(seed.encode("utf-8")).hexdigest()[:32]


def json_response(
    op: Operation,
    render: Callable[[], BaseModel],
    cache_key: str | None = None,
    *,
    version: Callable[[], str] | None = None,
    api_version: str = "",
) -> Response:
    """Render ``render()`` as JSON; cacheable operations get an ETag, Cache-Control and 304s.

    With ``version`` (the catalogue version) the ETag is known before rendering, so a matching
    If-None-Match is answered 304 after one indexed read, and bodies are cached per ETag (a
    catalogue change can never serve an old body). Without it the ETag hashes the body.
    """
    if not op.cacheable:
        return Response(render().model_dump_json(), mimetype=op.media_type)
    ttl = float(current_app.config["API_CACHE_SECONDS"])
    max_age = int(ttl)
    cache = cache_for(current_app.extensions)
    key = f"{op.endpoint}:{cache_key if cache_key is not None else request.query_string.decode('latin-1')}"
    if version is not None:
        etag = listing_etag(version(), api_version, key, datetime.date.today().isoformat())
        if request.if_none_match.contains_weak(etag):
            return _not_modified(etag, max_age)
        cached = cache.get(etag, ttl) if ttl > 0 else None
        if cached is None:
            body = render().model_dump_json().encode("utf-8")
            if ttl > 0:
                cache.put(etag, etag, body)
        else:
            body = cached[1]
        return _cacheable(Response(body, mimetype=op.media_type), etag, max_age)
    found = cache.get(key, ttl) if ttl > 0 else None
    if found is None:
        body = render().model_dump_json().encode("utf-8")
        etag = hashlib.sha256(body).hexdigest()[:32]
        if ttl > 0:
            cache.put(key, etag, body)
    else:
        etag, body = found
    if request.if_none_match.contains_weak(etag):
        return _not_modified(etag, max_age)
    return _cacheable(Response(body, mimetype=op.media_type), etag, max_age)


def _not_modified(etag: str, max_age: int) -> Response:
    return _cacheable(Response(status=304), etag, max_age)


def _cacheable(response: Response, etag: str, max_age: int) -> Response:
    response.set_etag(etag)
    response.headers["Cache-Control"] = f"public, max-age={max_age}"
    return response
