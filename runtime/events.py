"""Normalized stream events, the one language every codec speaks upward.

A streamed response and a non-streamed one decode to the same sequence of events, and
``Assembler`` folds any such sequence into a canonical ``Response``. The sequence is:

    ResponseStart
    ( TextDelta | ReasoningDelta | ToolCallStart | ToolCallDelta | ToolCallEnd
      | BuiltinTool | RefusalDelta | UsageEvent )*
    Finish | ErrorEvent

``index`` fields identify a part within the response (an Anthropic content block, a
Responses output item or content part, a chat tool-call index); parallel tool calls may
interleave their deltas and are told apart by ``index``. Text deltas with a new ``index``
start a new text part.

This module is pure: no I/O, no trio.
"""

from __future__ import annotations

from typing import Any

import msgspec

from .model import (
    BuiltinToolPart,
    Part,
    ReasoningPart,
    Response,
    TextPart,
    ToolCallPart,
    ToolKind,
    Usage,
    normalize_finish,
)

__all__ = [
    "Assembler",
    "BuiltinTool",
    "ErrorEvent",
    "Event",
    "Finish",
    "ReasoningDelta",
    "RefusalDelta",
    "ResponseStart",
    "TextDelta",
    "ToolCallDelta",
    "ToolCallEnd",
    "ToolCallStart",
    "UsageEvent",
    "assemble",
    "events_of",
]


class ResponseStart(msgspec.Struct, tag_field="event", tag="start", omit_defaults=True):
    id: str | None = None
    model: str | None = None


class TextDelta(msgspec.Struct, tag_field="event", tag="text", omit_defaults=True):
    text: str
    index: int = 0
    meta: dict[str, Any] | None = None  # set on a part's first delta (see TextPart.meta)


class ReasoningDelta(msgspec.Struct, tag_field="event", tag="reasoning", omit_defaults=True):
    """A piece of a reasoning part. Any field may come alone: ``text`` grows the readable
    trace, ``signature`` / ``encrypted`` carry the opaque payload when the provider sends it
    (appended, as Anthropic streams ``signature_delta``), ``raw`` is the provider's complete
    item when it is known (replaces the previous one)."""

    index: int = 0
    text: str = ""
    kind: str = "reasoning"
    id: str | None = None
    signature: str | None = None
    encrypted: str | None = None
    summary: list[str] | None = None
    raw: dict[str, Any] | None = None


class ToolCallStart(msgspec.Struct, tag_field="event", tag="tool_start", omit_defaults=True):
    """A client tool call begins at ``index``. ``kind`` says how it is shaped on the wire
    (see ``ToolKind``): its deltas and arguments are the freeform input of a ``custom`` call,
    JSON otherwise."""

    index: int
    id: str
    name: str
    item_id: str | None = None
    kind: ToolKind = "function"


class ToolCallDelta(msgspec.Struct, tag_field="event", tag="tool_delta", omit_defaults=True):
    index: int
    arguments: str


class ToolCallEnd(msgspec.Struct, tag_field="event", tag="tool_end", omit_defaults=True):
    """The call at ``index`` is complete. ``arguments``, when given, is the whole argument
    text and wins over the concatenated deltas (non-stream bodies, Responses ``done``);
    ``raw``, when given, is the provider's complete item (``ToolCallPart.raw``)."""

    index: int
    arguments: str | None = None
    raw: dict[str, Any] | None = None


class BuiltinTool(msgspec.Struct, tag_field="event", tag="builtin_tool", omit_defaults=True):
    """A provider-executed tool item (web search, code execution, ...), never run by us."""

    type: str
    id: str | None = None
    name: str | None = None
    index: int = 0
    raw: dict[str, Any] | None = None


class RefusalDelta(msgspec.Struct, tag_field="event", tag="refusal", omit_defaults=True):
    text: str


class UsageEvent(msgspec.Struct, tag_field="event", tag="usage", omit_defaults=True):
    """Usage so far, canonical. A later UsageEvent replaces an earlier one."""

    usage: Usage
    raw: dict[str, Any] | None = None


class Finish(msgspec.Struct, tag_field="event", tag="finish", omit_defaults=True):
    """``reason`` as the provider sent it; ``normalized`` as ``normalize_finish`` maps it."""

    reason: str | None
    normalized: str = "other"


class ErrorEvent(msgspec.Struct, tag_field="event", tag="error", omit_defaults=True):
    """An error reported inside a response (an error object in a 200 stream, an SSE
    ``event: error``). ``kind`` is an ``ErrorKind`` value."""

    kind: str
    message: str
    status: int | None = None
    type: str | None = None
    code: str | int | None = None
    in_stream: bool = True


Event = (
    ResponseStart
    | TextDelta
    | ReasoningDelta
    | ToolCallStart
    | ToolCallDelta
    | ToolCallEnd
    | BuiltinTool
    | RefusalDelta
    | UsageEvent
    | Finish
    | ErrorEvent
)


