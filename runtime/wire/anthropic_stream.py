"""The Anthropic Messages event stream -> normalized events. Pure: no I/O, no trio.

The stream is a state machine whose legal moves are the table ``MOVES``; content blocks
are tracked separately by ``index`` because servers differ in how they nest them
(llama.cpp leaves its text block open while a tool block starts and stops both at the end).
Every surprise becomes ``malformed(...)`` naming the state it arrived in.

Some streams (programmatic tool calling) carry the answer whole in ``message_start``: its
``content`` blocks and ``stop_reason`` decode to the events the same blocks would give
streamed, and such a message is complete even if the stream ends before ``message_stop``.
A repeated ``message_start`` is ignored when it is a verbatim repeat (same id, content and
stop reason) and ``malformed_response`` otherwise (another message spliced in). A stream
that ends with neither content nor a stop reason nor an error is ``malformed_response``.

HOT PATH: ``feed`` runs per streamed chunk. Each ``data`` is decoded by a module-level
``msgspec.json.Decoder`` of typed Structs; text and tool-argument deltas of the open block
take an inlined path.
"""

from __future__ import annotations

from typing import Any

import msgspec

from ..errors import ErrorKind, ProviderError
from ..events import (
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
from ..model import normalize_finish
from ._base import has_content, json_of, malformed, nothing
from .anthropic_decode import (
    arguments_of,
    block_of,
    call_raw,
    complete_block,
    error_event,
    usage_of,
)
from .sse import SSEEvent
from .sse_split import Pair

__all__ = ["MOVES", "StreamDecoder"]


class _Text(msgspec.Struct, tag="text_delta", tag_field="type"):
    text: str


class _Json(msgspec.Struct, tag="input_json_delta", tag_field="type"):
    partial_json: str


class _Thinking(msgspec.Struct, tag="thinking_delta", tag_field="type"):
    thinking: str


class _Signature(msgspec.Struct, tag="signature_delta", tag_field="type"):
    signature: str


class _BlockDelta(msgspec.Struct):
    """The hot path: a tagged union decodes faster than a flat struct of optionals."""

    index: int
    delta: _Text | _Json | _Thinking | _Signature


class _OtherDelta(msgspec.Struct):
    type: str


class _AnyBlockDelta(msgspec.Struct):
    """A delta the union refused: another type (citations_delta, ...) or a broken one."""

    index: int
    delta: _OtherDelta


class _Compaction(msgspec.Struct):
    """A ``compaction_delta`` (server-side compaction, beta ``compact-2026-01-12``)."""

    content: str | None = None
    encrypted_content: str | None = None


class _CompactionDelta(msgspec.Struct):
    index: int
    delta: _Compaction


class _BlockStart(msgspec.Struct):
    index: int
    content_block: dict[str, Any]


class _BlockStop(msgspec.Struct):
    index: int


class _MessageInfo(msgspec.Struct):
    id: str | None = None
    model: str | None = None
    usage: dict[str, Any] | None = None
    content: list[dict[str, Any]] | None = None
    stop_reason: str | None = None


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
_ANY_DELTA = msgspec.json.Decoder(_AnyBlockDelta)
_DELTA_TYPES = {"text_delta", "input_json_delta", "thinking_delta", "signature_delta"}
_COMPACTION_DELTA = msgspec.json.Decoder(_CompactionDelta)
_START = msgspec.json.Decoder(_BlockStart)
_STOP = msgspec.json.Decoder(_BlockStop)
_MSG_START = msgspec.json.Decoder(_MessageStart)
_MSG_DELTA = msgspec.json.Decoder(_MessageDelta)
_TYPED = msgspec.json.Decoder(_Typed)

_KNOWN = ("message_start", "content_block_start", "content_block_delta", "content_block_stop",
          "message_delta", "message_stop", "ping", "error")
_KNOWN_SET = frozenset(_KNOWN)

#: Legal moves of the stream: ``{state: {event type: next state}}``. Block events are
#: checked per ``index`` on top of this (a delta or stop needs its block open).
#: A ``message_start`` after the first is checked to be a verbatim repeat.
MOVES: dict[str, dict[str, str]] = {
    "idle": {"message_start": "open", "ping": "idle", "error": "failed"},
    "open": {"content_block_start": "open", "content_block_delta": "open",
             "content_block_stop": "open", "ping": "open", "message_delta": "closing",
             "message_stop": "done", "error": "failed", "message_start": "open"},
    "closing": {"message_delta": "closing", "content_block_stop": "closing",
                "ping": "closing", "message_stop": "done", "error": "failed",
                "message_start": "closing"},
    "done": {"ping": "done", "message_start": "done"},
    # after an in-stream error nothing more is decoded; the stream may just end
    "failed": dict.fromkeys(_KNOWN, "failed"),
    "closed": {},  # close() was called
}
assert MOVES["open"]["content_block_delta"] == "open"  # StreamDecoder.feed's fast path


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

    __slots__ = ("_blocks", "_calls", "_content", "_message", "_reason", "_seen", "_text",
                 "_tool", "_usage", "_usage_sent", "_whole", "sse_events", "state")

    def __init__(self) -> None:
        self.sse_events = 0
        self.state = "idle"
        self._blocks: dict[int, _Open] = {}
        # index of the open text block, for the hot path: set once some content arrived, so
        # that the hot path never needs to note it (close() tells an empty answer apart)
        self._text = -1
        self._tool = -1  # index of the open tool_use block, for the hot path
        self._seen: set[int] = set()
        self._usage: dict[str, Any] | None = None
        self._usage_sent = False
        self._reason: str | None = None
        self._calls = False
        self._content = False  # something of an answer arrived (see close())
        self._message: tuple[Any, ...] | None = None  # what message_start said
        self._whole = False  # message_start carried a stop_reason: the message is complete

    def feed(self, ev: SSEEvent) -> list[Event]:
        return self.feed_data(ev.event, ev.data)

    def feed_all(self, pairs: list[Pair], out: list[Event]) -> list[Event]:
        """The events of several SSE events (those of one network read): what ``feed_data``
        gives for each, appended to ``out`` (also when one of them raises: what came before it
        is there), except that a run of text deltas of the open text block is one
        ``TextDelta`` (the Assembler and every consumer read them as one text)."""
        # HOT PATH: per streamed event, a text delta of the open block is decoded and kept
        run: list[str] = []
        n = 0  # events taken here, not yet counted in sse_events
        decode = _DELTA.decode
        for name, data in pairs:
            d: _BlockDelta | None = None
            if name == "content_block_delta":
                try:
                    d = decode(data)
                except msgspec.DecodeError:
                    d = None
                if d is not None and type(d.delta) is _Text and d.index == self._text:
                    run.append(d.delta.text)  # type: ignore[union-attr]
                    n += 1
                    continue
            if run:
                out.append(TextDelta(run[0] if len(run) == 1 else "".join(run), self._text))
                run = []
            self.sse_events += n
            n = 0
            out += self.feed_data(name, data, d)
        if run:
            out.append(TextDelta(run[0] if len(run) == 1 else "".join(run), self._text))
        self.sse_events += n
        return out

    def feed_data(self, name: str, data: str | bytes, d: Any = None) -> list[Event]:
        """One SSE event, its data as text or as the bytes that arrived (``sse_split``):
        the hot path decodes bytes as they are; anything else reads them as text, as
        ``SSEDecoder`` would give them (invalid UTF-8 replaced). ``d``: the event already
        decoded as a block delta."""
        self.sse_events += 1
        if name == "content_block_delta":
            # The hot path, inlined. ``_text`` / ``_tool`` name an open block only while the
            # state is "open" (they are reset on leaving it), and there
            # MOVES["open"]["content_block_delta"] == "open": no table lookup needed.
            if d is None:
                try:
                    d = _DELTA.decode(data)
                except msgspec.DecodeError:
                    pass
            if d is not None:
                delta = d.delta
                if type(delta) is _Text:
                    if d.index == self._text:
                        return [TextDelta(delta.text, d.index)]
                elif type(delta) is _Json and d.index == self._tool:
                    self._blocks[d.index].has_delta = True
                    return [ToolCallDelta(d.index, delta.partial_json)]
        if type(data) is bytes:
            data = data.decode("utf-8", "replace")
        ev = SSEEvent(data, name)  # type: ignore[arg-type]
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
        if nxt != "open":
            self._text = self._tool = -1  # leaves the hot path to the table
        if state == "failed":
            return []
        try:
            if name == "content_block_delta":
                if d is None:
                    try:
                        d = _DELTA.decode(ev.data)
                    except msgspec.DecodeError:
                        return self._other_delta(ev.data, state)
                return self._delta(d, state)
            if name == "content_block_start":
                return self._start(_START.decode(ev.data), state)
            if name == "content_block_stop":
                return self._stop(_STOP.decode(ev.data).index, state)
            if name == "ping":
                return []
            if name == "message_start":
                return self._message_start(_MSG_START.decode(ev.data).message, state)
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
        self._text = self._tool = -1
        if state in ("failed", "closed"):
            return []
        if state != "done" and not (self._whole and not self._blocks):
            raise ProviderError(
                ErrorKind.STREAM_INTERRUPTED,
                f"Anthropic stream ended in state {state!r} before message_stop",
            )
        out: list[Event] = []
        for index in sorted(self._blocks):  # blocks a lenient server never stopped
            out.extend(self._finish(index, self._blocks.pop(index), state))
        if self._reason is None and not self._content:
            raise nothing("Anthropic stream")
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
        return error_event(payload)

    def _message_start(self, info: _MessageInfo, state: str) -> list[Event]:
        said = (info.id, info.model, info.content or [], info.stop_reason)
        if self._message is not None:
            if said != self._message:
                raise malformed(f"a second message_start (id {info.id!r}) in stream state "
                                f"{state!r} is not a repeat of the first (id "
                                f"{self._message[0]!r}): another message spliced in")
            return []  # a verbatim repeat
        self._message = said
        self._usage = info.usage
        out: list[Event] = [ResponseStart(info.id, info.model)]
        for i, raw in enumerate(info.content or ()):
            # an answer carried whole: each block as if it had been streamed
            self._seen.add(i)
            block = complete_block(i, raw)
            if raw.get("type") == "tool_use":
                self._calls = True
            out.extend(block)
        if has_content(out):
            self._content = True
        if info.stop_reason is not None:
            self._reason = info.stop_reason
            self._whole = True
        return out

    def _open(self, index: int, what: str, state: str) -> _Open:
        blk = self._blocks.get(index)
        if blk is None:
            raise malformed(f"{what} for block {index}, which is not open, "
                            f"in stream state {state!r}")
        return blk

    def _delta(self, d: _BlockDelta, state: str) -> list[Event]:
        i = d.index
        blk = self._open(i, "content_block_delta", state)
        delta = d.delta
        kind = blk.kind
        if type(delta) is _Text:
            if kind == "text":
                if delta.text:
                    self._content = True
                    self._text = i  # from now on the hot path (it needs no content check)
                return [TextDelta(delta.text, i)]
        elif type(delta) is _Json:
            if kind == "tool":
                blk.has_delta = True
                return [ToolCallDelta(i, delta.partial_json)]
            if kind == "server":
                blk.pieces.append(delta.partial_json)
                return []
        elif type(delta) is _Thinking:
            if kind == "thinking":
                blk.pieces.append(delta.thinking)
                return [ReasoningDelta(index=i, text=delta.thinking, kind="thinking")]
        elif kind == "thinking":
            assert type(delta) is _Signature
            blk.sig.append(delta.signature)
            return [ReasoningDelta(index=i, kind="thinking", signature=delta.signature)]
        raise malformed(f"{delta.__struct_config__.tag} does not fit {kind} block {i} "
                        f"in stream state {state!r}")

    def _other_delta(self, data: str, state: str) -> list[Event]:
        """A delta of a type this codec does not use (harmless: ignored) or a broken one."""
        try:
            d = _ANY_DELTA.decode(data)
        except msgspec.DecodeError as exc:
            raise malformed(f"bad content_block_delta event in stream state {state!r}: {exc}",
                            details=data) from exc
        blk = self._open(d.index, "content_block_delta", state)
        if d.delta.type == "compaction_delta":
            return self._compaction_delta(blk, data, state)
        if d.delta.type in _DELTA_TYPES:
            try:
                _DELTA.decode(data)
            except msgspec.DecodeError as exc:
                raise malformed(f"bad {d.delta.type} in stream state {state!r}: {exc}",
                                details=data) from exc
        return []

    def _compaction_delta(self, blk: _Open, data: str, state: str) -> list[Event]:
        """The summary of a compaction block (text, appended) and its opaque
        ``encrypted_content`` (kept whole, the last one sent): the block is passed back
        verbatim on the next request, so nothing of it may be lost."""
        if blk.start.get("type") != "compaction":
            raise malformed(f"compaction_delta for a {blk.start.get('type')} block in stream "
                            f"state {state!r}", details=data)
        try:
            c = _COMPACTION_DELTA.decode(data).delta
        except msgspec.DecodeError as exc:
            raise malformed(f"bad compaction_delta in stream state {state!r}: {exc}",
                            details=data) from exc
        if c.content is not None:
            blk.start["content"] = (blk.start.get("content") or "") + c.content
        if c.encrypted_content is not None:
            blk.start["encrypted_content"] = c.encrypted_content
        return []

    def _start(self, s: _BlockStart, state: str) -> list[Event]:
        i = s.index
        if i in self._seen:
            raise malformed(f"content block {i} started twice (stream state {state!r})")
        self._seen.add(i)
        raw = s.content_block
        b = block_of(raw, f"content_block_start {i}")
        t = b.type
        if t == "text":
            self._blocks[i] = _Open("text", raw)
            if b.text:
                self._content = True
            if self._content:  # else the first text delta takes the table path: see _delta
                self._text = i
            return [TextDelta(b.text or "", i)]
        self._content = True  # every other block is part of the answer
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
            self._tool = i
            self._calls = True
            return [ToolCallStart(i, b.id, b.name)]
        if t == "redacted_thinking":
            self._blocks[i] = _Open("whole", raw)
            return complete_block(i, raw)
        self._blocks[i] = _Open("server", raw)
        return []

    def _stop(self, index: int, state: str) -> list[Event]:
        blk = self._open(index, "content_block_stop", state)
        del self._blocks[index]
        if index == self._text:
            self._text = -1
        elif index == self._tool:
            self._tool = -1
        return self._finish(index, blk, state)

    def _finish(self, i: int, blk: _Open, state: str) -> list[Event]:
        kind = blk.kind
        if kind == "tool":
            if blk.has_delta:
                return [ToolCallEnd(i, raw=call_raw(blk.start))]
            start_input = blk.start.get("input")
            return [ToolCallEnd(i, arguments_of(start_input if isinstance(start_input, dict)
                                              else None), raw=call_raw(blk.start))]
        if kind == "thinking":
            raw: dict[str, Any] = {"type": "thinking", "thinking": "".join(blk.pieces)}
            if blk.sig:
                raw["signature"] = "".join(blk.sig)
            return [ReasoningDelta(index=i, kind="thinking", raw=raw)]
        if kind == "server":
            raw = blk.start
            if raw.get("type") == "compaction":
                return complete_block(i, raw)
            joined = "".join(blk.pieces)
            if joined:
                where = f"input of server tool block {i} (stream state {state!r})"
                raw = {**raw, "input": json_of(joined, where)}
            return complete_block(i, raw)
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
