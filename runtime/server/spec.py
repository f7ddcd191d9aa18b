"""The route table of the HTTP API (pure): what each route takes, needs and answers.

The app serves exactly these routes and ``/openapi.json`` is generated from them
(``openapi.build``), so the document cannot drift from what is served. A scope of ``None``
means no credential; ``"any"`` means any valid credential.
"""

from __future__ import annotations

from typing import Any, Literal

import attrs

from .errors import ErrorBody
from .models import (
    Accepted,
    ApprovalAnswer,
    ApprovalRequestBody,
    CancelBody,
    CreateSession,
    Health,
    Identity,
    MessageBody,
    SessionCreated,
    SessionList,
    SessionView,
)

__all__ = ["ROUTES", "Param", "RouteSpec"]

Media = Literal["json", "sse", "text", "html"]


@attrs.frozen
class Param:
    """A query, path or header parameter (its JSON schema)."""

    name: str
    where: Literal["query", "path", "header"]
    schema: dict[str, Any]
    description: str = ""
    required: bool = False


@attrs.frozen
class RouteSpec:
    method: str
    path: str
    name: str
    summary: str
    scope: str | None
    responses: dict[int, tuple[Any, str]]          # status -> (body type | media, description)
    body: type | None = None
    body_required: bool = True
    params: tuple[Param, ...] = ()
    media: Media = "json"                          # of the 2xx answer

    @property
    def errors(self) -> dict[int, str]:
        """The error statuses this route can answer (each with ``ErrorBody``)."""
        out = {429: "too many requests for this credential (see retry-after)",
               500: "internal failure"}
        if self.scope is not None:
            out[401] = "no valid credential (see WWW-Authenticate)"
        if self.scope not in (None, "any"):
            out[403] = "the credential lacks the scope"
        if self.body is not None:
            out.update({413: "body larger than server.max_body_bytes",
                        415: "body is not application/json"})
        out[422] = "a body, query or header parameter does not validate, or is unknown (named)"
        if "{id}" in self.path:
            out[404] = "no such session (or not yours)"
        return out


_ID = Param("id", "path", {"type": "string", "minLength": 1, "maxLength": 128,
                           "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]*$"}, "session id", True)
_CALL = Param("call_id", "path", {"type": "string", "minLength": 1, "maxLength": 256},
              "the tool call's id (from approval_request / pending_approvals)", True)

ROUTES: tuple[RouteSpec, ...] = (
    RouteSpec("POST", "/v1/sessions", "create_session", "Start a session",
              "sessions:write",
              {201: (SessionCreated, "created (queued when server.max_sessions run)"),
               409: (ErrorBody, "Idempotency-Key reused with another body, or while its "
                                "first request runs"),
               503: (ErrorBody, "the service is draining")},
              body=CreateSession,
              params=(Param("Idempotency-Key", "header",
                            {"type": "string", "minLength": 1, "maxLength": 255},
                            "the same key and body within 24 h returns the same session"),)),
    RouteSpec("GET", "/v1/sessions", "list_sessions", "List sessions (newest first)",
              "sessions:read", {200: (SessionList, "a page of sessions")},
              params=(Param("limit", "query", {"type": "integer", "minimum": 1,
                                                "maximum": 200, "default": 50}),
                      Param("cursor", "query", {"type": "string",
                                                 "pattern": "^c[0-9]{1,18}$"},
                            "the next of the previous page (opaque)"),
                      Param("status", "query", {"type": "string", "enum": [
                          "queued", "running", "waiting_approval", "waiting_input",
                          "finished", "failed", "limit", "cancelled", "interrupted"]}))),
    RouteSpec("GET", "/v1/sessions/{id}", "get_session", "One session", "sessions:read",
              {200: (SessionView, "the session")}, params=(_ID,)),
    RouteSpec("GET", "/v1/sessions/{id}/events", "session_events",
              "The session's records as Server-Sent Events", "sessions:read",
              {200: ("sse", "id: <seq>, event: <record type>, data: <record JSON>; "
                            "text_delta live; ends after session_end")},
              params=(_ID,
                      Param("Last-Event-ID", "header", {"type": "string", "pattern":
                                                        "^[0-9]{1,15}$"},
                            "resume after this record (its seq)"),
                      Param("after", "query", {"type": "integer", "minimum": 0,
                                               "maximum": 999999999999999},
                            "like Last-Event-ID"),
                      Param("deltas", "query", {"type": "boolean", "default": True},
                            "include live text_delta events")),
              media="sse"),
    RouteSpec("POST", "/v1/sessions/{id}/messages", "send_message",
              "The next user turn of a keep_open session", "sessions:write",
              {202: (Accepted, "queued for the session"),
               409: (ErrorBody, "not keep_open, ended, not started or its inbox is full")},
              body=MessageBody, params=(_ID,)),
    RouteSpec("POST", "/v1/sessions/{id}/approvals/{call_id}", "answer_approval",
              "Allow or deny a pending tool call", "approvals:write",
              {200: (ApprovalAnswer, "answered"),
               409: (ErrorBody, "no pending approval for this call")},
              body=ApprovalRequestBody, params=(_ID, _CALL)),
    RouteSpec("POST", "/v1/sessions/{id}/cancel", "cancel_session", "End a session as cancelled",
              "sessions:write",
              {202: (Accepted, "cancelling"), 409: (ErrorBody, "the session has ended")},
              body=CancelBody, body_required=False, params=(_ID,)),
    RouteSpec("GET", "/health", "health", "Liveness", None, {200: (Health, "alive")}),
    RouteSpec("GET", "/ready", "ready", "Readiness", None,
              {200: (Health, "ready"), 503: (Health, "draining")}),
    RouteSpec("GET", "/metrics", "metrics", "Prometheus metrics", "any",
              {200: ("text", "Prometheus text exposition format")}, media="text"),
    RouteSpec("GET", "/openapi.json", "openapi", "This document", "any",
              {200: ("openapi", "OpenAPI 3.1")}),
    RouteSpec("GET", "/v1/whoami", "whoami", "The caller: its id and scopes", "any",
              {200: (Identity, "who this credential is")}),
    RouteSpec("GET", "/", "index", "The web page", None,
              {200: ("html", "a self-contained page driving this API from a browser, "
                             "served with a strict Content-Security-Policy")}, media="html"),
)
