"""Anthropic Messages responses -> normalized events: ``decode_body`` for a JSON body,
``StreamDecoder`` for the SSE stream. Pure: no I/O, no trio.

The stream is a state machine whose legal moves are the table ``MOVES``; content blocks
are tracked separately by ``index`` because servers differ in how they nest them
(llama.cpp leaves its text block open while a tool block starts and stops both at the end).
Every surprise becomes ``malformed(...)`` naming the state it arrived in.
"""

from __future__ import annotations

from typing import Any

import msgspec

from ..errors import ErrorKind, ProviderError, error_from_payload
from ..events import (
    BuiltinTool,
    ErrorEvent,
    Event,
    Finish,
    ReasoningDelta,
    ResponseStart,
    TextDelta,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    UsageEvent,
)
from ..model import Usage, normalize_finish
from ._base import json_of, malformed
from .sse import SSEEvent

__all__ = ["MOVES", "StreamDecoder", "decode_body", "usage_of"]


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


class _Delta(msgspec.Struct):
    type: str
    text: str | None = None
    partial_json: str | None = None
    thinking: str | None = None
    signature: str | None = None


class _BlockDelta(msgspec.Struct):
    index: int
    delta: _Delta


class _BlockStart(msgspec.Struct):
    index: int
    content_block: dict[str, Any]


class _BlockStop(msgspec.Struct):
    index: int


class _MessageInfo(msgspec.Struct):
    id: str | None = None
    model: str | None = None
    usage: dict[str, Any] | None = None


class _MessageStart(msgspec.Struct):
    message: _MessageInfo


class _StopInfo(msgspec.Struct):
    stop_reason: str | None = None


class _MessageDelta(msgspec.Struct):
    delta: _StopInfo = msgspec.field(default_factory=_StopInfo)
    usage: dict[str, Any] | None = None


class _Typed(msgspec.Struct):
    type: str = ""


_DELTA = msgspec.json.Decoder(_BlockDelta)
_START = msgspec.json.Decoder(_BlockStart)
_STOP = msgspec.json.Decoder(_BlockStop)
_MSG_START = msgspec.json.Decoder(_MessageStart)
_MSG_DELTA = msgspec.json.Decoder(_MessageDelta)
_TYPED = msgspec.json.Decoder(_Typed)


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


def _block(raw: dict[str, Any], where: str) -> _Block:
    try:
        return msgspec.convert(raw, _Block)
    except msgspec.ValidationError as exc:
        raise malformed(f"{where}: content block has a wrong shape: {exc}",
                        details=str(raw)) from exc


def _arguments(value: dict[str, Any] | None) -> str:
    return msgspec.json.encode(value or {}).decode()


def _complete_block(i: int, raw: dict[str, Any]) -> list[Event]:
    """The events of one whole content block (a JSON body, or a block that a stream
    sends complete in its ``content_block_start``)."""
    b = _block(raw, f"content block {i}")
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
        return [ToolCallStart(i, b.id, b.name), ToolCallEnd(i, _arguments(b.input))]
    # server tools and their results: server_tool_use, web_search_tool_result, ...
    return [BuiltinTool(t, b.id if b.id is not None else b.tool_use_id, b.name, i, raw)]


def _error_event(payload: Any) -> ErrorEvent:
    kind, message, etype, code = error_from_payload(payload)
    return ErrorEvent(kind.value, message, type=etype, code=code, in_stream=True)


def decode_body(body: bytes) -> list[Event]:
    """A non-streamed Messages body as ``ResponseStart, ..., UsageEvent?, Finish``; an
    error object (even with status 200) as a single ``ErrorEvent``."""
    obj = json_of(body, "Anthropic response body")
    if not isinstance(obj, dict):
        raise malformed(f"Anthropic response body is a JSON {type(obj).__name__}, "
                        "not an object", details=body.decode("utf-8", "replace"))
    if obj.get("type") == "error" or ("error" in obj and "content" not in obj):
        return [_error_event(obj)]
    try:
        m = msgspec.convert(obj, _Body)
    except msgspec.ValidationError as exc:
        raise malformed(f"Anthropic message has a wrong shape: {exc}",
                        details=body.decode("utf-8", "replace")) from exc
    events: list[Event] = [ResponseStart(m.id, m.model)]
    for i, raw in enumerate(m.content):
        events.extend(_complete_block(i, raw))
    if m.usage is not None:
        events.append(UsageEvent(usage_of(m.usage), raw=m.usage))
    calls = any(isinstance(e, ToolCallStart) for e in events)
    events.append(Finish(m.stop_reason, normalize_finish(m.stop_reason, calls)))
    return events


