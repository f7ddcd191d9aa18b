"""Capturing real provider exchanges as recording files (``../shared/recordings`` format).

Developer tooling for the smoke scripts (``_smoke.py`` runs the checks and prints the table;
this module captures what went over the wire), not part of the shipped package.

``RecordingTransport`` wraps an httpx transport and keeps every exchange: the request as
sent and the response bytes as they arrived (a cut stream is kept as far as it got), so
smoke scripts can show the provider's request id and write what they saw.
``recording_of`` turns exchanges into one recording file: kept headers only, the request
body parsed, the response body as text, and one ``expect`` record per interaction computed
by decoding the body with this project's own codecs. ``Redactor.value`` on the result
scrubs keys (secret headers are never kept in the first place).
"""

from __future__ import annotations

import json
import zlib
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from typing import Any

import attrs
import httpx

from runtime.errors import error_from_response
from runtime.events import ErrorEvent, ToolCallDelta, ToolCallStart, assemble
from runtime.model import BuiltinToolPart, Response
from runtime.redact import Redactor
from runtime.testing.expect import builtin_view, reasoning_view
from runtime.wire import decode_all
from runtime.wire.sse import SSEDecoder

__all__ = [
    "REQUEST_HEADERS",
    "RESPONSE_HEADERS",
    "Exchange",
    "RecordingTransport",
    "categories_of",
    "expect_of",
    "recording_of",
]

REQUEST_HEADERS = ("content-type", "accept", "anthropic-version", "anthropic-beta", "openai-beta")
RESPONSE_HEADERS = ("content-type", "retry-after", "request-id", "x-request-id")


@attrs.define
class Exchange:
    """One HTTP exchange as it went over the wire (response body as received)."""

    method: str
    path: str
    request_headers: dict[str, str]
    request_body: bytes
    status: int = 0
    response_headers: dict[str, str] = attrs.field(factory=dict)
    response_body: bytearray = attrs.field(factory=bytearray)

    @property
    def request_json(self) -> dict[str, Any]:
        try:
            body = json.loads(self.request_body or b"{}")
        except ValueError:
            return {}
        return body if isinstance(body, dict) else {}

    @property
    def request_id(self) -> str | None:
        h = self.response_headers
        return h.get("request-id") or h.get("x-request-id")

    @property
    def stream(self) -> bool:
        return "text/event-stream" in self.response_headers.get("content-type", "")

    def body_bytes(self) -> bytes:
        """The response body, decompressed if the server compressed it anyway."""
        data = bytes(self.response_body)
        if self.response_headers.get("content-encoding", "").lower() in ("gzip", "deflate"):
            try:
                return zlib.decompress(data, zlib.MAX_WBITS | 32)
            except zlib.error:
                return data
        return data


class _Tee(httpx.AsyncByteStream):
    def __init__(self, inner: httpx.AsyncByteStream, ex: Exchange) -> None:
        self._inner = inner
        self._ex = ex

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._inner:
            self._ex.response_body += chunk
            yield chunk

    async def aclose(self) -> None:
        await self._inner.aclose()


class RecordingTransport(httpx.AsyncBaseTransport):
    """Wraps a transport (default: ``httpx.AsyncHTTPTransport()``) and appends every
    exchange to ``exchanges``. The request body must be in memory (``content=``)."""

    def __init__(self, inner: httpx.AsyncBaseTransport | None = None) -> None:
        self._inner = inner or httpx.AsyncHTTPTransport()
        self.exchanges: list[Exchange] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        ex = Exchange(request.method, request.url.raw_path.decode("ascii", "replace"),
                      {k.lower(): v for k, v in request.headers.items()}, request.content)
        self.exchanges.append(ex)
        resp = await self._inner.handle_async_request(request)
        ex.status = resp.status_code
        ex.response_headers = {k.lower(): v for k, v in resp.headers.items()}
        if not isinstance(resp.stream, httpx.AsyncByteStream):
            raise TypeError("RecordingTransport needs an async transport")
        return httpx.Response(resp.status_code, headers=resp.headers,
                              stream=_Tee(resp.stream, ex), extensions=resp.extensions,
                              request=request)

    async def aclose(self) -> None:
        await self._inner.aclose()


# --- expect records ----------------------------------------------------------------------

def _usage_view(protocol: str, resp: Response) -> dict[str, Any] | None:
    u = resp.usage
    if u is None:
        return None
    inp = u.input_tokens
    if protocol == "anthropic":  # the provider's convention: input excludes cached input
        inp -= u.cache_read_tokens + u.cache_write_tokens
    return {"input_tokens": inp, "output_tokens": u.output_tokens,
            "total_tokens": u.total_tokens if protocol != "anthropic" else None,
            "cached_tokens": u.cache_read_tokens, "cache_write_tokens": u.cache_write_tokens,
            "reasoning_tokens": u.reasoning_tokens}


def _blank(index: int, status: int, stream: bool) -> dict[str, Any]:
    return {"interaction": index, "status": status, "stream": stream, "error": None,
            "response_id": None, "model": None, "text": "", "text_parts": [], "tool_calls": [],
            "builtin_tool_calls": [], "finish_reason": None, "usage": None, "usage_raw": None,
            "reasoning": [], "refusal": None, "n_choices": None, "done_sentinel": None,
            "sse_event_count": None}


