"""The OpenAPI 3.1 document, generated from the operation registry and its pydantic models.

Nothing here describes a field by hand: parameters, bodies and responses are the JSON Schemas of
the models the routes validate with and answer with, so the document and the code cannot disagree.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from app.api.operations import REGISTRY, Operation
from app.api.schemas import Problem

API_VERSION = "1.0.0"
REF = "#/components/schemas/{model}"

DESCRIPTION = """\
Federal funding opportunities for community violence intervention (CVI), for partner sites.

Keys. Send your key in the X-API-Key header. Listings can be read without a key at a low rate per IP \
address; POST /match needs a key. Ask the CVI Funding Finder admins for one.

Rate limits. Each key has a per-minute budget (anonymous callers share one per IP). Every response \
carries X-RateLimit-Limit and X-RateLimit-Remaining; over the budget you get 429 with Retry-After (seconds).

Errors. Every 4xx is application/problem+json: {type, title, status, detail, errors: [{field, message}]}, \
where field names the query parameter, body field or header that was wrong (body for the whole body).

Caching. Listings carry an ETag and Cache-Control; send If-None-Match to get 304 Not Modified. \
Data may be up to max-age seconds old.

CORS. Browsers may call the API from the partner origins the admins registered (or the origins \
listed on your key). /deadlines and /widget.js are open to every origin.