# ---------------------------------------------------------------- the stream

_KNOWN = ("message_start", "content_block_start", "content_block_delta", "content_block_stop",
          "message_delta", "message_stop", "ping", "error")
_KNOWN_SET = frozenset(_KNOWN)

#: Legal moves of the stream: ``{state: {event type: next state}}``. Block events are
#: checked per ``index`` on top of this (a delta or stop needs its block open).
MOVES: dict[str, dict[str, str]] = {
    "idle": {"message_start": "open", "ping": "idle", "error": "failed"},
    "open": {"content_block_start": "open", "content_block_delta": "open",
             "content_block_stop": "open", "ping": "open", "message_delta": "closing",
             "message_stop": "done", "error": "failed"},
    "closing": {"message_delta": "closing", "content_block_stop": "closing",
                "ping": "closing", "message_stop": "done", "error": "failed"},
    "done": {"ping": "done"},
    # after an in-stream error nothing more is decoded; the stream may just end
    "failed": dict.fromkeys(_KNOWN, "failed"),
}


class _Open:
    """A content block between its start and stop."""

    __slots__ = ("has_delta", "kind", "pieces", "sig", "start")

    def __init__(self, kind: str, start: dict[str, Any]) -> None:
        self.kind = kind
        self.start = start
        self.pieces: list[str] = []
        self.sig: list[str] = []
        self.has_delta = False


