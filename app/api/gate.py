"""What every API request passes before and after its view: CORS preflight, key, rate limit, headers.

The decisions (is the key good, is the request within its budget) are the ``api_keys`` service's;
this module only reads them off the request and writes them onto the response.
"""

from __future__ import annotations

import logging
import time

from flask import Flask, Response, current_app, g, request

from app.api.operations import REGISTRY, Operation
from app.api.problems import ApiProblem
from app.api.schemas import FieldError
from app.db import db_session
from app.services import api_keys, ratelimit
from app.services.api_meter import ApiMeter

log = logging.getLogger(__name__)

KEY_HEADER = "X-API-Key"
ALLOWED_HEADERS = "X-API-Key, Content-Type, If-None-Match"
EXPOSED_HEADERS = "ETag, Retry-After, X-RateLimit-Limit, X-RateLimit-Remaining"
PRUNE_EVERY_SECONDS = 600
_last_prune = {"at": 0.0}


def current_operation() -> Operation | None:
    return REGISTRY.get(request.endpoint or "")


def client_ip() -> str:
    """The peer address (put ProxyFix in front when a proxy sets X-Forwarded-For)."""
    return request.remote_addr or "unknown"


def _origin_allowed(origin: str, op: Operation | None, key: object | None) -> bool:
    if op is not None and op.public_cors:
        return True
    if origin in current_app.config["CORS_ORIGINS"]:
        return True
    allowed = getattr(key, "allowed_origins", None) or []
    return origin in allowed


def preflight() -> Response:
    """Answer OPTIONS: allowed origins get the CORS grant, others a 403 problem."""
    op = current_operation()
    origin = request.headers.get("Origin")
    methods = sorted({"OPTIONS", *(r.upper() for r in _methods_for_path())})
    response = Response(status=204)
    response.headers["Allow"] = ", ".join(methods)
    if origin is None:
        return response
    public = op is not None and op.public_cors
    known = public or origin in current_app.config["CORS_ORIGINS"]
    if not known and not api_keys.origin_registered(db_session(), origin):
        raise ApiProblem(
            403,
            f"The origin {origin[:200]} is not a registered partner origin.",
            errors=[FieldError(field="Origin", message="is not allowed to call this API from a browser")],
        )
    response.headers["Access-Control-Allow-Origin"] = "*" if public else origin
    response.headers["Access-Control-Allow-Methods"] = ", ".join(methods)
    response.headers["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
    response.headers["Access-Control-Max-Age"] = "600"
    response.headers["Vary"] = "Origin"
    return response


def _methods_for_path() -> list[str]:
    rule = request.url_rule
    if rule is None or rule.endpoint == "api_v1.not_found":
        return ["GET", "POST"]
    return [m for m in (rule.methods or ()) if m != "OPTIONS"]


def admit() -> Response | None:
    """Authenticate the key (if any), require one where needed, and count the request."""
    if request.method == "OPTIONS":
        return preflight()
    op = current_operation()
    if op is not None and op.auth == "none":
        return None
    session = db_session()
    config = current_app.config
    presented = request.headers.get(KEY_HEADER)
    key = None
    if presented:
        try:
            key = api_keys.authenticate(session, presented, max_age=config["API_KEY_CACHE_SECONDS"])
        except api_keys.ApiKeyError as exc:
            raise ApiProblem(401, str(exc), errors=[FieldError(field=KEY_HEADER, message=str(exc))]) from None
    elif op is not None and op.auth == "required":
        raise ApiProblem(
            401,
            "This operation needs an API key in the X-API-Key header.",
            errors=[FieldError(field=KEY_HEADER, message="is required")],
        )
    admission = api_keys.admit(
        session,
        meter(),
        key=key,
        client_ip=client_ip(),
        anonymous_limit=config["API_ANON_RATE_LIMIT"],
        flush_seconds=config["API_USAGE_FLUSH_SECONDS"],
    )
    _maybe_prune()
    if session.in_transaction():  # most requests are admitted from memory and wrote nothing
        session.commit()
    g.api_key = key
    g.api_rate = admission.decision
    if not admission.decision.allowed:
        log.info(
            "api rate limit reached",
            extra={"api_key_id": key.id if key else None, "ip": client_ip(), "path": request.path},
        )
        raise ApiProblem(
            429,
            f"Rate limit of {admission.decision.limit} requests per minute reached; "
            f"retry in {admission.decision.retry_after} s.",
            headers={"Retry-After": str(admission.decision.retry_after)},
        )
    return None


def meter() -> ApiMeter:
    """This process's API meter (see ``app.services.api_meter``)."""
    return current_app.extensions["api_meter"]  # type: ignore[no-any-return]


def flush_usage(app: Flask) -> int:
    """Write the usage this process has counted but not yet written (at exit, or on demand)."""
    found: ApiMeter | None = app.extensions.get("api_meter")
    if found is None or found.pending() == 0:
        return 0
    # A session of its own: at exit there is no request, and a caller's session is left alone.
    with app.extensions["database"].session_factory() as session:
        written = found.flush(session)
        session.commit()
    return written


def _maybe_prune() -> None:
    now = time.monotonic()
    if now - _last_prune["at"] < PRUNE_EVERY_SECONDS:
        return
    _last_prune["at"] = now
    import datetime as dt

    ratelimit.prune(db_session(), older_than=dt.timedelta(hours=1))


def decorate(response: Response) -> Response:
    """Rate-limit and CORS headers on every API response (errors included)."""
    decision = g.get("api_rate")
    if decision is not None:
        response.headers["X-RateLimit-Limit"] = str(decision.limit)
        response.headers["X-RateLimit-Remaining"] = str(decision.remaining)
    origin = request.headers.get("Origin")
    if origin and request.method != "OPTIONS":
        op = current_operation()
        if _origin_allowed(origin, op, g.get("api_key")):
            response.headers["Access-Control-Allow-Origin"] = "*" if op and op.public_cors else origin
            response.headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
    response.vary.add("Origin")
    return response
