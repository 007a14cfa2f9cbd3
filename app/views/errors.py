"""Error pages: every 4xx says what went wrong in plain words; nothing shows a traceback."""

from __future__ import annotations

import logging

from flask import Flask, render_template, request
from werkzeug.exceptions import HTTPException, InternalServerError
from werkzeug.wrappers import Response

log = logging.getLogger(__name__)

TITLES = {
    400: "That request could not be understood",
    401: "Please sign in",
    403: "You do not have access to that page",
    404: "Page not found",
    405: "That action is not allowed here",
    429: "Too many requests",
    500: "Something went wrong on our side",
}


def _render(error: HTTPException) -> Response | tuple[str, int]:
    code = error.code or 500
    message = error.description or ""
    if request.path.startswith("/api/"):
        # Errors no API view saw (routing refused the path, e.g. an id past the id range) still
        # answer in the API's one error shape.
        from app.api.problems import from_http_exception

        return from_http_exception(error).to_response()
    return render_template(
        "errors/error.html", code=code, title=TITLES.get(code, error.name), message=message
    ), code


def init_app(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException) -> Response | tuple[str, int]:
        return _render(error)

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> Response | tuple[str, int]:
        # The route's pattern, not the path: reset, invitation and calendar paths carry secret tokens.
        route = request.url_rule.rule if request.url_rule is not None else request.path
        log.exception("unhandled error", extra={"path": route})
        return _render(InternalServerError("Please try again in a moment. The team has been told."))
