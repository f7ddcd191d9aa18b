"""The provider runtime actor: one per configured provider, long-lived.

Its mailbox takes ``TurnRequest`` s. For each it runs the attempts of one turn (retries
with backoff, the streaming fallback) in its own task, and answers on the request's reply
channel with, in order::

    AttemptStarted  (Events* AttemptFailed AttemptStarted)*  Events*  TurnDone | TurnFailed

where each ``Events`` is a ``list[Event]`` (one batch per network read).

``StreamingDisabled`` may appear once before an attempt. The reply channel is closed at
the end, so the consumer sees ``EndOfChannel``. Events of a failed attempt have already
been delivered: the consumer starts a new assembly at each ``AttemptStarted``.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from typing import Any, Protocol

import attrs
import trio

from ..breaker import CircuitBreaker
from ..errors import RETRYABLE, ErrorKind, ProviderError
from ..events import Event, events_of
from ..model import Request, Response
from ..pricing import estimate_tokens
from ..ratelimit import RateLimiter, acquire
from ..retry import RetryPolicy

__all__ = [
    "CIRCUIT_OPEN",
    "AttemptFailed",
    "AttemptStarted",
    "CacheOutcome",
    "Provider",
    "Reply",
    "StreamingDisabled",
    "TurnDone",
    "TurnFailed",
    "TurnRequest",
    "new_request_id",
    "provider_actor",
]


class Provider(Protocol):
    name: str
    protocol: str

    async def attempt(self, req: Request, send: trio.MemorySendChannel[Any] | None = None, *,
                      stream: bool = True) -> Response: ...


@attrs.frozen
class TurnRequest:
    """One turn for the actor. ``estimate``: the request's size in tokens as the session
    keeps it (the rate limiter reserves it plus the output budget; -1: estimate here)."""

    request: Request
    reply: trio.MemorySendChannel[Reply]
    turn: int = 0
    stream: bool = True
    estimate: int = -1


@attrs.frozen
class AttemptStarted:
    attempt: int
    request_id: str
    stream: bool


@attrs.frozen
class AttemptFailed:
    error: ProviderError
    attempt: int
    request_id: str
    delay: float | None  # None: no further attempt


@attrs.frozen
class StreamingDisabled:
    reason: str


@attrs.frozen
class TurnDone:
    response: Response
    attempts: int
    request_id: str
    provider_request_id: str | None = None
    cached: bool = False


@attrs.frozen
class TurnFailed:
    error: ProviderError
    attempts: int


@attrs.frozen
class CacheOutcome:
    outcome: str  # hit | miss | store
    key: str


Reply = (list[Event] | AttemptStarted | AttemptFailed | StreamingDisabled | TurnDone | TurnFailed
         | CacheOutcome)


CIRCUIT_OPEN = "circuit_open"  # the code of the error for a turn the breaker refused


def new_request_id() -> str:
    return "req_" + uuid.uuid4().hex[:16]


@attrs.define
class ActorOptions:
    policy: RetryPolicy = attrs.field(factory=RetryPolicy)
    streaming_fallback_kinds: frozenset[str] = frozenset({ErrorKind.STREAMING_UNSUPPORTED.value})
    rng: random.Random = attrs.field(factory=random.Random)
    sleep: Callable[[float], Any] = trio.sleep
    cache: Any = None       # runtime.cache_store.ResponseCache, or None
    cache_kind: str = ""    # the provider kind that keys the cache
    limiter: RateLimiter | None = None   # shared by every session of the process
    breaker: CircuitBreaker | None = None
    clock: Callable[[], float] = trio.current_time


async def _gate(opts: ActorOptions, provider: Provider, estimate: int) -> ProviderError | None:
    """Wait for the rate limiter; refuse at once when the circuit is open."""
    if opts.breaker is not None and not opts.breaker.allow(opts.clock()):
        wait = opts.breaker.retry_in(opts.clock())
        err = ProviderError(ErrorKind.SERVER, f"circuit open after repeated failures: "
                            f"no request sent (next probe in {wait:.1f} s)",
                            provider=provider.name,
                            hint="the provider keeps failing; a fallback takes the turn if "
                                 "one is configured", code=CIRCUIT_OPEN)
        err.retry_safe = False
        return err
    if opts.limiter is not None:
        await acquire(opts.limiter, estimate, clock=opts.clock, sleep=opts.sleep)
    return None


async def run_turn(provider: Provider, msg: TurnRequest, opts: ActorOptions,
                   state: dict[str, Any]) -> None:
    """All attempts of one turn; every outcome is a reply message, never an exception."""
    stream = msg.stream and not state.get("streaming_disabled")
    attempt = 0
    async with msg.reply as reply:
        key: str | None = None
        if opts.cache is not None:
            try:
                key, hit = await opts.cache.lookup(opts.cache_kind, msg.request)
            except ProviderError as err:  # a replay miss: names the key and what differs
                rid = new_request_id()
                await reply.send(AttemptFailed(err, 1, rid, None))
                await reply.send(TurnFailed(err, 1))
                return
            if hit is not None:
                await reply.send(CacheOutcome("hit", key))
                await reply.send(events_of(hit))
                await reply.send(TurnDone(hit, 0, new_request_id(), hit.request_id, cached=True))
                return
            if opts.cache.serves:
                await reply.send(CacheOutcome("miss", key))
        # the reservation: the prompt as guessed plus the whole output budget, settled with
        # the real usage afterwards
        prompt = msg.estimate if msg.estimate >= 0 else estimate_tokens(msg.request.messages)
        estimate = prompt + (msg.request.params.max_tokens or 0)
        while True:
            attempt += 1
            rid = new_request_id()
            refused = await _gate(opts, provider, estimate)
            if refused is not None:
                await reply.send(AttemptFailed(refused, attempt, rid, None))
                await reply.send(TurnFailed(refused, attempt))
                return
            await reply.send(AttemptStarted(attempt, rid, stream))
            try:
                resp = await provider.attempt(msg.request, reply, stream=stream)
            except ProviderError as err:
                if opts.breaker is not None:
                    if err.kind in RETRYABLE:
                        opts.breaker.record_failure(opts.clock())
                    else:  # the provider answered; the request itself was at fault
                        opts.breaker.record_success(opts.clock())
                if opts.limiter is not None and not err.output_started:
                    opts.limiter.settle(0, opts.clock(), estimate=estimate)  # nothing was used
                if stream and err.kind.value in opts.streaming_fallback_kinds:
                    stream = False
                    reason = err.message
                    if not state.get("streaming_disabled"):
                        state["streaming_disabled"] = reason
                        await reply.send(StreamingDisabled(reason))
                    await reply.send(AttemptFailed(err, attempt, rid, 0.0))
                    attempt -= 1  # refusing a stream is not a failed attempt
                    continue
                if opts.policy.should_retry(attempt, err):
                    delay = opts.policy.delay(attempt, err, opts.rng)
                    await reply.send(AttemptFailed(err, attempt, rid, delay))
                    await opts.sleep(delay)
                    continue
                await reply.send(AttemptFailed(err, attempt, rid, None))
                await reply.send(TurnFailed(err, attempt))
                return
            if opts.breaker is not None:
                opts.breaker.record_success(opts.clock())
            if opts.limiter is not None and resp.usage is not None:
                opts.limiter.settle(resp.usage.total_tokens, opts.clock(), estimate=estimate)
            if opts.cache is not None and opts.cache.records:
                key = await opts.cache.store(opts.cache_kind, msg.request, resp)
                await reply.send(CacheOutcome("store", key))
            await reply.send(TurnDone(resp, attempt, rid, resp.request_id))
            return


async def provider_actor(
    provider: Provider,
    opts: ActorOptions | None = None,
    *,
    bound: int = 8,
    task_status: trio.TaskStatus[trio.MemorySendChannel[TurnRequest]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve turns until every clone of the mailbox is closed. Each turn runs in its own
    task of this actor's nursery, so sessions sharing a provider do not wait in line."""
    opts = opts or ActorOptions()
    state: dict[str, Any] = {}
    send, recv = trio.open_memory_channel[TurnRequest](bound)
    async with trio.open_nursery() as nursery, recv:
        task_status.started(send)
        async for msg in recv:
            nursery.start_soon(run_turn, provider, msg, opts, state)
