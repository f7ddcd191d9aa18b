"""Reading one turn's replies from a provider runtime actor (the conductor's side).

``TurnReader`` consumes the reply channel of one ``TurnRequest``: it writes the ``request``,
``provider_error`` (and ``errors/turn_<n>.json``), ``warning``, ``cache`` and ``assistant``
records, hands the answer's text to live watchers once across attempts (``Shown``), times
the first token, and ends with an ``Answer`` or the ``ProviderError`` that ended the turn.
It holds what arrived of the current attempt, so a cancelled turn can still record its
partial answer. One handler per reply type, looked up by type.

A *side* request (``side=True``: the summary request of ``strategy: summarize``) is recorded
like any other (``request``, ``provider_error``) but is not part of the conversation: its
text is not shown live and no ``assistant`` record is written for it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import trio

from ..errors import ActorFailed, ProviderError
from ..events import ReasoningDelta, TextDelta, ToolCallStart
from ..hooks import FirstToken, Hooks
from ..model import Response
from ..providers.actor import (
    CIRCUIT_OPEN,
    AttemptFailed,
    AttemptStarted,
    CacheOutcome,
    PoolUse,
    StreamingDisabled,
    TurnDone,
    TurnFailed,
)
from .recorder import Recorder
from .records import (
    AssistantRecord,
    CacheRecord,
    ProviderErrorRecord,
    RequestRecord,
    WarningRecord,
)
from .traces import strip_parts

__all__ = ["Answer", "Shown", "TurnReader"]

# events that mean the model started answering (time to first token)
_OUTPUT = (TextDelta, ReasoningDelta, ToolCallStart)


@attrs.frozen
class Answer:
    """A finished turn: the response and how it came."""

    response: Response
    request_id: str
    duration: float = 0.0
    ttft: float | None = None
    provider_request_id: str | None = None
    cached: bool = False


class Shown:
    """The text of one turn as watchers have seen it, across attempts: a retried stream is
    shown only past what an earlier attempt already showed; an attempt whose text differs
    restarts the answer (pure)."""

    __slots__ = ("_held", "_held_len", "_live", "_shown", "shown_len")

    def __init__(self) -> None:
        self._shown: list[str] = []
        self.shown_len = 0
        self._held: list[str] = []
        self._held_len = 0
        self._live = False

    def new_attempt(self) -> None:
        self._held, self._held_len, self._live = [], 0, False

    def feed(self, delta: str) -> str:
        """What of ``delta`` is new to the watchers (``"\\n[response restarted]\\n"`` and the
        whole new text when the attempt diverged)."""
        if self._live:
            self._shown.append(delta)
            self.shown_len += len(delta)
            return delta
        self._held.append(delta)
        self._held_len += len(delta)
        if self._held_len <= self.shown_len:
            return ""
        full, shown = "".join(self._held), "".join(self._shown)
        self._held, self._live = [], True
        if full.startswith(shown):
            new = full[len(shown):]
            self._shown.append(new)
            self.shown_len += len(new)
            return new
        self._shown, self.shown_len = [full], len(full)
        return "\n[response restarted]\n" + full


@attrs.define
class TurnReader:
    recorder: Recorder
    provider: str
    model: str
    hooks: Hooks | None = None
    shown: Shown = attrs.field(factory=Shown)
    rid: str = ""
    t0: float = 0.0
    ttft: float | None = None
    attempt: int = 0
    partial: list[str] = attrs.field(factory=list)   # text of the current attempt
    started_seq: int = 0      # the position of the current attempt's ``request`` record
    pool: PoolUse | None = None       # how the current attempt got its connection
    result: Answer | ProviderError | None = None
    side: bool = False                 # a side request (see the module docstring)

    def _so_far(self) -> tuple[str, str, int]:
        return self.partial_text, self.rid, self.started_seq

    async def read(self, replies: trio.MemoryReceiveChannel[Any]) -> Answer | ProviderError:
        self.t0 = trio.current_time()
        handlers: dict[type, Callable[[Any], Awaitable[None]]] = {
            list: self.events, AttemptStarted: self.started, AttemptFailed: self.failed,
            StreamingDisabled: self.streaming_disabled, TurnDone: self.done,
            TurnFailed: self.turn_failed, CacheOutcome: self.cache, PoolUse: self.pool_use,
        }
        if not self.side:
            self.recorder.answer_so_far = self._so_far
        receive, take = replies.receive, replies.receive_nowait
        try:
            async with replies:
                while True:
                    try:
                        msg = await receive()
                    except trio.EndOfChannel:
                        break
                    await handlers[type(msg)](msg)
                    # what is queued already is handled without a scheduling round trip each
                    while True:
                        try:
                            msg = take()
                        except (trio.WouldBlock, trio.EndOfChannel):
                            break
                        await handlers[type(msg)](msg)
        finally:
            if self.recorder.answer_so_far == self._so_far:
                self.recorder.answer_so_far = None
        if self.result is None:
            raise ActorFailed(f"provider {self.provider}", "ended a turn without an answer")
        return self.result

    @property
    def partial_text(self) -> str:
        return "".join(self.partial)

    # ---- one handler per reply type ---------------------------------------------------

    async def events(self, batch: list[Any]) -> None:
        if self.ttft is None and any(type(ev) in _OUTPUT for ev in batch):
            self.ttft = trio.current_time() - self.t0
            if self.hooks is not None and self.hooks.active and not self.side:
                self.hooks.emit(FirstToken(run_id=self.recorder.run_id, turn=self.recorder.turn,
                                           request_id=self.rid, provider=self.provider,
                                           model=self.model, ttft=self.ttft))
        texts = [ev.text for ev in batch if type(ev) is TextDelta]
        if texts:
            text = texts[0] if len(texts) == 1 else "".join(texts)
            self.partial.append(text)
            if self.recorder.delta_watchers and not self.side:
                self.recorder.delta(self.shown.feed(text), self.rid)

    async def started(self, msg: AttemptStarted) -> None:
        self.rid = msg.request_id
        self.t0, self.ttft, self.attempt = trio.current_time(), None, msg.attempt
        if self.partial and self.shown.shown_len:
            await self.recorder.emit(WarningRecord(
                code="stream_recovery", provider=self.provider, request_id=self.rid,
                message=f"stream recovery: attempt {msg.attempt} resumes a response of which "
                f"{self.shown.shown_len} characters were already shown; they are not shown "
                "again"))
        self.partial = []
        self.pool = None
        self.shown.new_attempt()
        written = await self.recorder.emit(RequestRecord(
            provider=self.provider, model=self.model, attempt=msg.attempt, stream=msg.stream,
            request_id=self.rid))
        self.started_seq = written.seq

    async def failed(self, msg: AttemptFailed) -> None:
        err, name = msg.error, self.provider
        if err.code == CIRCUIT_OPEN:  # no request was sent: not a provider failure
            waits = msg.delay is not None
            await self.recorder.emit(WarningRecord(
                code="circuit_wait" if waits else "circuit_open", provider=name,
                attempt=msg.attempt, delay=msg.delay,
                message=f"{name} {'waits' if waits else 'skipped'}: {err.message}"))
            return
        rec = ProviderErrorRecord(
            provider=name, model=self.model, kind=err.kind.value, status=err.status,
            message=err.message, details=err.details, hint=err.hint, attempt=msg.attempt,
            attempts=msg.attempt, request_id=msg.request_id, provider_request_id=err.request_id,
            retryable=err.retryable, delay=msg.delay, will_retry=msg.delay is not None,
            output_started=err.output_started, **self.connection())
        written = await self.recorder.emit(rec)
        body = {k: v for k, v in _fields(written).items()
                if k not in ("type", "ts", "run_id", "seq", "turn")}
        await self.recorder.error(self.recorder.turn, body)

    async def streaming_disabled(self, msg: StreamingDisabled) -> None:
        name = self.provider
        await self.recorder.emit(WarningRecord(
            code="streaming_disabled", provider=name, request_id=self.rid or None,
            message=f"streaming disabled for {name}: {msg.reason}"))

    async def done(self, msg: TurnDone) -> None:
        resp = msg.response
        if msg.cached:
            a = Answer(resp, msg.request_id, cached=True)
        else:
            a = Answer(resp, self.rid, trio.current_time() - self.t0, self.ttft,
                       msg.provider_request_id)
        self.result = a
        self.partial = []
        if self.side:
            return
        await self.recorder.emit(AssistantRecord(
            provider=self.provider, model=resp.model, request_id=a.request_id,
            provider_request_id=a.provider_request_id, attempts=msg.attempts, cached=a.cached,
            text=resp.text, finish_reason=resp.finish_reason, stop=resp.stop,
            duration=round(a.duration, 6), ttft=None if a.ttft is None else round(a.ttft, 6),
            parts=strip_parts(resp.parts), **self.connection()))

    async def pool_use(self, msg: PoolUse) -> None:
        self.pool = msg

    def connection(self) -> dict[str, Any]:
        """The record fields of the current attempt's connection (none before its head)."""
        p = self.pool
        if p is None:
            return {}
        return {"connection": "new" if p.new else "reused",
                "pool_wait": p.seconds if p.waited else None}

    async def turn_failed(self, msg: TurnFailed) -> None:
        self.result = msg.error

    async def cache(self, msg: CacheOutcome) -> None:
        await self.recorder.emit(CacheRecord(provider=self.provider,
                                             outcome=msg.outcome,  # type: ignore[arg-type]
                                             key=msg.key[:16]))


def _fields(rec: Any) -> dict[str, Any]:
    import msgspec

    out: dict[str, Any] = msgspec.to_builtins(rec)
    return out
