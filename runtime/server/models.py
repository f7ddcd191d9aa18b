"""The bodies of the HTTP API as msgspec Structs (pure).

Request bodies forbid unknown fields and carry their constraints, so one definition
validates a request (422 naming the field) and documents it in ``/openapi.json``; response
bodies are encoded from the same Structs the spec is generated from.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

__all__ = [
    "STATUSES",
    "Accepted",
    "ApprovalAnswer",
    "ApprovalRequestBody",
    "CancelBody",
    "CreateSession",
    "Health",
    "Identity",
    "MessageBody",
    "PendingApproval",
    "SessionCreated",
    "SessionList",
    "SessionView",
    "Status",
    "Totals",
]

Status = Literal["queued", "running", "waiting_approval", "waiting_input", "finished",
                 "failed", "limit", "cancelled", "interrupted"]
STATUSES: tuple[str, ...] = ("queued", "running", "waiting_approval", "waiting_input",
                             "finished", "failed", "limit", "cancelled", "interrupted")

# not only whitespace (Python's whitespace, spelled out so that ECMA-262 readers of the
# JSON Schema agree with the server's reading)
_VISIBLE = ("[^\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029"
            "\u202f\u205f\u3000]")
Text = Annotated[str, msgspec.Meta(min_length=1, max_length=200_000, pattern=_VISIBLE)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Reason = Annotated[str, msgspec.Meta(max_length=2000)]
MetaKey = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
MetaValue = Annotated[str, msgspec.Meta(max_length=500)] | int | float | bool | None
Metadata = Annotated[dict[MetaKey, MetaValue], msgspec.Meta(max_length=32)]


class _Body(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """A request body: unknown fields are errors."""


class CreateSession(_Body):
    """``POST /v1/sessions``: the task and what overrides the config for this session."""

    task: Text
    provider: Name | None = None
    model: Name | None = None
    max_turns: Annotated[int, msgspec.Meta(ge=1, le=1000)] | None = None
    keep_open: bool = False
    metadata: Metadata | None = None


class MessageBody(_Body):
    """``POST /v1/sessions/{id}/messages``: the next user turn."""

    text: Text


class ApprovalRequestBody(_Body):
    """``POST /v1/sessions/{id}/approvals/{call_id}``; ``always`` allows every later call
    of the same tool in this session."""

    allow: bool
    reason: Reason | None = None
    always: bool = False


class CancelBody(_Body):
    """``POST /v1/sessions/{id}/cancel`` (the body is optional)."""

    reason: Reason | None = None


class Totals(msgspec.Struct):
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    total_tokens: int = 0
    cost_usd: float = 0.0


class PendingApproval(msgspec.Struct):
    call_id: str
    name: str
    arguments: Any


class SessionCreated(msgspec.Struct):
    id: str
    status: Status
    events_url: str


class SessionView(msgspec.Struct):
    """One session as the API shows it."""

    id: str
    status: Status
    turns: int
    answer: str | None
    totals: Totals
    pending_approvals: list[PendingApproval]
    created_at: float
    keep_open: bool
    metadata: dict[str, Any] | None
    owner: str
    message: str | None
    events_url: str


class SessionList(msgspec.Struct):
    sessions: list[SessionView]
    next: str | None


class Accepted(msgspec.Struct):
    """The answer to a message, an approval or a cancellation."""

    id: str
    status: Status


class ApprovalAnswer(msgspec.Struct):
    id: str
    call_id: str
    allow: bool
    status: Status


class Identity(msgspec.Struct):
    """``GET /v1/whoami``: the caller as the service sees it; ``id`` owns the sessions it
    creates (``key:<name>`` or ``jwt:<subject>``)."""

    id: str
    kind: Literal["key", "jwt"]
    name: str
    scopes: list[str]


class Health(msgspec.Struct, omit_defaults=True):
    status: Literal["ok", "draining"]
    backend: Literal["ok", "unreachable"] | None = None   # with a fleet: whether Redis answers