def expect_of(protocol: str, index: int, status: int, headers: dict[str, str],
              body: bytes) -> dict[str, Any]:
    """The ``expect`` record of one response, decoded with this project's codec."""
    stream = "text/event-stream" in headers.get("content-type", "")
    rec = _blank(index, status, stream)
    if status >= 400:
        err = error_from_response(status, headers, body)
        rec["error"] = {"status": status, "type": err.type, "code": err.code,
                        "message": err.message}
        return rec
    events, count, failure = decode_all(protocol, body, stream=stream)
    if failure is not None:  # kept as recorded; the record says what went wrong
        rec["error"] = {"status": status, "type": "malformed_response", "code": None,
                        "message": failure.message, "in_stream": True}
        return rec
    resp = assemble(events, protocol)
    for ev in events:
        if isinstance(ev, ErrorEvent):
            rec["error"] = {"status": ev.status or status, "type": ev.type, "code": ev.code,
                            "message": ev.message, "in_stream": True}
    deltas = Counter(ev.index for ev in events if isinstance(ev, ToolCallDelta))
    starts = [ev.index for ev in events if isinstance(ev, ToolCallStart)]
    calls = []
    for i, c in enumerate(resp.tool_calls):
        try:
            args: Any = json.loads(c.arguments)
        except ValueError:
            args = c.arguments
        call: dict[str, Any] = {"id": c.id, "name": c.name, "arguments": args}
        if protocol == "openai-responses":
            call["item_id"] = c.item_id
        if stream:
            call["argument_delta_count"] = deltas.get(starts[i], 0) if i < len(starts) else 0
        calls.append(call)
    rec.update({
        "response_id": resp.id, "model": resp.model, "text": resp.text,
        "text_parts": resp.text_parts, "tool_calls": calls,
        "builtin_tool_calls": [builtin_view(p, protocol) for p in resp.parts
                               if isinstance(p, BuiltinToolPart)],
        "finish_reason": resp.finish_reason, "usage": _usage_view(protocol, resp),
        "usage_raw": resp.usage_raw, "reasoning": [reasoning_view(p) for p in resp.reasoning],
        "refusal": resp.refusal,
    })
    if stream:
        rec["sse_event_count"] = count
        if protocol == "openai-chat":
            sse = SSEDecoder()
            rec["done_sentinel"] = any(sev.data == "[DONE]"
                                       for sev in [*sse.feed(body), *sse.close()])
    elif protocol == "openai-chat":
        try:
            rec["n_choices"] = len(json.loads(body).get("choices") or [])
        except (ValueError, AttributeError):
            rec["n_choices"] = None
    return rec


# --- recording files ---------------------------------------------------------------------

def _carries_tool_results(body: dict[str, Any]) -> bool:
    for m in body.get("messages") or []:
        if isinstance(m, dict) and m.get("role") == "tool":
            return True
        content = m.get("content") if isinstance(m, dict) else None
        if isinstance(content, list) and any(
                isinstance(b, dict) and b.get("type") == "tool_result" for b in content):
            return True
    items = body.get("input")
    return isinstance(items, list) and any(
        isinstance(i, dict) and i.get("type") == "function_call_output" for i in items)


def categories_of(interactions: list[dict[str, Any]], expect: list[dict[str, Any]]
                  ) -> list[str]:
    """The README categories that apply to any interaction of a file."""
    cats: set[str] = set()
    if len(interactions) >= 2:
        cats.add("multi_turn")
    for inter, exp in zip(interactions, expect, strict=True):
        calls = exp["tool_calls"]
        if exp["error"] is not None:
            cats.add("error")
        if exp["stream"]:
            cats.add("stream")
            if not calls and exp["error"] is None:
                cats.add("stream_text")
            if any(c.get("argument_delta_count", 0) >= 2 for c in calls):
                cats.add("streamed_tool_args")
        elif exp["text"] and not calls:
            cats.add("text")
            if len(interactions) == 1 and not inter["request"]["body"].get("tools"):
                cats.add("simple_text")
        if calls:
            cats.add("tool_call")
        if len(calls) >= 2:
            cats.add("parallel_tool_calls")
        if _carries_tool_results(inter["request"]["body"]):
            cats.add("tool_loop")
        for r in exp["reasoning"]:
            cats.add("reasoning")
            if r.get("has_signature") or r.get("has_encrypted_content") or r.get("has_data"):
                cats.add("reasoning_opaque")
            if r["type"] == "redacted_thinking":
                cats.add("redacted_thinking")
        u = exp["usage"] or {}
        if (u.get("cached_tokens") or 0) > 0 or (u.get("cache_write_tokens") or 0) > 0:
            cats.add("cached_tokens")
        if exp["builtin_tool_calls"]:
            cats.add("builtin_tools")
    return sorted(cats)


def recording_of(protocol: str, exchanges: Iterable[Exchange], *, source: str,
                 folder: str | None = None, provider: str = "openai",
                 redactor: Redactor | None = None) -> dict[str, Any]:
    """One recording file (a dict) for ``exchanges`` of one wire ``protocol``; ``folder`` is
    the recording folder name (``openrouter`` for OpenRouter, else the protocol). Bodies
    are scrubbed by ``redactor`` before the ``expect`` records are computed from them."""
    red = redactor or Redactor()
    interactions: list[dict[str, Any]] = []
    expect: list[dict[str, Any]] = []
    for i, ex in enumerate(exchanges):
        text = red.text(ex.body_bytes().decode("utf-8", "replace"))
        body = text.encode()
        headers = {k: v for k, v in ex.response_headers.items() if k in RESPONSE_HEADERS}
        interactions.append({
            "request": {"method": ex.method, "path": ex.path,
                        "headers": {k: v for k, v in ex.request_headers.items()
                                    if k in REQUEST_HEADERS},
                        "body": red.value(ex.request_json)},
            "response": {"status": ex.status, "headers": headers, "body": text},
        })
        expect.append(expect_of(protocol, i, ex.status, headers, body))
    rec = {"source": source, "protocol": folder or protocol, "provider": provider,
           "categories": categories_of(interactions, expect), "interactions": interactions,
           "expect": expect}
    return red.value(rec)  # type: ignore[no-any-return]
