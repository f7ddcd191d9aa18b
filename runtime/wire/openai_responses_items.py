"""OpenAI Responses decoding shared by the body and the stream decoder.

An output item (``message``, a client-run call, ``reasoning`` or a provider-executed item)
becomes normalized events by ``OutputFolder.item_done``; the folder remembers which parts a
stream already delivered as deltas, so that the complete item (``response.output_item.done``,
the terminal ``response.completed`` object, or a non-streamed body) only adds the parts that
were never streamed and never counts anything twice. Index scheme (shared by both paths, so that they assemble the
same): a text part is ``output_index << 16 | content_index``; a tool call, a reasoning item
and a builtin item use their ``output_index``.

Client-run calls (``CLIENT_CALLS``): ``function_call`` and the items the client must run
too, each a call of its ``ToolKind`` (shapes: openai-python ``types/responses/``
``response_custom_tool_call.py``, ``response_function_shell_tool_call.py``,
``response_output_item.py`` ``LocalShellCall``, ``response_apply_patch_tool_call.py``):
``id`` is the ``call_id``, ``item_id`` the item id, ``arguments`` the custom call's freeform
``input`` or the JSON of the ``action`` / ``operation``, ``raw`` the whole item. A
``shell_call`` in a provider's container (``environment`` other than ``local``) is a
provider item.

Pure: no I/O, no trio.
"""

from __future__ import annotations

from typing import Any

import msgspec

from ..errors import error_from_payload
from ..events import (
    BuiltinTool,
    ErrorEvent,
    Event,
    ReasoningDelta,
    RefusalDelta,
    TextDelta,
    ToolCallEnd,
    ToolCallStart,
    UsageEvent,
)
from ..model import ToolKind, Usage
from ._base import has_content, malformed

__all__ = [
    "CLIENT_CALLS",
    "PROTOCOL",
    "ItemHead",
    "OutputFolder",
    "ResponseHead",
    "error_event",
    "finish_reason",
    "head_of",
    "item_head",
    "item_of",
    "terminal_error",
    "usage_events",
]

PROTOCOL = "openai-responses"

#: Output item types the client must run, and the kind of call each is.
CLIENT_CALLS: dict[str, ToolKind] = {
    "function_call": "function", "custom_tool_call": "custom", "shell_call": "shell",
    "local_shell_call": "local_shell", "apply_patch_call": "apply_patch"}
#: The name a call of a kind without a name of its own is given (the tool it asks for).
KIND_NAMES = {"shell": "shell", "local_shell": "local_shell", "apply_patch": "apply_patch"}


class _Part(msgspec.Struct):
    type: str = ""
    text: str | None = None
    refusal: str | None = None


class _Summary(msgspec.Struct):
    text: str = ""
    type: str = "summary_text"


class _Message(msgspec.Struct):
    type: str
    id: str | None = None
    content: list[_Part] | str | None = None
    phase: Any = None


class _Call(msgspec.Struct):
    type: str
    id: str | None = None
    call_id: str | None = None
    name: str | None = None
    arguments: str | None = None
    input: str | None = None  # custom_tool_call
    action: dict[str, Any] | None = None  # shell_call, local_shell_call
    operation: dict[str, Any] | None = None  # apply_patch_call


def _hosted(item: dict[str, Any]) -> bool:
    """A shell call the provider runs in its own container (not ``local``)."""
    env = item.get("environment")
    return isinstance(env, dict) and env.get("type") not in (None, "local")


class _Reasoning(msgspec.Struct):
    type: str
    id: str | None = None
    summary: list[_Summary] | None = None
    content: list[_Part] | None = None
    encrypted_content: str | None = None


def phase_meta(phase: Any) -> dict[str, Any] | None:
    """``TextPart.meta`` for a message item's ``phase`` (gpt-5 family: commentary or
    final_answer), which goes back with the text on the next turn."""
    return {"phase": phase} if isinstance(phase, str) and phase else None


class ItemHead(msgspec.Struct):
    """What identifies an output item: its type and ids (and a function call's name)."""

    type: str
    id: str | None = None
    call_id: str | None = None
    name: Any = None
    phase: Any = None

    @property
    def keys(self) -> tuple[str, ...]:
        if self.call_id is None:
            return () if self.id is None else (self.id,)
        return (self.call_id,) if self.id is None else (self.id, self.call_id)


