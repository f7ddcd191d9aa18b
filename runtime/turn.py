"""Reading one turn's replies from a provider runtime actor (the conductor's side).

``TurnReader`` consumes the reply channel of one ``TurnRequest``: it shows text as it
arrives (once, across attempts), writes the ``request`` / ``provider_error`` / ``warning`` /
``cache`` / ``assistant`` transcript events, keeps the provider's account (attempts,
retries, failures, streaming ratio, time to first token, latency, cache counts), emits the
hook events, and ends with an ``Answer`` or the ``ProviderError`` that ended the turn.
One handler per reply type, looked up by type.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import attrs
import structlog
import trio

from .console import Display
from .errors import ActorFailed, ProviderError
from .events import ReasoningDelta, TextDelta, ToolCallStart
from .hooks import CacheEvent, ErrorHookEvent, FirstToken, RequestStart, RetryEvent
from .logger import ErrorRecord
from .model import Response
from .providers.actor import (
    CIRCUIT_OPEN,
    AttemptFailed,
    AttemptStarted,
    CacheOutcome,
    StreamingDisabled,
    TurnDone,
    TurnFailed,
)
from .session import SetStreamingDisabled

if TYPE_CHECKING:
    from .conductor import Conductor, ProviderHandle

__all__ = ["Answer", "TurnReader"]

log = structlog.get_logger("conductor")

# events that mean the model started answering (time to first token)
_OUTPUT = (TextDelta, ReasoningDelta, ToolCallStart)


@attrs.frozen
class Answer:
    """A finished turn: the response and how it came (for the transcript and hooks)."""

    response: Response
    request_id: str
    duration: float = 0.0
    ttft: float | None = None
    provider_request_id: str | None = None
    cached: bool = False


@attrs.define
class TurnReader:
    conductor: Conductor
    handle: ProviderHandle
    display: Display
    rid: str = ""
    t0: float = 0.0
    ttft: float | None = None
    stream: bool = True
    result: Answer | ProviderError | None = None

    @property
    def acc(self) -> Any:
        return self.conductor.accounts.of(self.handle.name)

    async def read(self, replies: trio.MemoryReceiveChannel[Any]) -> Answer | ProviderError:
        self.t0 = trio.current_time()
        self.stream = self.handle.stream
        handlers: dict[type, Callable[[Any], Awaitable[None]]] = {
            list: self.events, AttemptStarted: self.started, AttemptFailed: self.failed,
            StreamingDisabled: self.streaming_disabled, TurnDone: self.done,
            TurnFailed: self.turn_failed, CacheOutcome: self.cache,
        }
        async with replies:
            async for msg in replies:
                await handlers[type(msg)](msg)
        if self.result is None:
            raise ActorFailed(f"provider {self.handle.name}", "ended a turn without an answer")
        self.display.end_turn()
        return self.result

    # ---- one handler per reply type ---------------------------------------------------

    async def events(self, batch: list[Any]) -> None:
        if self.ttft is None and any(type(ev) in _OUTPUT for ev in batch):
            self.ttft = trio.current_time() - self.t0
            self._hook(FirstToken, request_id=self.rid, ttft=self.ttft)
        for ev in batch:
            if type(ev) is TextDelta:
                self.display.text(ev.text)

    async def started(self, msg: AttemptStarted) -> None:
        self.rid = msg.request_id
        structlog.contextvars.bind_contextvars(request_id=self.rid)
        self.t0, self.ttft = trio.current_time(), None
        acc = self.acc
        acc.attempts += 1
        self.stream = msg.stream
        acc.streamed += msg.stream
        acc.retries += msg.attempt > 1
        c = self.conductor
        if self.display.shown_len:
            await c.note("warning", provider=self.handle.name, request_id=self.rid,
                         message=f"stream recovery: attempt {msg.attempt} resumes a response of "
                         f"which {self.display.shown_len} characters were already shown; they "
                         "are not shown again")
        self.display.new_attempt()
        await c.note("request", provider=self.handle.name, model=self.handle.model,
                     attempt=msg.attempt, stream=msg.stream, request_id=self.rid)
        self._hook(RequestStart, request_id=self.rid, attempt=msg.attempt, stream=msg.stream)
        log.info("request", provider=self.handle.name, model=self.handle.model,
                 attempt=msg.attempt)

    async def failed(self, msg: AttemptFailed) -> None:
        err, c, name = msg.error, self.conductor, self.handle.name
        if err.code == CIRCUIT_OPEN:  # no request was sent: not a provider failure
            verb = "skipped" if msg.delay is None else "waits"
            await c.note("warning", provider=name, circuit_open=True, attempt=msg.attempt,
                         delay=msg.delay, message=f"{name} {verb}: {err.message}")
            return
        self.acc.failures[err.kind.value] += 1
        record = {
            "provider": name, "model": self.handle.model, "kind": err.kind.value,
            "status": err.status, "message": err.message, "details": err.details,
            "hint": err.hint, "attempt": msg.attempt, "attempts": msg.attempt,
            "request_id": msg.request_id, "provider_request_id": err.request_id,
            "retryable": err.retryable, "delay": msg.delay, "will_retry": msg.delay is not None,
            "output_started": err.output_started,
        }
        await c.log.send(ErrorRecord(c.turn, record))
        await c.note("provider_error", **record)
        c.console.provider_error(name, err)
        self._hook(ErrorHookEvent, request_id=msg.request_id, kind=err.kind.value,
                   status=err.status, attempt=msg.attempt, message=err.message,
                   provider_request_id=err.request_id)
        if msg.delay is not None:
            self._hook(RetryEvent, request_id=msg.request_id, attempt=msg.attempt + 1,
                       delay=msg.delay)

    async def streaming_disabled(self, msg: StreamingDisabled) -> None:
        c, name = self.conductor, self.handle.name
        c.console.streaming_disabled(name, msg.reason)
        await c.note("warning", provider=name, streaming_disabled=True, request_id=self.rid,
                     message=f"streaming disabled for {name}: {msg.reason}")
        await c.state.send(SetStreamingDisabled(name, msg.reason))
        self.handle.stream = False

    async def done(self, msg: TurnDone) -> None:
        resp = msg.response
        if msg.cached:
            self.result = Answer(resp, msg.request_id, cached=True)
        else:
            duration = trio.current_time() - self.t0
            acc = self.acc
            acc.streamed_ok += self.stream
            acc.latencies.append(duration)
            if self.ttft is not None:
                acc.ttfts.append(self.ttft)
            self.result = Answer(resp, self.rid, duration, self.ttft, msg.provider_request_id)
        a = self.result
        await self.conductor.note(
            "assistant", provider=self.handle.name, model=resp.model, request_id=a.request_id,
            provider_request_id=a.provider_request_id, attempts=msg.attempts, cached=a.cached,
            text=resp.text, finish_reason=resp.finish_reason, stop=resp.stop,
            duration=round(a.duration, 6), ttft=None if a.ttft is None else round(a.ttft, 6))

    async def turn_failed(self, msg: TurnFailed) -> None:
        self.result = msg.error

    async def cache(self, msg: CacheOutcome) -> None:
        acc = self.acc
        acc.cache_hits += msg.outcome == "hit"
        acc.cache_misses += msg.outcome == "miss"
        await self.conductor.note("cache", provider=self.handle.name, outcome=msg.outcome,
                                  key=msg.key[:16])
        self._hook(CacheEvent, outcome=msg.outcome, key=msg.key[:16])

    def _hook(self, cls: type[Any], **fields: Any) -> None:
        self.conductor.hook(cls, provider=self.handle.name, model=self.handle.model, **fields)
