"""Faults the fake provider injects, each a plain value that turns into a reply plan.

A fault either answers on its own (``rate_limited``, ``server_error``, ``overloaded``,
``html_error``, ``streaming_refused``, ``custom``, ``echo_auth``) or wraps a reply that it
breaks part-way (``cut_mid_stream``, ``malformed_chunk``, ``stall``, ``error_in_stream``:
``then`` is the entry to send, a default text answer when omitted). ``Fault.plan`` is pure:
it maps the request and the plan of ``then`` to the steps to carry out.

For a reply sent with a content-length (a JSON body) ``after_events`` has no events to
count: a cut sends half of the body, a malformed chunk replaces the body, a stall waits
after the headers.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from ..model import Response, TextPart
from .script import (
    ENCODERS,
    Cut,
    Entry,
    Head,
    Raw,
    RecordedRequest,
    Send,
    Sleep,
    Step,
    encoder_for,
    plan_of,
)

__all__ = [
    "DEFAULT_ANSWER",
    "MALFORMED_EVENT",
    "Fault",
    "custom",
    "cut_mid_stream",
    "dropped_connection",
    "echo_auth",
    "error_body",
    "error_in_stream",
    "html_error",
    "malformed_chunk",
    "overloaded",
    "rate_limited",
    "server_error",
    "stall",
    "streaming_refused",
]

DEFAULT_ANSWER = Response(
    id="fake-default", model="fake-model",
    parts=[TextPart("This is the fake provider's default answer, sent by a fault.")],
)
MALFORMED_EVENT = b'data: {"broken": \n\n'

_ANTHROPIC_TYPES = {400: "invalid_request_error", 401: "authentication_error",
                    403: "permission_error", 404: "not_found_error", 413: "request_too_large",
                    429: "rate_limit_error", 529: "overloaded_error"}
_OPENAI_TYPES = {400: "invalid_request_error", 401: "invalid_request_error",
                 403: "invalid_request_error", 404: "invalid_request_error",
                 429: "rate_limit_exceeded"}


def error_body(protocol: str | None, status: int, message: str, *,
               type: str | None = None) -> dict[str, Any]:
    """The protocol's error body: its encoder's ``error_body`` when that module exists,
    else the vendor's documented shape (so faults work before any encoder is written)."""
    name = ENCODERS.get(protocol or "")
    if name is not None and importlib.util.find_spec(f"runtime.testing.wire.{name}"):
        body: dict[str, Any] = encoder_for(protocol or "").error_body(status, message, type=type)
        return body
    if protocol == "anthropic":
        etype = type or _ANTHROPIC_TYPES.get(status, "api_error")
        return {"type": "error", "error": {"type": etype, "message": message}}
    etype = type or _OPENAI_TYPES.get(status, "server_error")
    code = "rate_limit_exceeded" if status == 429 else None
    return {"error": {"message": message, "type": etype, "param": None, "code": code}}


def _html_page(status: int) -> bytes:
    from http import HTTPStatus

    try:
        title = f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        title = f"{status} Origin Error"
    return (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
        f"<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n"
        "</body>\r\n</html>\r\n"
    ).encode()


Body = bytes | str | dict[str, Any] | Callable[[RecordedRequest], Any]
# the SSE event name each protocol gives an error inside a stream (chat: none, data only)
_ERROR_EVENT = {"openai-responses": "error", "anthropic": "error"}