class _InDetails(msgspec.Struct):
    cached_tokens: int | None = None
    cache_write_tokens: int | None = None


class _OutDetails(msgspec.Struct):
    reasoning_tokens: int | None = None


class _Usage(msgspec.Struct):
    input_tokens: int | None = None
    output_tokens: int | None = None
    input_tokens_details: _InDetails | None = None
    output_tokens_details: _OutDetails | None = None


class _Incomplete(msgspec.Struct):
    reason: str | None = None


class ResponseHead(msgspec.Struct):
    """The fields of a response object the decoders read (``usage`` / ``error`` / ``output``
    stay raw: they are passed on verbatim)."""

    id: str | None = None
    model: str | None = None
    status: str | None = None
    incomplete_details: _Incomplete | None = None
    error: Any = None
    usage: Any = None
    output: list[msgspec.Raw] | None = None


_ITEM_HEAD = msgspec.json.Decoder(ItemHead)
_ANY = msgspec.json.Decoder()


def _decode(dec: msgspec.json.Decoder[Any], raw: msgspec.Raw, what: str) -> Any:
    try:
        return dec.decode(raw)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise malformed(f"{what} has an unexpected shape: {exc}",
                        details=bytes(raw).decode("utf-8", "replace")) from exc


def item_head(raw: msgspec.Raw) -> ItemHead:
    """The type and ids of an output item (``malformed_response`` if it has none)."""
    head: ItemHead = _decode(_ITEM_HEAD, raw, "Responses output item")
    return head


def head_of(item: Any) -> ItemHead:
    """The type and ids of a decoded output item (``malformed_response`` if it is not an
    object with a type)."""
    if not isinstance(item, dict):
        raise malformed("Responses output item is not an object",
                        details=msgspec.json.encode(item).decode())
    head: ItemHead = _convert(item, ItemHead, "Responses output item")
    return head


def item_of(raw: msgspec.Raw) -> tuple[dict[str, Any], ItemHead]:
    """An output item as the provider sent it, and its type and ids."""
    item = _decode(_ANY, raw, "Responses output item")
    return item, head_of(item)


def _convert(obj: Any, typ: type[Any], what: str) -> Any:
    try:
        return msgspec.convert(obj, typ)
    except msgspec.ValidationError as exc:
        raise malformed(f"{what} has an unexpected shape: {exc}",
                        details=msgspec.json.encode(obj).decode()) from exc


def finish_reason(head: ResponseHead) -> str | None:
    """The response ``status``, with ``:<incomplete_details.reason>`` when there is one."""
    if head.status is None:
        return None
    det = head.incomplete_details
    if det is not None and det.reason:
        return f"{head.status}:{det.reason}"
    return head.status


def terminal_error(head: ResponseHead) -> ErrorEvent | None:
    """The error a terminal response object reports: its ``error``, or a ``failed`` /
    ``cancelled`` status (such a response is no answer, whatever event carried it)."""
    if head.error is not None:
        return error_event({"error": head.error})
    if head.status == "failed":
        return error_event({"error": {"message": "the response failed"}})
    if head.status == "cancelled":
        return error_event({"error": {"message": "the response was cancelled"}})
    return None


def usage_events(raw: Any) -> list[Event]:
    """A ``UsageEvent`` in the canonical convention (``input_tokens`` already includes the
    cached tokens; ``output_tokens`` already includes reasoning), or nothing."""
    if raw is None:
        return []
    if not isinstance(raw, dict):
        raise malformed("Responses usage is not an object", details=repr(raw))
    u: _Usage = _convert(raw, _Usage, "Responses usage")
    ind = u.input_tokens_details
    outd = u.output_tokens_details
    usage = Usage(
        input_tokens=u.input_tokens or 0,
        output_tokens=u.output_tokens or 0,
        cache_read_tokens=(ind.cached_tokens or 0) if ind else 0,
        cache_write_tokens=(ind.cache_write_tokens or 0) if ind else 0,
        reasoning_tokens=(outd.reasoning_tokens or 0) if outd else 0,
    )
    return [UsageEvent(usage, raw=raw)]


def error_event(payload: Any) -> ErrorEvent:
    """The ``ErrorEvent`` for an error object reported inside a 200 response."""
    kind, message, etype, code = error_from_payload(payload)
    return ErrorEvent(kind=kind.value, message=message, type=etype, code=code)


