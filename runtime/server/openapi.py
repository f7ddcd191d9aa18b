"""``/openapi.json`` generated from the route table and the body Structs (pure).

One source: ``spec.ROUTES`` says what each route takes and answers, ``models`` defines the
bodies; msgspec turns the Structs into JSON Schema components. Security: every route with
a scope requires the bearer scheme (an API key or a JWT); the scope is in the route's
description and in ``x-required-scope``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from .errors import ErrorBody
from .spec import ROUTES, RouteSpec

__all__ = ["build"]

_RATE_HEADERS = {
    "x-ratelimit-limit": "requests per minute allowed for this credential",
    "x-ratelimit-remaining": "requests left now",
    "x-ratelimit-reset": "seconds until the allowance is full again",
}


def _structs() -> list[type]:
    seen: list[type] = [ErrorBody]
    for r in ROUTES:
        for t in [r.body, *(t for t, _ in r.responses.values())]:
            if isinstance(t, type) and t not in seen:
                seen.append(t)
    return seen


_EVENT = {  # one event of the stream (OpenAPI 3.1: the schema of text/event-stream is per event)
    "type": "object",
    "properties": {
        "event": {"type": "string", "description": "the record type; text_delta; stream_end"},
        "data": {"type": "string", "contentMediaType": "application/json",
                 "description": "the record as JSON (a transcript line)"},
        "id": {"type": "string", "pattern": "^[0-9]+$",
               "description": "the record's seq (Last-Event-ID resumes after it)"},
        "retry": {"type": "integer"},
    },
    "required": ["data", "event"],
}


def _content(kind: Any, refs: dict[type, Any]) -> dict[str, Any]:
    if kind == "sse":
        return {"text/event-stream": {"schema": _EVENT}}
    if kind == "text":
        return {"text/plain": {"schema": {"type": "string"}}}
    if kind == "html":
        return {"text/html": {"schema": {"type": "string"}}}
    if kind == "openapi":
        return {"application/json": {"schema": {"type": "object"}}}
    return {"application/json": {"schema": refs[kind]}}


def _headers(route: RouteSpec, status: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if route.scope is not None and status != 401:
        out.update({name: {"description": d, "schema": {"type": "integer"}}
                    for name, d in _RATE_HEADERS.items()})
    if status == 429:
        out["retry-after"] = {"description": "seconds to wait", "schema": {"type": "integer"},
                              "required": True}
    if status == 401:
        out["www-authenticate"] = {"description": "Bearer challenge (RFC 6750)",
                                   "schema": {"type": "string"}, "required": True}
    if route.name == "create_session" and status == 201:
        out["location"] = {"description": "the session's URL", "schema": {"type": "string"}}
    return out


def _operation(route: RouteSpec, refs: dict[type, Any]) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for status, (kind, description) in sorted(route.responses.items()):
        responses[str(status)] = {"description": description,
                                  "content": _content(kind, refs)}
    for status, description in sorted(route.errors.items()):
        responses.setdefault(str(status), {"description": description,
                                           "content": _content(ErrorBody, refs)})
    for code, resp in responses.items():
        headers = _headers(route, int(code))
        if headers:
            resp["headers"] = headers
    op: dict[str, Any] = {"operationId": route.name, "summary": route.summary,
                          "responses": responses}
    if route.scope is not None:
        op["security"] = [{"bearer": []}]
        op["x-required-scope"] = route.scope
        op["description"] = ("Needs any valid credential." if route.scope == "any" else
                             f"Needs scope `{route.scope}` (or `admin`).")
    else:
        op["security"] = []
    if route.params:
        op["parameters"] = [{"name": p.name, "in": p.where, "required": p.required,
                             "schema": p.schema, **({"description": p.description}
                                                    if p.description else {})}
                            for p in route.params]
    if route.body is not None:
        op["requestBody"] = {"required": route.body_required, "content": {
            "application/json": {"schema": refs[route.body]}}}
    return op


def build(*, providers: Sequence[str] = (), models: Sequence[str] = (),
          title: str = "conductor", version: str = "1") -> dict[str, Any]:
    """The OpenAPI 3.1 document of the service; ``providers`` (and ``models``, when every
    provider has an allowlist) narrow what ``POST /v1/sessions`` accepts to this
    deployment's config."""
    structs = _structs()
    (schemas, components) = msgspec.json.schema_components(
        structs, ref_template="#/components/schemas/{name}")
    create = components["CreateSession"]["properties"]
    if providers:
        create["provider"] = {"anyOf": [{"enum": list(providers)}, {"type": "null"}],
                              "default": None}
    if models:
        create["model"] = {"anyOf": [{"enum": list(models)}, {"type": "null"}],
                           "default": None}
    refs = dict(zip(structs, schemas, strict=True))
    paths: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route, refs)
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version, "description":
                 "Sessions over HTTP. Authenticate with `Authorization: Bearer <API key or "
                 "JWT>`; errors are `{\"error\": {\"kind\", \"message\"}}`."},
        "paths": paths,
        "components": {"schemas": components, "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer",
                       "description": "an API key of server.api_keys, or a JWT"}}},
    }