class StreamDecoder:
    """Feed SSE events of one Messages stream; ``close()`` at the end of the bytes."""

    def __init__(self) -> None:
        self.sse_events = 0
        self.state = "idle"
        self._blocks: dict[int, _Open] = {}
        self._seen: set[int] = set()
        self._usage: dict[str, Any] | None = None
        self._usage_sent = False
        self._reason: str | None = None
        self._calls = False

    def feed(self, ev: SSEEvent) -> list[Event]:
        self.sse_events += 1
        name = ev.event
        if name not in _KNOWN_SET:
            # no `event:` line (or an unknown one): the data's own type decides
            name = self._sniff(ev.data)
            if name not in _KNOWN_SET:
                return []  # unknown and harmless
        state = self.state
        nxt = MOVES[state].get(name)
        if nxt is None:
            raise malformed(f"unexpected {name} event in stream state {state!r}",
                            details=ev.data)
        self.state = nxt
        if state == "failed":
            return []
        try:
            if name == "content_block_delta":
                return self._delta(_DELTA.decode(ev.data), state)
            if name == "content_block_start":
                return self._start(_START.decode(ev.data), state)
            if name == "content_block_stop":
                return self._stop(_STOP.decode(ev.data).index, state)
            if name == "ping":
                return []
            if name == "message_start":
                info = _MSG_START.decode(ev.data).message
                self._usage = info.usage
                return [ResponseStart(info.id, info.model)]
            if name == "message_delta":
                return self._message_delta(_MSG_DELTA.decode(ev.data))
            if name == "error":
                return [self._error(ev.data)]
            return []  # message_stop: Finish comes with close()
        except msgspec.DecodeError as exc:
            raise malformed(f"bad {name} event in stream state {state!r}: {exc}",
                            details=ev.data) from exc

    def close(self) -> list[Event]:
        """End of the byte stream: the remaining events, ending with ``Finish``."""
        state, self.state = self.state, "closed"
        if state in ("failed", "closed"):
            return []
        if state != "done":
            raise ProviderError(
                ErrorKind.STREAM_INTERRUPTED,
                f"Anthropic stream ended in state {state!r} before message_stop",
            )
        out: list[Event] = []
        for index in sorted(self._blocks):  # blocks a lenient server never stopped
            out.extend(self._finish(index, self._blocks.pop(index), state))
        if not self._usage_sent and self._usage is not None:
            out.append(UsageEvent(usage_of(self._usage), raw=self._usage))
        out.append(Finish(self._reason, normalize_finish(self._reason, self._calls)))
        return out

    # -- handlers

    def _sniff(self, data: str) -> str:
        try:
            return _TYPED.decode(data).type
        except msgspec.DecodeError as exc:
            raise malformed(f"stream event in state {self.state!r} is not a JSON object "
                            f"with a type: {exc}", details=data) from exc

    def _error(self, data: str) -> ErrorEvent:
        try:
            payload: Any = msgspec.json.decode(data)
        except msgspec.DecodeError:
            payload = {"error": {"message": data.strip() or "error event"}}
        return _error_event(payload)

    def _delta(self, d: _BlockDelta, state: str) -> list[Event]:
        blk = self._blocks.get(d.index)
        if blk is None:
            raise malformed(f"content_block_delta for block {d.index}, which is not open, "
                            f"in stream state {state!r}")
        delta = d.delta
        t = delta.type
        if t == "text_delta" and blk.kind == "text" and delta.text is not None:
            return [TextDelta(delta.text, d.index)]
        if t == "input_json_delta" and delta.partial_json is not None:
            if blk.kind == "tool":
                blk.has_delta = True
                return [ToolCallDelta(d.index, delta.partial_json)]
            if blk.kind == "server":
                blk.pieces.append(delta.partial_json)
                return []
        elif t == "thinking_delta" and blk.kind == "thinking" and delta.thinking is not None:
            blk.pieces.append(delta.thinking)
            return [ReasoningDelta(index=d.index, text=delta.thinking, kind="thinking")]
        elif t == "signature_delta" and blk.kind == "thinking" and delta.signature is not None:
            blk.sig.append(delta.signature)
            return [ReasoningDelta(index=d.index, kind="thinking", signature=delta.signature)]
        elif t not in ("text_delta", "input_json_delta", "thinking_delta", "signature_delta"):
            return []  # citations_delta and other additions: harmless
        raise malformed(f"{t} does not fit {blk.kind} block {d.index} "
                        f"in stream state {state!r}")

    def _start(self, s: _BlockStart, state: str) -> list[Event]:
        i = s.index
        if i in self._seen:
            raise malformed(f"content block {i} started twice (stream state {state!r})")
        self._seen.add(i)
        raw = s.content_block
        b = _block(raw, f"content_block_start {i}")
        t = b.type
        if t == "text":
            self._blocks[i] = _Open("text", raw)
            return [TextDelta(b.text or "", i)]
        if t == "thinking":
            blk = self._blocks[i] = _Open("thinking", raw)
            if b.thinking:
                blk.pieces.append(b.thinking)
            if b.signature:
                blk.sig.append(b.signature)
            return [ReasoningDelta(index=i, text=b.thinking or "", kind="thinking",
                                   signature=b.signature or None)]
        if t == "tool_use":
            if b.id is None or b.name is None:
                raise malformed(f"tool_use block {i} lacks its id or name", details=str(raw))
            self._blocks[i] = _Open("tool", raw)
            self._calls = True
            return [ToolCallStart(i, b.id, b.name)]
        if t == "redacted_thinking":
            self._blocks[i] = _Open("whole", raw)
            return _complete_block(i, raw)
        self._blocks[i] = _Open("server", raw)
        return []

    def _stop(self, index: int, state: str) -> list[Event]:
        blk = self._blocks.pop(index, None)
        if blk is None:
            raise malformed(f"content_block_stop for block {index}, which is not open, "
                            f"in stream state {state!r}")
        return self._finish(index, blk, state)

    def _finish(self, i: int, blk: _Open, state: str) -> list[Event]:
        kind = blk.kind
        if kind == "tool":
            if blk.has_delta:
                return [ToolCallEnd(i)]
            start_input = blk.start.get("input")
            return [ToolCallEnd(i, _arguments(start_input if isinstance(start_input, dict)
                                              else None))]
        if kind == "thinking":
            raw: dict[str, Any] = {"type": "thinking", "thinking": "".join(blk.pieces)}
            if blk.sig:
                raw["signature"] = "".join(blk.sig)
            return [ReasoningDelta(index=i, kind="thinking", raw=raw)]
        if kind == "server":
            raw = blk.start
            joined = "".join(blk.pieces)
            if joined:
                where = f"input of server tool block {i} (stream state {state!r})"
                raw = {**raw, "input": json_of(joined, where)}
            return _complete_block(i, raw)
        return []

    def _message_delta(self, m: _MessageDelta) -> list[Event]:
        if m.delta.stop_reason is not None:
            self._reason = m.delta.stop_reason
        if m.usage is None:
            return []
        merged = dict(self._usage or {})
        merged.update((k, v) for k, v in m.usage.items() if v is not None)
        self._usage = merged
        self._usage_sent = True
        return [UsageEvent(usage_of(merged, "message_delta in stream state 'closing'"),
                           raw=merged)]