# Responses output items that carry the result of a client-run kind of call: when one
# arrives in the same response as its call, the provider ran that call itself (a hosted
# shell), so the call is kept as a provider item and never run by us.
_OUTPUT_OF = {"custom_tool_call_output": "custom", "shell_call_output": "shell",
              "local_shell_call_output": "local_shell",
              "apply_patch_call_output": "apply_patch"}


class _Call:
    __slots__ = ("args", "final", "hosted", "id", "item_id", "kind", "name", "raw")

    def __init__(self, id: str, name: str, item_id: str | None,
                 kind: ToolKind = "function") -> None:
        self.id = id
        self.name = name
        self.item_id = item_id
        self.kind: ToolKind = kind
        self.args: list[str] = []
        self.final: str | None = None
        self.raw: dict[str, Any] | None = None
        self.hosted = False


class Assembler:
    """Folds normalized events into a ``Response``. Feed with ``add``; read ``response()``.

    ``protocol`` and ``source`` are stamped on reasoning and builtin parts so they can be
    routed back only to the provider that produced them.
    """

    def __init__(self, protocol: str | None = None, source: str | None = None) -> None:
        self.protocol = protocol
        self.source = source
        self.id: str | None = None
        self.model: str | None = None
        self.finish_reason: str | None = None
        self.finished = False
        self.usage: Usage | None = None
        self.usage_raw: dict[str, Any] | None = None
        self.refusal: str | None = None
        self.error: ErrorEvent | None = None
        # ordered slots: ("text", index) | ("reasoning", index) | ("call", index)
        # | ("builtin", event); each text index is one text part
        self._order: list[tuple[str, Any]] = []
        self._texts: dict[int, list[str]] = {}
        self._reasoning: dict[int, dict[str, Any]] = {}
        self._text_meta: dict[int, dict[str, Any]] = {}
        self._calls: dict[int, _Call] = {}

    @property
    def text(self) -> str:
        return "".join("".join(v) for v in self._texts.values())

    @property
    def has_output(self) -> bool:
        return bool(self._order)

    def add(self, ev: Event) -> None:
        t = type(ev)
        if t is TextDelta:
            assert isinstance(ev, TextDelta)
            chunks = self._texts.get(ev.index)
            if chunks is None:
                chunks = self._texts[ev.index] = []
                self._order.append(("text", ev.index))
            chunks.append(ev.text)
            if ev.meta is not None:
                self._text_meta[ev.index] = ev.meta
        elif t is ToolCallDelta:
            assert isinstance(ev, ToolCallDelta)
            call = self._calls.get(ev.index)
            if call is None:
                call = self._start_call(ev.index, "", "", None)
            call.args.append(ev.arguments)
        elif t is ReasoningDelta:
            assert isinstance(ev, ReasoningDelta)
            self._add_reasoning(ev)
        elif t is ToolCallStart:
            assert isinstance(ev, ToolCallStart)
            existing = self._calls.get(ev.index)
            if existing is None:
                self._start_call(ev.index, ev.id, ev.name, ev.item_id, ev.kind)
            else:
                existing.id = existing.id or ev.id
                existing.name = existing.name or ev.name
                existing.item_id = existing.item_id or ev.item_id
                if ev.kind != "function":
                    existing.kind = ev.kind
        elif t is ToolCallEnd:
            assert isinstance(ev, ToolCallEnd)
            call = self._calls.get(ev.index)
            if call is not None:
                if ev.arguments is not None:
                    call.final = ev.arguments
                if ev.raw is not None:
                    call.raw = ev.raw
        elif t is UsageEvent:
            assert isinstance(ev, UsageEvent)
            self.usage = ev.usage
            if ev.raw is not None:
                self.usage_raw = ev.raw
        elif t is ResponseStart:
            assert isinstance(ev, ResponseStart)
            self.id = self.id or ev.id
            self.model = self.model or ev.model
        elif t is Finish:
            assert isinstance(ev, Finish)
            self.finished = True
            if ev.reason is not None:
                self.finish_reason = ev.reason
        elif t is BuiltinTool:
            assert isinstance(ev, BuiltinTool)
            self._order.append(("builtin", ev))
            kind = _OUTPUT_OF.get(ev.type)
            if kind is not None and ev.raw is not None:
                self._hosted(kind, ev.raw.get("call_id"))
        elif t is RefusalDelta:
            assert isinstance(ev, RefusalDelta)
            self.refusal = (self.refusal or "") + ev.text
        elif t is ErrorEvent:
            assert isinstance(ev, ErrorEvent)
            self.error = ev

    def _start_call(self, index: int, id: str, name: str, item_id: str | None,
                    kind: ToolKind = "function") -> _Call:
        call = _Call(id, name, item_id, kind)
        self._calls[index] = call
        self._order.append(("call", index))
        return call

    def _hosted(self, kind: str, call_id: Any) -> None:
        """The provider answered a client-run kind of call itself: it stays a provider
        item (sent back verbatim to the same protocol), not a call for us to run."""
        for call in self._calls.values():
            if call.id == call_id and call.kind == kind and call.raw is not None:
                call.hosted = True

    def _add_reasoning(self, ev: ReasoningDelta) -> None:
        slot = self._reasoning.get(ev.index)
        if slot is None:
            slot = {"text": [], "kind": ev.kind, "id": ev.id, "signature": None,
                    "encrypted": None, "summary": None, "raw": None}
            self._reasoning[ev.index] = slot
            self._order.append(("reasoning", ev.index))
        if ev.text:
            slot["text"].append(ev.text)
        if ev.id is not None:
            slot["id"] = ev.id
        if ev.kind != "reasoning":
            slot["kind"] = ev.kind
        if ev.signature is not None:
            slot["signature"] = (slot["signature"] or "") + ev.signature
        if ev.encrypted is not None:
            slot["encrypted"] = (slot["encrypted"] or "") + ev.encrypted
        if ev.summary is not None:
            slot["summary"] = ev.summary
        if ev.raw is not None:
            slot["raw"] = ev.raw

    def parts(self) -> list[Part]:
        out: list[Part] = []
        for what, key in self._order:
            if what == "text":
                out.append(TextPart("".join(self._texts[key]), meta=self._text_meta.get(key)))
            elif what == "call":
                c = self._calls[key]
                if c.hosted and c.raw is not None:
                    out.append(BuiltinToolPart(str(c.raw.get("type")), c.item_id, None,
                                               self.protocol, c.raw, self.source))
                    continue
                args = c.final if c.final is not None else "".join(c.args)
                if not args and c.kind != "custom":
                    args = "{}"
                out.append(ToolCallPart(c.id, c.name, args, c.item_id, c.kind, c.raw))
            elif what == "reasoning":
                s = self._reasoning[key]
                summary = s["summary"] or []
                text = "".join(s["text"]) or "\n\n".join(summary)
                out.append(ReasoningPart(
                    text=text, kind=s["kind"], id=s["id"], signature=s["signature"],
                    encrypted=s["encrypted"], summary=list(summary), protocol=self.protocol,
                    source=self.source, raw=s["raw"],
                ))
            else:
                b: BuiltinTool = key
                out.append(BuiltinToolPart(b.type, b.id, b.name, self.protocol, b.raw,
                                           self.source))
        return out

    def response(self) -> Response:
        parts = self.parts()
        has_calls = any(isinstance(p, ToolCallPart) for p in parts)
        return Response(
            id=self.id, model=self.model, parts=parts, finish_reason=self.finish_reason,
            stop=normalize_finish(self.finish_reason, has_calls) if self.error is None else "error",
            usage=self.usage, usage_raw=self.usage_raw, refusal=self.refusal,
        )


