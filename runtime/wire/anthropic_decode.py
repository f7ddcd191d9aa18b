"""Anthropic Messages responses -> normalized events: ``decode_body`` for a JSON body, and
the pieces the stream decoder (``anthropic_stream``) shares with it. Pure: no I/O, no trio."""

from __future__ import annotations

from typing import Any

import msgspec

from ..errors import error_from_payload
from ..events import (
    BuiltinTool,
    ErrorEvent,
    Event,
    Finish,
    ReasoningDelta,
    ResponseStart,
    TextDelta,
    ToolCallEnd,
    ToolCallStart,
    UsageEvent,
)
from ..model import Usage, normalize_finish
from ._base import has_content, json_of, malformed, nothing

__all__ = ["CALL_EXTRAS", "arguments_of", "block_of", "call_raw", "complete_block",
           "decode_body", "error_event", "usage_of"]


class _Usage(msgspec.Struct):
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_input_tokens: int | None = None
    cache_creation_input_tokens: int | None = None


class _Block(msgspec.Struct):
    type: str
    text: str | None = None
    thinking: str | None = None
    signature: str | None = None
    data: str | None = None
    id: str | None = None
    name: str | None = None
    input: dict[str, Any] | None = None
    tool_use_id: str | None = None


class _Body(msgspec.Struct):
    id: str | None = None
    model: str | None = None
    content: list[dict[str, Any]] = []
    stop_reason: str | None = None
    usage: dict[str, Any] | None = None


def usage_of(raw: dict[str, Any], where: str = "usage") -> Usage:
    """Canonical usage of an Anthropic usage object: its ``input_tokens`` excludes cache
    reads and writes, so the canonical input is the sum of the three."""
    try:
        u = msgspec.convert(raw, _Usage)
    except msgspec.ValidationError as exc:
        raise malformed(f"{where}: usage object has a wrong type: {exc}",
                        details=str(raw)) from exc
    read = u.cache_read_input_tokens or 0
    write = u.cache_creation_input_tokens or 0
    return Usage(input_tokens=(u.input_tokens or 0) + read + write,
                 output_tokens=u.output_tokens or 0,
                 cache_read_tokens=read, cache_write_tokens=write)


def block_of(raw: dict[str, Any], where: str) -> _Block:
    try:
        return msgspec.convert(raw, _Block)
    except msgspec.ValidationError as exc:
        raise malformed(f"{where}: content block has a wrong shape: {exc}",
                        details=str(raw)) from exc


def arguments_of(value: dict[str, Any] | None) -> str:
    return msgspec.json.encode(value or {}).decode()


#: The fields of a ``tool_use`` block beyond id, name and input that go back with the call.
CALL_EXTRAS = ("caller", "toolset_name")


def call_raw(block: dict[str, Any]) -> dict[str, Any] | None:
    """What of a ``tool_use`` block must go back with it beyond id, name and input: the
    ``caller`` of a programmatic call (the code execution that made it) and a toolset
    member's ``toolset_name`` (anthropic-sdk-python ``BetaToolUseBlockParam``); None for a
    plain call."""
    if not any(k in block for k in CALL_EXTRAS):
        return None
    return {k: block[k] for k in ("type", "id", "name", *CALL_EXTRAS) if k in block}


def complete_block(i: int, raw: dict[str, Any]) -> list[Event]:
    """The events of one whole content block (a JSON body, or a block that a stream
    sends complete in its ``content_block_start``)."""
    b = block_of(raw, f"content block {i}")
    t = b.type
    if t == "text":
        if b.text is None:
            raise malformed(f"text block {i} has no text", details=str(raw))
        return [TextDelta(b.text, i)]
    if t == "thinking":
        return [ReasoningDelta(index=i, text=b.thinking or "", kind="thinking",
                               signature=b.signature, raw=raw)]
    if t == "redacted_thinking":
        return [ReasoningDelta(index=i, kind="redacted_thinking", encrypted=b.data, raw=raw)]
    if t == "tool_use":
        if b.id is None or b.name is None:
            raise malformed(f"tool_use block {i} lacks its id or name", details=str(raw))
        return [ToolCallStart(i, b.id, b.name),
                ToolCallEnd(i, arguments_of(b.input), raw=call_raw(raw))]
    # server tools and their results: server_tool_use, web_search_tool_result, ...
    return [BuiltinTool(t, b.id if b.id is not None else b.tool_use_id, b.name, i, raw)]


def error_event(payload: Any) -> ErrorEvent:
    kind, message, etype, code = error_from_payload(payload)
    return ErrorEvent(kind.value, message, type=etype, code=code, in_stream=True)


def decode_body(body: bytes) -> list[Event]:
    """A non-streamed Messages body as ``ResponseStart, ..., UsageEvent?, Finish``; an
    error object (even with status 200) as a single ``ErrorEvent``."""
    obj = json_of(body, "Anthropic response body")
    text = body if isinstance(body, str) else body.decode("utf-8", "replace")
    if not isinstance(obj, dict):
        raise malformed(f"Anthropic response body is a JSON {type(obj).__name__}, "
                        "not an object", details=text)
    if obj.get("type") == "error" or ("error" in obj and "content" not in obj):
        return [error_event(obj)]
    try:
        m = msgspec.convert(obj, _Body)
    except msgspec.ValidationError as exc:
        raise malformed(f"Anthropic message has a wrong shape: {exc}", details=text) from exc
    events: list[Event] = [ResponseStart(m.id, m.model)]
    for i, raw in enumerate(m.content):
        events.extend(complete_block(i, raw))
    if m.stop_reason is None and not has_content(events):
        raise nothing("Anthropic response body")
    if m.usage is not None:
        events.append(UsageEvent(usage_of(m.usage), raw=m.usage))
    calls = any(isinstance(e, ToolCallStart) for e in events)
    events.append(Finish(m.stop_reason, normalize_finish(m.stop_reason, calls)))
    return events
