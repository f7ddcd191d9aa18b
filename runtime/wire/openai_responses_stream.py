"""The OpenAI Responses stream decoder: SSE events in, normalized events out.

A state machine whose legal moves are the table ``MOVES`` (``{state: {event type: next
state}}``). States: ``start`` (nothing yet), ``open`` (the response exists, no output item is
open), ``item`` (at least one output item is open), ``done`` (a terminal
``response.completed`` / ``response.incomplete`` arrived) and ``failed`` (an error was
reported: an ``error`` event, ``response.failed``, or a terminal object whose status is
``failed`` / ``cancelled`` or that carries an error; whatever follows is ignored). A known
event type that is not a legal move from the current state raises ``malformed_response``
naming that state; unknown event types (progress events of builtin tools, annotations,
audio, shell command progress, ...) are ignored. ``Finish`` comes from ``close()``; a
stream that ends with neither content nor a status nor an error is ``malformed_response``.

Client-run calls (``function_call``, ``custom_tool_call``, ``shell_call``,
``local_shell_call``, ``apply_patch_call``) start when their item is added; a custom call's
``response.custom_tool_call_input.delta`` events are its argument deltas.

Servers differ: llama.cpp sends no ``output_index`` (items are found by ``item_id``, function
calls by ``call_id``), keeps several items open at once and names its function-call item by
``call_id`` only. The terminal response object is authoritative: output items that the
stream never completed are taken from it, and nothing is counted twice.

Hot path: one typed ``msgspec`` decode per event (unknown fields, ``obfuscation`` and
``logprobs`` included, are skipped by msgspec); text and argument deltas inside an open
item are handled inline in ``feed`` before the table lookup. Output items are parsed with
their event (one pass); the terminal object's items stay raw and are read only when the
stream did not complete them all.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from ..errors import ErrorKind, ProviderError
from ..events import (
    Event,
    Finish,
    ReasoningDelta,
    RefusalDelta,
    ResponseStart,
    TextDelta,
    ToolCallDelta,
)
from ..model import normalize_finish
from ._base import data_text, malformed, nothing
from .openai_responses_items import (
    CLIENT_CALLS,
    ItemHead,
    OutputFolder,
    ResponseHead,
    error_event,
    finish_reason,
    head_of,
    item_head,
    item_of,
    phase_meta,
    terminal_error,
    usage_events,
)
from .sse import SSEEvent
from .sse_split import Pair

__all__ = ["MOVES", "StreamDecoder"]


class _Event(msgspec.Struct, gc=False):
    type: str = ""
    output_index: int | None = None
    content_index: int = 0
    summary_index: int = 0
    item_id: str | None = None
    delta: str | None = None
    item: Any = None  # parsed with the event: one pass over a possibly long item
    response: ResponseHead | None = None
    error: msgspec.Raw = msgspec.Raw()
    code: str | int | None = None
    message: str | None = None


_EVENT = msgspec.json.Decoder(_Event)
_TEXT = "response.output_text.delta"
_ARGS = "response.function_call_arguments.delta"
_ANY = msgspec.json.Decoder()

_TERMINAL = {"response.completed": "done", "response.incomplete": "done",
             "response.failed": "failed", "error": "failed"}
_IN_ITEM = {t: "item" for t in (
    "response.output_item.added",
    "response.content_part.added", "response.content_part.done",
    "response.output_text.delta", "response.output_text.done",
    "response.output_text.annotation.added",
    "response.refusal.delta", "response.refusal.done",
    "response.function_call_arguments.delta", "response.function_call_arguments.done",
    "response.custom_tool_call_input.delta", "response.custom_tool_call_input.done",
    "response.reasoning_summary_part.added", "response.reasoning_summary_part.done",
    "response.reasoning_summary_text.delta", "response.reasoning_summary_text.done",
    "response.reasoning_text.delta", "response.reasoning_text.done",
    "response.in_progress",
)}

MOVES: dict[str, dict[str, str]] = {
    "start": {"response.created": "open", "response.in_progress": "open",
              "response.queued": "start", **_TERMINAL},
    "open": {"response.in_progress": "open", "response.queued": "open",
             "response.output_item.added": "item", "response.output_item.done": "open",
             **_TERMINAL},
    # output_item.done leaves "item" for "open" once no item is open any more
    "item": {**_IN_ITEM, "response.output_item.done": "item", **_TERMINAL},
    "done": {},
    "failed": {},
}
_KNOWN = frozenset(t for moves in MOVES.values() for t in moves) | {"response.created"}


class StreamDecoder:
    """Feed SSE events with ``feed``; call ``close`` at the end of the stream."""

    __slots__ = ("_closed", "_content", "_done_ids", "_finish", "_folder", "_ids", "_key",
                 "_model", "_n_done", "_next", "_open", "_phase", "_seen", "_started",
                 "_summary_at", "sse_events", "state")

    def __init__(self) -> None:
        self.sse_events = 0
        self.state = "start"
        self._folder = OutputFolder()
        self._seen = self._folder.text_seen
        self._key = -1  # the text part the last delta went to, once content arrived
        self._open: dict[int, str] = {}  # output index -> item type
        self._phase: dict[int, dict[str, Any] | None] = {}  # message item -> TextPart.meta
        self._ids: dict[str, int] = {}  # item id / call id -> output index
        # (item type, id or call id) of completed items: a call and the output item that
        # answers it share a call_id, yet are two items
        self._done_ids: set[tuple[str, str]] = set()
        self._n_done = 0
        self._next = 0
        self._started = False
        self._model: str | None = None
        self._summary_at: dict[int, int] = {}
        self._finish: str | None = None
        self._closed = False
        self._content = False  # a delta brought something of an answer (see close())

    def feed(self, sse: SSEEvent) -> list[Event]:
        return self.feed_data(sse.event, sse.data)

    def feed_data(self, event: str, data: str | bytes) -> list[Event]:
        """One SSE event, its data as text or as the bytes that arrived (``sse_split``):
        bytes are decoded as they are; bytes that are not an event (invalid UTF-8 or
        anything wrong) are read as text, as ``SSEDecoder`` would give them."""
        self.sse_events += 1
        try:
            ev = _EVENT.decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            if type(data) is bytes:
                self.sse_events -= 1
                return self.feed_data(event, data.decode("utf-8", "replace"))
            assert isinstance(data, str)
            if data.strip() == "[DONE]" or self._unknown(data):
                return []
            raise malformed(f"Responses stream event #{self.sse_events} ({event}) in "
                            f"state {self.state} is not a valid event: {exc}",
                            details=data) from exc
        return self._decoded(ev, event, data)

    def feed_all(self, pairs: list[Pair], out: list[Event]) -> list[Event]:
        """The events of several SSE events (those of one network read): what ``feed_data``
        gives for each, appended to ``out`` (also when one of them raises: what came before it
        is there), except that a run of text deltas of the current part is one
        ``TextDelta`` (the Assembler and every consumer read them as one text)."""
        # HOT PATH: per streamed event, a text delta of the current part is decoded and kept
        run: list[str] = []
        n = 0  # events taken here, not yet counted in sse_events
        decode = _EVENT.decode
        for event, data in pairs:
            try:
                ev: Any = decode(data)
            except (msgspec.DecodeError, msgspec.ValidationError):
                ev = None
            if ev is not None:
                if ev.type == _TEXT:
                    d = ev.delta
                    if (d is not None and ev.output_index in self._open
                            and (ev.output_index << 16 | ev.content_index) == self._key):
                        run.append(d)
                        n += 1
                        continue
            if run:
                out.append(TextDelta(run[0] if len(run) == 1 else "".join(run), self._key))
                run = []
            if ev is not None:
                self.sse_events += n + 1
                out += self._decoded(ev, event, data)
            else:
                self.sse_events += n
                out += self.feed_data(event, data)
            n = 0
        if run:
            out.append(TextDelta(run[0] if len(run) == 1 else "".join(run), self._key))
        self.sse_events += n
        return out

    def _decoded(self, ev: Any, event: str, data: str | bytes) -> list[Event]:
        """The events of a decoded Responses event."""
        t = ev.type
        # hot path: text and argument deltas inside an open item (the checks of the general
        # path below, inlined; anything unusual falls through to it)
        if t == _TEXT:
            oi = ev.output_index
            d = ev.delta
            if oi in self._open and d is not None:  # items are only open in state "item"
                key = oi << 16 | ev.content_index
                if key != self._key:
                    if d:
                        self._content = True
                    if self._content:  # _key is set only once content arrived (close())
                        self._key = key
                    if key not in self._seen:  # a part's first delta carries its meta
                        self._seen.add(key)
                        return [TextDelta(d, key, self._phase.get(oi))]
                return [TextDelta(d, key)]
        elif t == _ARGS:
            oi = ev.output_index
            d = ev.delta
            if oi in self._open and d is not None:
                return [ToolCallDelta(oi, d)]
        elif not t:
            t = event
        nxt = MOVES[self.state].get(t)
        if nxt is None:
            if t in _KNOWN and self.state != "failed":
                raise malformed(f"unexpected Responses event {t} in state {self.state} "
                                f"(event #{self.sse_events})", details=data_text(data))
            return []
        self.state = nxt
        return _HANDLERS[t](self, ev)

    def close(self) -> list[Event]:
        """End of stream: ``[Finish]`` after a terminal event, ``[]`` after a reported error,
        else ``stream_interrupted``."""
        if self._closed:
            return []
        self._closed = True
        if self.state == "done":
            reason = self._finish
            folder = self._folder
            if reason is None and not (self._content or folder.content
                                       or folder.calls_started):
                raise nothing("Responses stream")
            return [Finish(reason, normalize_finish(reason, folder.has_calls))]
        if self.state == "failed":
            return []
        raise ProviderError(
            ErrorKind.STREAM_INTERRUPTED,
            f"the Responses stream ended in state {self.state} before its terminal event "
            f"(after {self.sse_events} SSE events)")

    # -- helpers -------------------------------------------------------------------------

    @staticmethod
    def _unknown(data: str) -> bool:
        """Whether an event that failed typed decoding is of a type we ignore anyway (its
        fields may use types of their own)."""
        try:
            obj = _ANY.decode(data)
        except msgspec.DecodeError:
            return False
        return (isinstance(obj, dict) and isinstance(obj.get("type"), str)
                and obj["type"] not in _KNOWN)

    def _index(self, ev: _Event) -> int:
        oi = ev.output_index
        if oi is None:
            oi = self._ids.get(ev.item_id) if ev.item_id is not None else None
            if oi is None:
                raise malformed(f"Responses event {ev.type} in state {self.state} names no "
                                f"known output item (item_id {ev.item_id!r})")
        if oi not in self._open:
            raise malformed(f"Responses event {ev.type} in state {self.state} for output "
                            f"item {oi}, which is not open")
        return oi

    def _delta(self, ev: _Event) -> str:
        d = ev.delta
        if d is None:
            raise malformed(f"Responses event {ev.type} in state {self.state} has no delta")
        return d

    def _item(self, ev: _Event) -> ItemHead:
        if ev.item is None:
            raise malformed(f"Responses event {ev.type} in state {self.state} carries no "
                            f"output item")
        return head_of(ev.item)

    def _head(self, ev: _Event) -> ResponseHead:
        if ev.response is None:
            raise malformed(f"Responses event {ev.type} in state {self.state} carries no "
                            f"response object")
        return ev.response

    def _start(self, head: ResponseHead) -> list[Event]:
        if not self._started:
            self._started = True
            self._model = head.model
            return [ResponseStart(id=head.id, model=head.model)]
        if self._model is None and head.model is not None:
            self._model = head.model
            return [ResponseStart(id=head.id, model=head.model)]
        return []

    # -- handlers ------------------------------------------------------------------------

    def _on_created(self, ev: _Event) -> list[Event]:
        return self._start(self._head(ev))

    def _on_progress(self, ev: _Event) -> list[Event]:
        if self._started or ev.response is None:
            return []
        return self._start(ev.response)

    def _on_added(self, ev: _Event) -> list[Event]:
        head = self._item(ev)
        oi = ev.output_index
        if oi is None:
            oi = self._next
        self._next = max(self._next, oi + 1)
        self._open[oi] = head.type
        for k in head.keys:
            self._ids.setdefault(k, oi)
        if head.phase is not None:
            self._phase[oi] = phase_meta(head.phase)
        if head.type in CLIENT_CALLS:
            return self._folder.call_started(oi, head)
        return []

    def _on_item_done(self, ev: _Event) -> list[Event]:
        head = self._item(ev)
        item: dict[str, Any] = ev.item
        keys = head.keys
        done = self._done_ids
        t = head.type
        if keys and any((t, k) in done for k in keys):
            return []  # the same item completed twice: never count it twice
        oi = ev.output_index
        if oi is None:
            oi = next((self._ids[k] for k in keys if k in self._ids), None)
            if oi is None:
                oi = self._next
        self._next = max(self._next, oi + 1)
        self._open.pop(oi, None)
        done.update((t, k) for k in keys)
        self._n_done += 1
        if not self._open:
            self.state = "open"
        return self._folder.item_done(oi, item, head)

    def _on_text(self, ev: _Event) -> list[Event]:
        oi = self._index(ev)
        d = self._delta(ev)
        if d:
            self._content = True
        key = oi << 16 | ev.content_index
        if self._content:
            self._key = key
        if key in self._seen:
            return [TextDelta(d, key)]
        self._seen.add(key)
        return [TextDelta(d, key, self._phase.get(oi))]

    def _on_refusal(self, ev: _Event) -> list[Event]:
        self._index(ev)
        d = self._delta(ev)
        if d:
            self._content = True
        self._folder.refusal_len += len(d)
        return [RefusalDelta(d)]

    def _on_args(self, ev: _Event) -> list[Event]:
        return [ToolCallDelta(self._index(ev), self._delta(ev))]

    def _on_summary(self, ev: _Event) -> list[Event]:
        oi = self._index(ev)
        d = self._delta(ev)
        prev = self._summary_at.get(oi)
        if prev is not None and prev != ev.summary_index:
            d = "\n\n" + d
        self._summary_at[oi] = ev.summary_index
        self._folder.reasoning_streamed.add(oi)
        self._content = True
        return [ReasoningDelta(index=oi, text=d)]

    def _on_reasoning_text(self, ev: _Event) -> list[Event]:
        oi = self._index(ev)
        d = self._delta(ev)
        self._folder.reasoning_streamed.add(oi)
        self._content = True
        return [ReasoningDelta(index=oi, text=d)]

    def _on_checked(self, ev: _Event) -> list[Event]:
        self._index(ev)
        return []

    def _on_terminal(self, ev: _Event) -> list[Event]:
        head = self._head(ev)
        out = self._start(head)
        output = head.output or ()
        # items the stream never completed come from the terminal object (decoded only when
        # the counts say some are missing: the object repeats every item in full)
        for pos, raw in enumerate(output if len(output) > self._n_done else ()):
            ih = item_head(raw)
            keys = ih.keys
            if not keys or any((ih.type, k) in self._done_ids for k in keys):
                continue
            oi = next((self._ids[k] for k in keys if k in self._ids), None)
            if oi is None:
                oi = pos if pos >= self._next else self._next
            self._next = max(self._next, oi + 1)
            self._open.pop(oi, None)
            self._done_ids.update((ih.type, k) for k in keys)
            out.extend(self._folder.item_done(oi, *item_of(raw)))
        self._open.clear()
        out.extend(usage_events(head.usage))
        failure = terminal_error(head)
        if failure is None and ev.type == "response.failed":
            failure = error_event({"error": {"message": "the response failed"}})
        if failure is not None:
            self.state = "failed"
            out.append(failure)
        else:
            self._finish = finish_reason(head)
        return out

    def _on_error(self, ev: _Event) -> list[Event]:
        self._open.clear()
        payload: Any
        if ev.error:
            payload = {"error": _ANY.decode(ev.error)}
        else:
            # the flat form ``{"type": "error", "code", "message", "param"}`` is read like
            # any error object (``error_fields``): its ``type`` is then "error"
            payload = {"type": ev.type or "error", "code": ev.code, "message": ev.message}
        return [error_event(payload)]


def _handlers() -> dict[str, Callable[[StreamDecoder, _Event], list[Event]]]:
    s = StreamDecoder
    h: dict[str, Callable[[StreamDecoder, _Event], list[Event]]] = {
        t: s._on_checked for t in _IN_ITEM
    }
    h.update({
        "response.created": s._on_created,
        "response.in_progress": s._on_progress,
        "response.queued": s._on_progress,
        "response.output_item.added": s._on_added,
        "response.output_item.done": s._on_item_done,
        "response.output_text.delta": s._on_text,
        "response.refusal.delta": s._on_refusal,
        "response.function_call_arguments.delta": s._on_args,
        "response.custom_tool_call_input.delta": s._on_args,
        "response.reasoning_summary_text.delta": s._on_summary,
        "response.reasoning_text.delta": s._on_reasoning_text,
        "response.completed": s._on_terminal,
        "response.incomplete": s._on_terminal,
        "response.failed": s._on_terminal,
        "error": s._on_error,
    })
    return h


_HANDLERS = _handlers()