@attrs.frozen
class Fault:
    """One injected failure; ``name`` is how ``server.faults_served`` counts it.

    ``action`` is ``reply`` (answer with ``status``/``headers``/``body``), ``cut``,
    ``malformed``, ``stall`` (break ``then`` after ``after_events``), ``error_event`` (send
    ``then``'s first ``after_events`` events, then the error object ``body`` as an SSE event
    named ``event``, and end the 200 stream), ``refuse_stream`` or ``drop`` (close the
    connection without a byte of answer).
    """

    name: str
    action: str = "reply"
    status: int = 500
    headers: Mapping[str, str] = attrs.field(factory=dict)
    body: Body | None = None
    message: str = ""
    error_type: str | None = None
    then: Entry | None = None
    after_events: int | None = 0
    seconds: float = 0.0
    event: str | None = None

    def applies_to(self, req: RecordedRequest) -> bool:
        """False when the request passes through untouched (streaming refused, asked
        without streaming)."""
        return self.action != "refuse_stream" or req.stream

    @property
    def answer(self) -> Entry:
        """The entry a breaking fault sends (and breaks)."""
        return DEFAULT_ANSWER if self.then is None else self.then

    def plan(self, req: RecordedRequest, then_plan: list[Step] | None = None) -> list[Step]:
        """The steps that serve this fault; ``then_plan`` is the plan of ``answer``."""
        if self.action in ("reply", "refuse_stream"):
            return plan_of(self._raw(req))
        if self.action == "drop":
            return [Cut()]
        if then_plan is None:
            raise ValueError(f"fault {self.name} needs the plan of the reply it breaks")
        head = then_plan[0]
        if not isinstance(head, Head):
            raise ValueError(f"fault {self.name}: the plan must start with its head")
        body = [s.data for s in then_plan[1:] if isinstance(s, Send)]
        if self.action == "stall":
            return self._stall(head, body)
        if self.action == "cut":
            if head.length is None:
                n = self.after_events or 0
                return [head, *(Send(c) for c in body[:n]), Cut()]
            data = b"".join(body)
            return [head, Send(data[: len(data) // 2]), Cut()]
        if self.action == "error_event":
            return self._error_event(req, head, body)
        if self.action == "malformed":
            if head.length is None:
                n = self.after_events or 0
                sent = [*body[:n], MALFORMED_EVENT, *body[n:]]
                return [head, *(Send(c) for c in sent)]
            broken = MALFORMED_EVENT[len(b"data: "):].strip()
            return [attrs.evolve(head, length=len(broken)), Send(broken)]
        raise ValueError(f"unknown fault action {self.action!r}")

    def _error_event(self, req: RecordedRequest, head: Head, body: list[bytes]) -> list[Step]:
        payload = self.body(req) if callable(self.body) else self.body
        if not isinstance(payload, dict):
            raise ValueError(f"fault {self.name} needs an error object (a dict) as its body")
        data = json.dumps(payload).encode()
        if head.length is not None:  # asked without streaming: the error is the 200 body
            return plan_of(Raw(200, {"content-type": "application/json"}, data))
        event = self.event if self.event is not None else _ERROR_EVENT.get(req.protocol)
        sse = (f"event: {event}\n".encode() if event else b"") + b"data: " + data + b"\n\n"
        n = self.after_events or 0
        return [head, *(Send(c) for c in body[:n]), Send(sse)]

    def _stall(self, head: Head, body: list[bytes]) -> list[Step]:
        wait = Sleep(self.seconds)
        if self.after_events is None:
            return [wait, head, *(Send(c) for c in body)]
        n = self.after_events if head.length is None else 0
        return [head, *(Send(c) for c in body[:n]), wait, *(Send(c) for c in body[n:])]

    def _raw(self, req: RecordedRequest) -> Raw:
        body = self.body
        if callable(body):
            body = body(req)
        if body is None:
            body = error_body(req.protocol, self.status, self.message, type=self.error_type)
        headers = dict(self.headers)
        if isinstance(body, dict):
            headers.setdefault("content-type", "application/json")
            return Raw(self.status, headers, json.dumps(body).encode())
        headers.setdefault("content-type", "text/plain; charset=utf-8")
        return Raw(self.status, headers, body if isinstance(body, bytes) else str(body).encode())


def dropped_connection() -> Fault:
    """Close the connection without answering: what a keep-alive connection the server
    closed just as the client reused it looks like."""
    return Fault("dropped_connection", action="drop")


def _seconds_header(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else str(seconds)


def rate_limited(retry_after: float | None = 1.0) -> Fault:
    """429 with a ``retry-after`` header (none when ``retry_after`` is None)."""
    headers = {} if retry_after is None else {"retry-after": _seconds_header(retry_after)}
    return Fault("rate_limited", status=429, headers=headers,
                 message="Rate limit reached for requests (fake provider). Please retry.")


def server_error(status: int = 500) -> Fault:
    """A 5xx answer with the protocol's error body."""
    return Fault("server_error", status=status,
                 message="The server had an error while processing your request (fake provider).")


def overloaded() -> Fault:
    """529 with Anthropic's overloaded body, whatever the protocol."""
    return Fault("overloaded", status=529, body={
        "type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})


def html_error(status: int = 502) -> Fault:
    """An nginx/Cloudflare-like HTML error page (``content-type: text/html``)."""
    return Fault("html_error", status=status, body=_html_page(status),
                 headers={"content-type": "text/html"})


def cut_mid_stream(then: Entry | None = None, after_events: int = 2) -> Fault:
    """Send 200 and the first ``after_events`` events, then close the TCP connection."""
    return Fault("cut_mid_stream", action="cut", then=then, after_events=after_events)


def malformed_chunk(then: Entry | None = None, after_events: int = 1) -> Fault:
    """Insert ``data: {"broken": `` (invalid JSON) after ``after_events`` events."""
    return Fault("malformed_chunk", action="malformed", then=then, after_events=after_events)


def stall(seconds: float = 3600.0, then: Entry | None = None,
          after_events: int | None = 0) -> Fault:
    """Send the headers and ``after_events`` events, then sleep ``seconds`` before the rest;
    ``after_events=None`` sleeps before the headers."""
    return Fault("stall", action="stall", then=then, after_events=after_events, seconds=seconds)


def error_in_stream(error: dict[str, Any] | Callable[[RecordedRequest], dict[str, Any]], *,
                    event: str | None = None, then: Entry | None = None,
                    after_events: int = 0) -> Fault:
    """A 200 stream that reports an error: the first ``after_events`` events of ``then``,
    then ``error`` (the provider's error object, as it sends it) as an SSE event named
    ``event`` (default: ``error`` for Responses and Anthropic, a bare ``data:`` line for
    chat). A request without streaming gets ``error`` as its 200 JSON body."""
    return Fault("error_in_stream", action="error_event", status=200, body=error, then=then,
                 after_events=after_events, event=event)


def streaming_refused() -> Fault:
    """400 "stream not supported" to a streamed request; other requests pass through."""
    return Fault("streaming_refused", action="refuse_stream", status=400,
                 message="stream not supported")


def custom(status: int, body: Body | None = None, headers: Mapping[str, str] | None = None,
           *, name: str = "custom") -> Fault:
    """Any other answer; ``body`` may be bytes, text, a JSON dict or a callable of the
    request (None: the protocol's error body for ``status``)."""
    return Fault(name, status=status, body=body, headers=dict(headers or {}),
                 message=f"fake provider error {status}")


def echo_auth(status: int = 401) -> Fault:
    """An auth error whose body echoes the request's credentials (``authorization`` and
    ``x-api-key``), as careless proxies do: for testing redaction."""

    def body(req: RecordedRequest) -> dict[str, Any]:
        creds = [req.headers[h] for h in ("authorization", "x-api-key") if h in req.headers]
        message = f"Incorrect API key provided: {' '.join(creds) or '(none)'}"
        return error_body(req.protocol, status, message)

    return custom(status, body, name="echo_auth")
