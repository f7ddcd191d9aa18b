"""The OpenAI Chat Completions codec (also OpenRouter, Groq, Mistral, DeepSeek, llama.cpp,
LM Studio, Ollama): canonical requests to JSON bodies, response bodies and SSE streams to
normalized events. Pure: no I/O, no trio, no httpx.

Only choice 0 is decoded. Reasoning comes in several dialects, each its own part kind (the
``type`` the recordings' ``expect.reasoning`` uses): ``reasoning_content`` (DeepSeek,
llama.cpp), ``reasoning`` (OpenRouter, Groq), ``reasoning_details:<detail type>`` (one part
per OpenRouter detail, signature / data opaque) and ``thinking_chunk`` (Mistral).

Tool calls: a call without an ``id`` gets one made from the response id and its index
(unique across a conversation, which Anthropic and Responses require after a failover); a
fragment without ``index`` and ``id`` continues the last call unless it names a function
(then it starts the next one: servers that send each call whole); the legacy
``function_call`` (``functions`` API) is decoded as a tool call. A response with neither
content nor a finish reason nor an error is ``malformed_response``.
"""

from __future__ import annotations

from typing import Any

import msgspec

from ..errors import ErrorKind, ProviderError, error_from_payload
from ..events import (
    ErrorEvent,
    Event,
    Finish,
    ReasoningDelta,
    RefusalDelta,
    ResponseStart,
    TextDelta,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
)
from ..model import normalize_finish
from ._base import data_text, has_content, malformed, nothing
from .openai_chat_request import PROTOCOL, encode_request
from .openai_chat_types import (
    CHUNK,
    COMPLETION,
    SLOT_CONTENT,
    SLOT_REASONING,
    Choice,
    Delta,
    ToolCallFragment,
    content_events,
    detail_delta,
    usage_event,
)
from .sse import SSEEvent
from .sse_split import Pair

__all__ = ["MOVES", "PROTOCOL", "StreamDecoder", "decode_body", "encode_request", "headers",
           "url"]


def url(base_url: str) -> str:
    """The endpoint: the base URL already holds the version (``.../v1``)."""
    return base_url.rstrip("/") + "/chat/completions"


def headers(api_key: str | None) -> dict[str, str]:
    """Auth (none for keyless local servers) and content headers."""
    h = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
    if api_key:
        h["authorization"] = f"Bearer {api_key}"
    return h


def _error_event(err: Any, *, in_stream: bool) -> ErrorEvent:
    kind, message, etype, code = error_from_payload({"error": err}, in_stream=in_stream)
    status = code if isinstance(code, int) and 400 <= code < 600 else None
    return ErrorEvent(kind.value, message, status=status, type=etype, code=code,
                      in_stream=in_stream)


def _arguments(args: str | dict[str, Any] | None) -> str | None:
    if args is None or isinstance(args, str):
        return args
    return msgspec.json.encode(args).decode()


LEGACY_CALL = 1 << 20  # the tool-call index of a legacy ``function_call``


def call_id(response_id: str | None, index: int) -> str:
    """An id for a call the server sent without one: unique per response, so that a
    conversation never holds two calls of the same id."""
    if index == LEGACY_CALL:
        return f"call_{response_id}_fn" if response_id else "call_fn"
    return f"call_{response_id}_{index}" if response_id else f"call_{index}"


def _message_events(msg: Delta, out: list[Event], rid: str | None) -> bool:
    """Events of a complete non-stream ``message``; returns whether it has tool calls."""
    if msg.reasoning_content:
        out.append(ReasoningDelta(index=SLOT_CONTENT, text=msg.reasoning_content,
                                  kind="reasoning_content"))
    if msg.reasoning:
        out.append(ReasoningDelta(index=SLOT_REASONING, text=msg.reasoning, kind="reasoning"))
    if msg.reasoning_details:
        for pos, det in enumerate(msg.reasoning_details):
            out.append(detail_delta(det, pos, raw=True))
    content = msg.content
    if isinstance(content, str):
        if content:
            out.append(TextDelta(content))
    elif content:
        content_events(content, out)
    if msg.refusal:
        out.append(RefusalDelta(msg.refusal))
    calls = msg.tool_calls or []
    for i, tc in enumerate(calls):
        fn = tc.function
        if fn is None or not fn.name:
            raise malformed(f"tool call {i} of the message has no function name")
        out.append(ToolCallStart(i, tc.id or call_id(rid, i), fn.name))
        out.append(ToolCallEnd(i, _arguments(fn.arguments) or "{}"))
    legacy = msg.function_call
    if legacy is not None and not calls:
        if not legacy.name:
            raise malformed("the message's function_call has no name")
        out.append(ToolCallStart(LEGACY_CALL, call_id(rid, LEGACY_CALL), legacy.name))
        out.append(ToolCallEnd(LEGACY_CALL, _arguments(legacy.arguments) or "{}"))
        return True
    return bool(calls)