Formats. Dates are ISO 8601 (YYYY-MM-DD, timestamps in UTC); amounts are whole US dollars as numbers. \
List parameters may repeat (department=DOJ&department=HHS) or use commas (department=DOJ,HHS)."""

ERROR_TEXT = {
    400: "A parameter or body field is not valid (named in errors[].field).",
    401: "The key is missing, unknown or revoked.",
    404: "Not found.",
    413: "The body is too large.",
    415: "The body is not JSON.",
    429: "Rate limit reached; retry after Retry-After seconds.",
}


def _strip_null(schema: dict[str, Any]) -> dict[str, Any]:
    """``X | None`` → ``X`` for query parameters (absent means None; a query cannot send null)."""
    variants = schema.get("anyOf")
    if variants:
        kept = [v for v in variants if v.get("type") != "null"]
        if len(kept) == 1:
            rest = {k: v for k, v in schema.items() if k not in ("anyOf", "default")}
            return {**kept[0], **rest}
    return {k: v for k, v in schema.items() if k != "default" or v is not None}


def _parameters(op: Operation, defs: dict[str, Any]) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": schema}
        for name, schema in op.path_params.items()
    ]
    if op.query is not None:
        model_schema = defs[op.query.__name__]
        required = set(model_schema.get("required", []))
        for name, prop in model_schema.get("properties", {}).items():
            schema = _strip_null(dict(prop))
            description = schema.pop("description", None)
            schema.pop("title", None)
            param: dict[str, Any] = {
                "name": name,
                "in": "query",
                "required": name in required,
                "schema": schema,
            }
            if description:
                param["description"] = description
            if schema.get("type") == "array":
                param["style"] = "form"
                param["explode"] = True
            params.append(param)
    if op.cacheable:
        params.append(
            {
                "name": "If-None-Match",
                "in": "header",
                "required": False,
                "schema": {"type": "string", "maxLength": 200},
                "description": "An ETag from an earlier response: 304 when nothing changed.",
            }
        )
    return params


def _problem(status: int) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": ERROR_TEXT.get(status, "Error."),
        "content": {"application/problem+json": {"schema": {"$ref": REF.format(model="Problem")}}},
    }
    if status == 429:
        response["headers"] = {"Retry-After": {"schema": {"type": "integer"}, "required": True}}
    return response


def _responses(op: Operation, refs: dict[Any, Any]) -> dict[str, Any]:
    if op.response is not None:
        schema: dict[str, Any] = refs[(op.response, "serialization")]
    elif op.media_type == "application/json":
        schema = {"type": "object"}
    else:
        schema = {"type": "string"}
    ok: dict[str, Any] = {"description": "OK.", "content": {op.media_type: {"schema": schema}}}
    responses: dict[str, Any] = {"200": ok}
    if op.cacheable:
        ok["headers"] = {
            "ETag": {"schema": {"type": "string"}, "required": True},
            "Cache-Control": {"schema": {"type": "string"}, "required": True},
        }
        responses["304"] = {"description": "Not modified since the ETag in If-None-Match."}
    statuses = set(op.errors)
    if op.auth != "none":
        statuses |= {401, 429}
    for status in sorted(statuses):
        responses[str(status)] = _problem(status)
    return responses


def _security(op: Operation) -> list[dict[str, list[str]]]:
    if op.auth == "required":
        return [{"ApiKey": []}]
    if op.auth == "optional":
        return [{}, {"ApiKey": []}]
    return []


@functools.cache
def document() -> dict[str, Any]:
    """The whole OpenAPI document (built once per process; the registry is fixed at import)."""
    models: list[tuple[type[BaseModel], Any]] = [(Problem, "serialization")]
    for op in REGISTRY.values():
        if op.response is not None:
            models.append((op.response, "serialization"))
        if op.body is not None:
            models.append((op.body, "validation"))
        if op.query is not None:
            models.append((op.query, "validation"))
    unique = list(dict.fromkeys(models))
    refs, top = models_json_schema(unique, ref_template=REF)
    defs: dict[str, Any] = top.get("$defs", {})
    paths: dict[str, dict[str, Any]] = {}
    for op in sorted(REGISTRY.values(), key=lambda o: (o.tag, o.path)):
        entry: dict[str, Any] = {
            "operationId": op.endpoint.split(".", 1)[1],
            "summary": op.summary,
            "tags": [op.tag],
            "parameters": _parameters(op, defs),
            "responses": _responses(op, refs),
            "security": _security(op),
        }
        if op.description:
            entry["description"] = op.description
        if op.body is not None:
            entry["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": refs[(op.body, "validation")]}},
            }
        paths.setdefault(f"/api/v1{op.path if op.path != '/' else '/'}", {})[op.method] = entry
    return {
        "openapi": "3.1.0",
        "info": {"title": "CVI Funding Finder API", "version": API_VERSION, "description": DESCRIPTION},
        "paths": paths,
        "components": {
            "schemas": defs,
            "securitySchemes": {"ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}},
        },
    }


@functools.cache
def document_json() -> str:
    return json.dumps(document(), indent=1, sort_keys=False)


# -- the docs page reads the document through these helpers ----------------------------------------


def type_label(schema: dict[str, Any]) -> str:
    """A short human description of a JSON Schema: ``array of string``, ``integer (1-100)`` …"""
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    if "anyOf" in schema:
        return " or ".join(type_label(s) for s in schema["anyOf"])
    if "enum" in schema:
        return "one of " + ", ".join(str(v) for v in schema["enum"])
    if "const" in schema:
        return repr(schema["const"])
    kind = str(schema.get("type", "any"))
    if kind == "array":
        return f"array of {type_label(schema.get('items', {}))}"
    extras = []
    if "format" in schema:
        extras.append(str(schema["format"]))
    if "minimum" in schema or "maximum" in schema:
        extras.append(f"{schema.get('minimum', '')}-{schema.get('maximum', '')}")
    if "maxLength" in schema:
        extras.append(f"≤ {schema['maxLength']} chars")
    if "pattern" in schema:
        extras.append(f"pattern {schema['pattern']}")
    return f"{kind} ({', '.join(extras)})" if extras else kind


def docs_view() -> dict[str, Any]:
    """The document arranged for reading: operations with their tables, then the schemas."""
    spec = document()
    operations = []
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
            operations.append(
                {
                    "anchor": op["operationId"],
                    "method": method.upper(),
                    "path": path,
                    "summary": op["summary"],
                    "description": op.get("description", ""),
                    "auth": {0: "no key", 1: "key required", 2: "key optional"}[len(op["security"])],
                    "parameters": [
                        {
                            "name": p["name"],
                            "in": p["in"],
                            "required": p.get("required", False),
                            "type": type_label(p["schema"]),
                            "description": p.get("description", ""),
                        }
                        for p in op["parameters"]
                    ],
                    "body": type_label(body) if body else None,
                    "responses": [
                        {
                            "status": status,
                            "description": r["description"],
                            "type": ", ".join(
                                f"{media} {type_label(c.get('schema', {}))}"
                                for media, c in r.get("content", {}).items()
                            ),
                        }
                        for status, r in op["responses"].items()
                    ],
                }
            )
    schemas = []
    for name, schema in spec["components"]["schemas"].items():
        required = set(schema.get("required", []))
        schemas.append(
            {
                "name": name,
                "description": schema.get("description", ""),
                "enum": schema.get("enum"),
                "properties": [
                    {
                        "name": prop_name,
                        "type": type_label(prop),
                        "required": prop_name in required,
                        "description": prop.get("description", ""),
                    }
                    for prop_name, prop in schema.get("properties", {}).items()
                ],
            }
        )
    paragraphs = [p.strip() for p in spec["info"]["description"].split("\n\n")]
    return {"operations": operations, "schemas": schemas, "paragraphs": paragraphs}


__all__ = ["docs_view", "document", "document_json", "type_label"]
