"""One error shape for the whole API: RFC 9457 ``application/problem+json`` naming the wrong field."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from flask import Response
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException
from werkzeug.http import HTTP_STATUS_CODES

from app.api.schemas import FieldError, Problem

PROBLEM_TYPE = "/api/v1/docs#errors"
MEDIA_TYPE = "application/problem+json"


class ApiProblem(Exception):
    """Raised anywhere in an API request to answer with a problem document."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        errors: Iterable[FieldError] = (),
        title: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = list(errors)
        self.title = title or HTTP_STATUS_CODES.get(status, "Error")
        self.headers = dict(headers or {})

    def to_response(self) -> Response:
        problem = Problem(
            type=f"{PROBLEM_TYPE}-{self.status}",
            title=self.title,
            status=self.status,
            detail=self.detail,
            errors=self.errors,
        )
        response = Response(problem.model_dump_json(), status=self.status, mimetype=MEDIA_TYPE)
        for name, value in self.headers.items():
            response.headers[name] = value
        return response


def from_http_exception(exc: HTTPException) -> ApiProblem:
    """A Werkzeug error (bad request, 404, 405, 413 …) in the API's shape."""
    status = exc.code or 500
    headers: dict[str, str] = {}
    if status == 405:
        allowed = getattr(exc, "valid_methods", None) or []
        headers["Allow"] = ", ".join(sorted(allowed))
        return ApiProblem(
            405,
            f"This path answers {headers['Allow']} only.",
            errors=[FieldError(field="method", message="is not allowed on this path")],
            headers=headers,
        )
    detail = exc.description or HTTP_STATUS_CODES.get(status, "Error")
    return ApiProblem(status, detail, headers=headers)


_FIELD_IN_MESSAGE = re.compile(r"^(?:Value error, )?([a-z_]+) ")


def field_errors(exc: ValidationError, known_fields: Iterable[str], *, root: str) -> list[FieldError]:
    """Pydantic errors as {field, message}; model-level errors name the field their message starts with."""
    known = set(known_fields)
    errors: list[FieldError] = []
    for item in exc.errors(include_url=False):
        loc = [str(part) for part in item["loc"]]
        message = str(item["msg"]).removeprefix("Value error, ")
        if item["type"] == "missing":
            message = "is required"
        elif item["type"] == "extra_forbidden":
            message = "is not a known parameter"
        if loc:
            name = ".".join(loc) if root == "body" else loc[0]
        else:
            match = _FIELD_IN_MESSAGE.match(str(item["msg"]))
            name = match.group(1) if match and match.group(1) in known else root
        errors.append(FieldError(field=name, message=message))
    return errors
