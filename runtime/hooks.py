"""Telemetry hooks: user callables told about requests, tokens, errors, retries, cache and tools.

Register plain or async callables per event name (``Hooks.on("response_end", fn)`` or the
``@hooks.on("tool_call")`` decorator). Each receives one typed event (a msgspec Struct with
ids, provider, model, durations, tokens, cost). Most events are views of transcript records
(``Hooks.record`` maps them: ``request`` -> ``request_start``, ``provider_error`` ->
``error`` and ``retry``, ``cache`` -> ``cache``, ``tool_result`` -> ``tool_call``); the
conductor emits ``first_token`` and ``response_end`` itself. Hooks never slow a session
down: ``Hooks.emit`` only puts an event in a bounded queue (``send_nowait``; when the queue
is full the event is dropped and counted), and a separate runner task (one per engine)
calls the hooks. A hook that raises is reported once (a ``warning`` in the session whose
event it was) and disabled; the session goes on.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
import trio

__all__ = [
    "EVENT_TYPES",
    "CacheEvent",
    "ErrorHookEvent",
    "FirstToken",
    "HookEvent",
    "Hooks",
    "RequestStart",
    "ResponseEnd",
    "RetryEvent",
    "ToolCallEvent",
]


class _Base(msgspec.Struct, kw_only=True, tag_field="event"):
    run_id: str
    turn: int


class RequestStart(_Base, tag="request_start"):
    request_id: str
    provider: str
    model: str
    attempt: int
    stream: bool


class FirstToken(_Base, tag="first_token"):
    request_id: str
    provider: str
    model: str
    ttft: float  # seconds from the attempt's start


class ResponseEnd(_Base, tag="response_end"):
    request_id: str
    provider: str
    model: str
    duration: float
    ttft: float | None
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    reasoning_tokens: int
    cost_usd: float | None
    provider_request_id: str | None = None
    cached: bool = False


class ErrorHookEvent(_Base, tag="error"):
    request_id: str
    provider: str
    model: str
    kind: str
    status: int | None
    attempt: int
    message: str
    provider_request_id: str | None = None


class RetryEvent(_Base, tag="retry"):
    request_id: str
    provider: str
    model: str
    attempt: int
    delay: float


class CacheEvent(_Base, tag="cache"):
    provider: str
    model: str
    outcome: str  # hit | miss | store
    key: str      # a prefix of the cache key


class ToolCallEvent(_Base, tag="tool_call"):
    call_id: str
    name: str
    ok: bool
    rejected: bool
    duration: float
    request_id: str | None = None


HookEvent = (RequestStart | FirstToken | ResponseEnd | ErrorHookEvent | RetryEvent | CacheEvent
             | ToolCallEvent)

EVENT_TYPES: dict[str, type[Any]] = {
    "request_start": RequestStart, "first_token": FirstToken, "response_end": ResponseEnd,
    "error": ErrorHookEvent, "retry": RetryEvent, "cache": CacheEvent, "tool_call": ToolCallEvent,
}

Hook = Callable[[Any], Awaitable[None] | None]


class Hooks:
    """The hooks of a session (see the module docstring)."""

    def __init__(self, *, queue: int = 256) -> None:
        self._hooks: dict[str, list[Hook]] = {name: [] for name in EVENT_TYPES}
        self._queue = queue
        self._send: trio.MemorySendChannel[Any] | None = None
        self.dropped = 0
        self.disabled: dict[str, str] = {}
        self.on_failure: Callable[[str, BaseException, Any], Awaitable[None]] | None = None
        self._scope = trio.CancelScope()

    def on(self, event: str, fn: Hook | None = None) -> Any:
        """Register ``fn`` for ``event`` (one of EVENT_TYPES); usable as a decorator."""
        if event not in EVENT_TYPES:
            raise ValueError(f"unknown hook event {event!r}; known: {', '.join(EVENT_TYPES)}")

        def register(f: Hook) -> Hook:
            self._hooks[event].append(f)
            return f

        return register(fn) if fn is not None else register

    @property
    def active(self) -> bool:
        return any(self._hooks.values())

    def record(self, rec: Any) -> None:
        """Emit the hook events that a transcript record stands for (see the docstring)."""
        r = _records()
        t = type(rec)
        hooked = self._hooks  # nobody listens to a kind of event: none is built
        if t is r.RequestRecord:
            if hooked["request_start"]:
                self.emit(RequestStart(run_id=rec.run_id, turn=rec.turn,
                                       request_id=rec.request_id, provider=rec.provider,
                                       model=rec.model, attempt=rec.attempt, stream=rec.stream))
        elif t is r.ProviderErrorRecord:
            base = {"run_id": rec.run_id, "turn": rec.turn}
            if hooked["error"]:
                self.emit(ErrorHookEvent(**base, request_id=rec.request_id,
                                         provider=rec.provider, model=rec.model, kind=rec.kind,
                                         status=rec.status, attempt=rec.attempt,
                                         message=rec.message,
                                         provider_request_id=rec.provider_request_id))
            if rec.delay is not None and hooked["retry"]:
                self.emit(RetryEvent(**base, request_id=rec.request_id, provider=rec.provider,
                                     model=rec.model, attempt=rec.attempt + 1, delay=rec.delay))
        elif t is r.CacheRecord:
            if hooked["cache"]:
                self.emit(CacheEvent(run_id=rec.run_id, turn=rec.turn, provider=rec.provider,
                                     model="", outcome=rec.outcome, key=rec.key))
        elif t is r.ToolResultRecord:
            if hooked["tool_call"]:
                self.emit(ToolCallEvent(run_id=rec.run_id, turn=rec.turn, call_id=rec.call_id,
                                        name=rec.name, ok=rec.ok, rejected=rec.rejected,
                                        duration=rec.duration,
                                        request_id=rec.request_id or None))

    def emit(self, ev: Any) -> None:
        """Queue an event for the hooks; never blocks, never raises."""
        if self._send is None or not self._hooks[_name(ev)]:
            return
        try:
            self._send.send_nowait(ev)
        except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
            self.dropped += 1

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The runner task: calls the hooks of each queued event until ``close()``."""
        send, recv = trio.open_memory_channel[Any](self._queue)
        self._send = send
        task_status.started()
        with self._scope:
            async with recv:
                async for ev in recv:
                    for fn in list(self._hooks[_name(ev)]):
                        await self._call(_name(ev), fn, ev)

    def close(self, grace: float = 5.0) -> None:
        """No more events; the runner gets ``grace`` seconds to deliver what is queued."""
        if self._send is not None:
            self._send.close()
            self._scope.deadline = min(self._scope.deadline, trio.current_time() + grace)

    async def _call(self, name: str, fn: Hook, ev: Any) -> None:
        try:
            result = fn(ev)
            if inspect.isawaitable(result):
                await result
        except Exception as exc:
            self._hooks[name] = [f for f in self._hooks[name] if f is not fn]
            label = getattr(fn, "__qualname__", repr(fn))
            self.disabled[label] = f"{type(exc).__name__}: {exc}"
            if self.on_failure is not None:
                await self.on_failure(label, exc, ev)


def _records() -> Any:
    """``runtime.session.records`` (imported on first use: it imports this module)."""
    global _RECORDS
    if _RECORDS is None:
        from .session import records

        _RECORDS = records
    return _RECORDS


_RECORDS: Any = None


def _name(ev: Any) -> str:
    return type(ev).__struct_config__.tag  # type: ignore[no-any-return]