class OutputFolder:
    """Turns complete output items into events, minus what deltas already delivered."""

    __slots__ = ("calls_started", "content", "has_calls", "reasoning_streamed",
                 "refusal_len", "text_seen")

    def __init__(self) -> None:
        self.text_seen: set[int] = set()
        self.refusal_len = 0
        self.calls_started: set[int] = set()
        self.reasoning_streamed: set[int] = set()
        self.has_calls = False
        self.content = False  # a complete item brought something of an answer

    def item_done(self, oi: int, item: dict[str, Any], head: ItemHead) -> list[Event]:
        """Events for the complete output item ``item`` (see ``item_of``) at ``oi``."""
        out = self._item(oi, item, head)
        if not self.content and has_content(out):
            self.content = True
        return out

    def _item(self, oi: int, item: dict[str, Any], head: ItemHead) -> list[Event]:
        t = head.type
        if t == "message":
            return self._message(oi, item)
        kind = CLIENT_CALLS.get(t)
        if kind is not None and not _hosted(item):
            return self._call(oi, item, kind)
        if t == "reasoning":
            return self._reasoning(oi, item)
        name = head.name if isinstance(head.name, str) else None
        return [BuiltinTool(type=t, id=head.id, name=name, index=oi, raw=item)]

    def call_started(self, oi: int, head: ItemHead) -> list[Event]:
        """``ToolCallStart`` for a client-run call announced by ``output_item.added``."""
        kind = CLIENT_CALLS[head.type]
        cid = head.call_id or head.id
        name = KIND_NAMES.get(kind, head.name)
        if cid is None or not isinstance(name, str) or kind == "shell":
            # completed at output_item.done; a shell call only then surely says where it
            # runs (a provider's container makes it a provider item)
            return []
        self.calls_started.add(oi)
        return [ToolCallStart(index=oi, id=cid, name=name, item_id=head.id, kind=kind)]

    def _message(self, oi: int, item: dict[str, Any]) -> list[Event]:
        m: _Message = _convert(item, _Message, "Responses message item")
        content = m.content
        if isinstance(content, str):
            content = [_Part("output_text", content)]
        out: list[Event] = []
        seen = self.text_seen
        for ci, part in enumerate(content or ()):
            if part.type == "output_text":
                key = oi << 16 | ci
                if key not in seen:
                    seen.add(key)
                    out.append(TextDelta(part.text or "", key, phase_meta(m.phase)))
            elif part.type == "refusal":
                r = part.refusal or ""
                if len(r) > self.refusal_len:
                    out.append(RefusalDelta(r[self.refusal_len:]))
                    self.refusal_len = len(r)
        return out

    def _call(self, oi: int, item: dict[str, Any], kind: ToolKind) -> list[Event]:
        c: _Call = _convert(item, _Call, f"Responses {item.get('type')} item")
        cid = c.call_id or c.id
        name = KIND_NAMES.get(kind, c.name)
        if cid is None or name is None:
            raise malformed(f"Responses {c.type} item lacks call_id or name",
                            details=msgspec.json.encode(item).decode())
        raw: dict[str, Any] | None = item
        if kind == "function":
            args = c.arguments
            if "caller" not in item and "namespace" not in item:
                raw = None  # an ordinary call goes back from its fields alone
        elif kind == "custom":
            args = c.input if c.input is not None else ""
        else:
            value = c.operation if kind == "apply_patch" else c.action
            what = "operation" if kind == "apply_patch" else "action"
            if value is None:
                raise malformed(f"Responses {c.type} item has no {what} object",
                                details=msgspec.json.encode(item).decode())
            args = msgspec.json.encode(value).decode()
        out: list[Event] = []
        if oi not in self.calls_started:
            self.calls_started.add(oi)
            out.append(ToolCallStart(index=oi, id=cid, name=name, item_id=c.id, kind=kind))
        out.append(ToolCallEnd(index=oi, arguments=args, raw=raw))
        self.has_calls = True
        return out

    def _reasoning(self, oi: int, item: dict[str, Any]) -> list[Event]:
        r: _Reasoning = _convert(item, _Reasoning, "Responses reasoning item")
        ev = ReasoningDelta(index=oi, kind="reasoning", id=r.id,
                            encrypted=r.encrypted_content or None,
                            summary=[s.text for s in r.summary or ()], raw=item)
        if oi not in self.reasoning_streamed:
            ev.text = "".join(p.text for p in r.content or () if p.text)
        return [ev]