def decode_body(body: bytes) -> list[Event]:
    """A non-streamed response body as ``ResponseStart, ..., UsageEvent?, Finish`` (or a
    single ``ErrorEvent`` when the body is an error object)."""
    try:
        obj = COMPLETION.decode(body)
    except msgspec.ValidationError as exc:
        raise malformed(f"chat completion body has a wrong shape: {exc}",
                        details=body.decode("utf-8", "replace")) from exc
    except msgspec.DecodeError as exc:
        raise malformed(f"chat completion body is not JSON: {exc}",
                        details=body.decode("utf-8", "replace")) from exc
    if obj.error is not None and not obj.choices:
        return [_error_event(obj.error, in_stream=False)]
    choice = next((c for c in obj.choices or () if c.index == 0), None)
    if choice is None or choice.message is None:
        raise malformed("chat completion body has no choice 0 with a message",
                        details=body.decode("utf-8", "replace"))
    out: list[Event] = [ResponseStart(obj.id, obj.model)]
    has_calls = _message_events(choice.message, out, obj.id)
    if choice.finish_reason is None and len(out) == 1:
        raise nothing("chat completion body")
    if obj.usage is not None:
        out.append(usage_event(obj.usage))
    out.append(Finish(choice.finish_reason, normalize_finish(choice.finish_reason, has_calls)))
    return out


# The stream's legal moves. Event types: ``chunk`` (a JSON chunk), ``finish`` (a chunk with a
# finish_reason), ``done`` (``data: [DONE]``), ``error`` (an error object / ``event: error``).
# OpenRouter repeats finish_reason and sends content-less chunks after it; the usage chunk
# (``choices: []``) comes after the finish chunk; after an error the rest is ignored.
MOVES: dict[str, dict[str, str]] = {
    "start": {"chunk": "streaming", "finish": "finished", "error": "errored"},
    "streaming": {"chunk": "streaming", "finish": "finished", "done": "done",
                  "error": "errored"},
    "finished": {"chunk": "finished", "finish": "finished", "done": "done",
                 "error": "errored"},
    "done": {},
    "errored": {"chunk": "errored", "finish": "errored", "done": "errored",
                "error": "errored"},
}

_HARMLESS_EVENTS = frozenset({"ping", "keepalive", "heartbeat", "comment"})
_decode_chunk = CHUNK.decode
_decode_head = COMPLETION.decode