def assemble(events: list[Event], protocol: str | None = None,
             source: str | None = None) -> Response:
    """Fold a complete list of events into a ``Response``."""
    asm = Assembler(protocol, source)
    for ev in events:
        asm.add(ev)
    return asm.response()


def events_of(resp: Response, *, chunk_chars: int = 0) -> list[Event]:
    """The event sequence that assembles back to ``resp`` (the inverse of ``assemble``):
    how a cached or scripted response is replayed as if it were streamed. With
    ``chunk_chars`` > 0, text and arguments are split into deltas of that size."""

    def pieces(text: str) -> list[str]:
        if chunk_chars <= 0 or len(text) <= chunk_chars:
            return [text]
        return [text[i:i + chunk_chars] for i in range(0, len(text), chunk_chars)]

    out: list[Event] = [ResponseStart(resp.id, resp.model)]
    for index, part in enumerate(resp.parts):
        if isinstance(part, TextPart):
            texts = pieces(part.text)
            out.append(TextDelta(texts[0], index, part.meta))
            out.extend(TextDelta(p, index) for p in texts[1:])
        elif isinstance(part, ToolCallPart):
            out.append(ToolCallStart(index, part.id, part.name, part.item_id, part.kind))
            out.extend(ToolCallDelta(index, p) for p in pieces(part.arguments))
            out.append(ToolCallEnd(index, raw=part.raw))
        elif isinstance(part, ReasoningPart):
            out.append(ReasoningDelta(
                index, part.text, part.kind, part.id, part.signature, part.encrypted,
                list(part.summary) if part.summary else None, part.raw,
            ))
        elif isinstance(part, BuiltinToolPart):
            out.append(BuiltinTool(part.item_type, part.id, part.name, index, part.raw))
    if resp.refusal is not None:
        out.append(RefusalDelta(resp.refusal))
    if resp.usage is not None:
        out.append(UsageEvent(resp.usage, resp.usage_raw))
    out.append(Finish(resp.finish_reason, resp.stop))
    return out