class StreamDecoder:
    """Feeds SSE events of a chat completion stream, returns normalized events."""

    __slots__ = ("_calls", "_details", "_errored", "_fast", "_finish", "_has_calls",
                 "_last_call", "_rid", "_started", "sse_events", "state")

    def __init__(self) -> None:
        self.sse_events = 0
        self.state = "start"
        self._started = False
        self._finish: str | None = None
        self._calls: dict[int, str] = {}
        self._last_call = 0
        self._has_calls = False
        self._errored = False
        self._details: dict[int, dict[str, Any]] = {}
        self._rid: str | None = None  # the response id (ids of calls sent without one)
        # the answer began and brought content: chunks take the hot path from then on
        # (before, each is checked for content: close() tells an empty answer apart)
        self._fast = False

    def _move(self, kind: str, data: str) -> None:
        nxt = MOVES[self.state].get(kind)
        if nxt is None:
            raise malformed(f"chat stream: unexpected {kind} event in state {self.state!r}",
                            details=data)
        self.state = nxt

    def feed(self, ev: SSEEvent) -> list[Event]:
        return self.feed_data(ev.event, ev.data)

    def feed_data(self, event: str, data: str | bytes) -> list[Event]:
        """One SSE event, its data as text or as the bytes that arrived (``sse_split``):
        bytes are decoded as they are; bytes that are not a chunk (``[DONE]``, invalid
        UTF-8, anything wrong) take the text path, as ``SSEDecoder`` would give them."""
        # HOT PATH: one call per streamed chunk; the common text chunk takes no detour.
        self.sse_events += 1
        out: list[Event] = []
        slow = False
        chunk: Any = None
        if self._fast and event == "message":
            try:
                chunk = _decode_chunk(data)
            except (msgspec.ValidationError, msgspec.DecodeError):
                chunk = None
        if chunk is None:
            if type(data) is bytes:
                data = data.decode("utf-8", "replace")
            assert isinstance(data, str)
            if event != "message":
                return self._odd_event(event, data)
            if data == "[DONE]":
                self._move("done", data)
                return []
            try:
                if self._fast:
                    chunk = _decode_chunk(data)
                else:  # until the answer began: the head, then whether content arrived
                    slow = True
                    chunk = head = _decode_head(data)
                    if head.error is None and not self._started:
                        self._started = True
                        self._rid = head.id
                        out.append(ResponseStart(head.id, head.model))
            except (msgspec.ValidationError, msgspec.DecodeError) as exc:
                if not data.strip():  # an empty keep-alive ``data:`` line
                    return []
                raise self._bad(exc, data) from exc
        return self._chunk(chunk, data, out, slow)

    def feed_all(self, pairs: list[Pair], out: list[Event]) -> list[Event]:
        """The events of several SSE events (those of one network read): what ``feed_data``
        gives for each, appended to ``out`` (also when one of them raises: what came before it
        is there), except that a run of plain text chunks is one ``TextDelta`` (the
        Assembler and every consumer read text deltas of a part as one text)."""
        # HOT PATH: per streamed chunk, a plain text chunk is decoded and its text kept
        run: list[str] = []
        n = 0  # events taken here, not yet counted in sse_events
        decode = _decode_chunk
        for event, data in pairs:
            chunk: Any = None
            if self._fast and event == "message":
                try:
                    chunk = decode(data)
                except (msgspec.ValidationError, msgspec.DecodeError):
                    chunk = None
                if chunk is not None and self.state == "streaming":
                    choices = chunk.choices
                    if (choices and chunk.usage is None and chunk.error is None
                            and not self._errored):
                        ch = choices[0]
                        d = ch.delta
                        if not ch.index and d is not None and ch.finish_reason is None:
                            c = d.content
                            if (c and c.__class__ is str and not (
                                    d.reasoning_content or d.reasoning or d.reasoning_details
                                    or d.tool_calls or d.refusal or d.function_call)):
                                run.append(c)  # type: ignore[arg-type]
                                n += 1
                                continue
            if run:
                out.append(TextDelta(run[0] if len(run) == 1 else "".join(run)))
                run = []
            if chunk is not None:
                self.sse_events += n + 1
                out += self._chunk(chunk, data, [], False)
            else:
                self.sse_events += n
                out += self.feed_data(event, data)
            n = 0
        if run:
            out.append(TextDelta(run[0] if len(run) == 1 else "".join(run)))
        self.sse_events += n
        return out

    def _chunk(self, chunk: Any, data: str | bytes, out: list[Event], slow: bool
               ) -> list[Event]:
        """The events of a decoded chunk (``out`` may hold its ResponseStart already)."""
        if chunk.error is not None or self._errored:
            return self._error_chunk(chunk.error, data_text(data))
        kind = "chunk"
        choices = chunk.choices
        if choices:
            ch: Choice | None = choices[0]
            if ch.index:  # type: ignore[union-attr]
                ch = next((c for c in choices if c.index == 0), None)
            if ch is not None:
                d = ch.delta
                if d is not None:
                    c = d.content
                    if (d.reasoning_content or d.reasoning or d.reasoning_details
                            or d.tool_calls or d.refusal or d.function_call
                            or (c and c.__class__ is not str)):
                        self._rich_delta(d, out)
                    elif c:
                        out.append(TextDelta(c))  # type: ignore[arg-type]
                if ch.finish_reason is not None:
                    self._finish = ch.finish_reason
                    kind = "finish"
        if chunk.usage is not None:
            out.append(usage_event(chunk.usage))
        nxt = MOVES[self.state].get(kind)
        if nxt is None:
            self._move(kind, data_text(data))
        self.state = nxt  # type: ignore[assignment]
        if slow and self._started and has_content(out):
            self._fast = True  # content arrived (close() needs to know no more)
        return out

    def _bad(self, exc: Exception, data: str) -> ProviderError:
        what = "has a wrong shape" if isinstance(exc, msgspec.ValidationError) else "is not JSON"
        return malformed(f"chat stream chunk {what} in state {self.state!r}: {exc}",
                         details=data)

    def _odd_event(self, etype: str, data: str) -> list[Event]:
        """An SSE event with an ``event:`` name: ``error`` (Groq) is an error; other names
        are ignored unless they carry a JSON chunk (lenient towards proxies)."""
        if etype != "error":
            if etype in _HARMLESS_EVENTS or not data.startswith("{"):
                return []
            self.sse_events -= 1  # feed() counts it again
            return self.feed(SSEEvent(data))
        err: Any = data
        if data.startswith("{"):
            try:
                err = _decode_chunk(data).error or data
            except (msgspec.ValidationError, msgspec.DecodeError):
                err = data
        return self._error_chunk(err, data, force=True)

    def _error_chunk(self, err: Any, data: str, *, force: bool = False) -> list[Event]:
        if err is None and not force:  # a chunk after an error: ignored
            self._move("chunk", data)
            return []
        self._move("error", data)
        if self._errored:
            return []
        self._errored = True
        return [_error_event(err, in_stream=True)]

    def _rich_delta(self, d: Delta, out: list[Event]) -> None:
        """Everything but a plain text delta, in part order: reasoning, text, tool calls,
        refusal."""
        if d.reasoning_content:
            out.append(ReasoningDelta(SLOT_CONTENT, d.reasoning_content, "reasoning_content"))
        if d.reasoning:
            out.append(ReasoningDelta(SLOT_REASONING, d.reasoning, "reasoning"))
        if d.reasoning_details:
            self._details_events(d.reasoning_details, out)
        c = d.content
        if c:
            if isinstance(c, str):
                out.append(TextDelta(c))
            else:
                content_events(c, out)
        if d.tool_calls:
            self._tool_events(d.tool_calls, out)
        elif d.function_call is not None:
            self._tool_events([ToolCallFragment(index=LEGACY_CALL,
                                                function=d.function_call)], out)
        if d.refusal:
            out.append(RefusalDelta(d.refusal))

    def _tool_events(self, frags: list[ToolCallFragment], out: list[Event]) -> None:
        for tc in frags:
            idx = tc.index
            fn = tc.function
            if idx is None:
                if tc.id is not None:
                    idx = next((i for i, c in self._calls.items() if c == tc.id), None)
                    if idx is None:
                        idx = self._next_index()
                elif fn is not None and fn.name and self._calls:
                    idx = self._next_index()  # a name starts the next call
                else:
                    idx = self._last_call
            if idx not in self._calls:
                name = fn.name if fn is not None else None
                if not name:
                    raise malformed(f"chat stream: tool call {idx} starts without a name "
                                    f"in state {self.state!r}")
                cid = tc.id or call_id(self._rid, idx)
                self._calls[idx] = cid
                self._has_calls = True
                out.append(ToolCallStart(idx, cid, name))
            self._last_call = idx
            if fn is not None and fn.arguments is not None:
                args = fn.arguments
                out.append(ToolCallDelta(idx, args if type(args) is str else
                                         msgspec.json.encode(args).decode()))

    def _next_index(self) -> int:
        return max((i for i in self._calls if i != LEGACY_CALL), default=-1) + 1

    def _details_events(self, details: list[dict[str, Any]], out: list[Event]) -> None:
        for pos, det in enumerate(details):
            ev = detail_delta(det, pos, raw=False)
            out.append(ev)
            merged = self._details.get(ev.index)
            if merged is None:
                self._details[ev.index] = dict(det)
                continue
            for key, value in det.items():
                old = merged.get(key)
                if key in ("text", "signature", "data", "summary") and isinstance(value, str) \
                        and isinstance(old, str):
                    merged[key] = old + value
                elif value is not None:
                    merged[key] = value

    def close(self) -> list[Event]:
        """End of stream: the closing events ending with ``Finish``; raises
        ``stream_interrupted`` when ``[DONE]`` never came and no error was reported."""
        if self._errored:
            return []
        if self.state != "done":
            raise ProviderError(
                ErrorKind.STREAM_INTERRUPTED,
                f"chat stream ended in state {self.state!r} before data: [DONE] "
                f"({self.sse_events} events)",
            )
        out: list[Event] = []
        for slot, merged in self._details.items():
            dtype = merged.get("type")
            out.append(ReasoningDelta(index=slot, kind=f"reasoning_details:{dtype}",
                                      raw=merged))
        if self._finish is None and not self._fast:
            raise nothing("chat stream")
        out.extend(ToolCallEnd(i) for i in self._calls)
        out.append(Finish(self._finish, normalize_finish(self._finish, self._has_calls)))
        return out

