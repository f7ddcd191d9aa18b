"""The provider runtime actor: one per configured provider, long-lived.

Its mailbox takes ``TurnRequest`` s. For each it runs the attempts of one turn (retries
with backoff, the streaming fallback) in its own task, and answers on the request's reply
channel with, in order::

    AttemptStarted  (PoolUse? Events* AttemptFailed AttemptStarted)*  PoolUse? Events*
    TurnDone | TurnFailed

where each ``Events`` is a ``list[Event]`` (one batch per network read) and ``PoolUse``
(from an HTTP provider, when the response head arrives) says how the attempt got its
connection.

``StreamingDisabled`` may appear once before an attempt. The reply channel is closed at
the end, so the consumer sees ``EndOfChannel``. Events of a failed attempt have already
been delivered: the consumer starts a new assembly at each ``AttemptStarted``.

An attempt the open circuit refuses sends nothing and is answered with an
``AttemptFailed`` whose error has the code ``CIRCUIT_OPEN``. When the turn can fail over
(``TurnRequest.can_fail_over``) the turn ends there, so the next provider takes it at
once; otherwise the refusal uses up one attempt of the retry budget and the turn waits
for the circuit's next probe (its ``delay``), as long as the budget and ``timeout.total``
allow. While another turn's probe is in flight the wait looks again every
``CIRCUIT_POLL`` seconds, so a successful probe lets every waiting turn through at once
rather than a cool-down later; a probe that fails opens the circuit again, and the next
attempt is another refusal. Each outcome of a call is recorded by the breaker as its verdict says
(``resilience.breaker.VERDICTS``); a 429 also holds the shared rate limiter back for its
``retry-after``.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from typing import Any, Protocol

import attrs
import trio

from ..channels import send_soon
from ..errors import ErrorKind, ProviderError, sole_exception
from ..events import Event, events_of
from ..model import Request, Response
from ..pricing import estimate_tokens
from ..resilience.breaker import BreakerState, Verdict, verdict_of
from ..resilience.gates import Admission, Breaker, Limiter, acquire_from, as_breaker, as_limiter
from ..resilience.retry import RetryPolicy

__all__ = [
    "CIRCUIT_OPEN",
    "AttemptFailed",
    "AttemptStarted",
    "CacheOutcome",
    "PoolUse",
    "Provider",
    "Reply",
    "StreamingDisabled",
    "TurnDone",
    "TurnFailed",
    "TurnRequest",
    "admit_and_reserve",
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
    # another provider would take the turn if this one failed: an open circuit then ends
    # the turn at once instead of waiting for its probe
    can_fail_over: bool = False
    estimate: int = -1
    # cancelled by the session that gives the turn up (its own turn was cancelled)
    scope: trio.CancelScope = attrs.field(factory=trio.CancelScope)


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
class PoolUse:
    """How one attempt got its connection: a ``new`` one or a reused one, and whether it
    ``waited`` for one (every connection of the pool was busy) and for how many
    ``seconds``."""

    new: bool
    waited: bool = False
    seconds: float = 0.0


@attrs.frozen
class CacheOutcome:
    outcome: str  # hit | miss | store
    key: str


Reply = (list[Event] | AttemptStarted | AttemptFailed | StreamingDisabled | TurnDone | TurnFailed
         | CacheOutcome | PoolUse)


CIRCUIT_OPEN = "circuit_open"  # the code of the error for a turn the breaker refused
CIRCUIT_POLL = 1.0  # seconds between two looks at a half-open circuit whose probe is out
CIRCUIT_SLACK = 1e-3  # seconds of "still open" at the probe time that are only rounding


def new_request_id() -> str:
    return "req_" + os.urandom(8).hex()  # 64 random bits, as uuid4().hex[:16] gave


@attrs.define
class ActorOptions:
    policy: RetryPolicy = attrs.field(factory=RetryPolicy)
    streaming_fallback_kinds: frozenset[str] = frozenset({ErrorKind.STREAMING_UNSUPPORTED.value})
    rng: random.Random = attrs.field(factory=random.Random)
    sleep: Callable[[float], Any] = trio.sleep
    cache: Any = None       # runtime.cache_store.ResponseCache, or None
    cache_kind: str = ""    # the provider kind that keys the cache
    # shared by every session of the process (or of the fleet: ``runtime.fleet``); a pure
    # RateLimiter / CircuitBreaker is wrapped (``resilience.gates``)
    limiter: Limiter | None = attrs.field(default=None, converter=as_limiter)
    breaker: Breaker | None = attrs.field(default=None, converter=as_breaker)
    clock: Callable[[], float] = trio.current_time
    # the most a turn waits in all for an open circuit (the provider's timeout.total)
    circuit_wait: float = 600.0


def _refusal(opts: ActorOptions, provider: Provider, wait: float, attempt: int, *,
             waiting: bool, why: str = "") -> ProviderError:
    """The error of an attempt the open circuit refused (nothing was sent)."""
    head = "circuit open after repeated failures: no request sent"
    if waiting:
        text = (f"{head}; waiting up to {wait:.1f} s for its next probe (attempt {attempt} "
                f"of {opts.policy.max_attempts})")
    else:
        text = f"{head} (next probe in {wait:.1f} s{why})"
    err = ProviderError(ErrorKind.SERVER, text, provider=provider.name,
                        hint="the provider keeps failing: the turn waits for the circuit's "
                             "probe, or a fallback takes it if one is configured",
                        code=CIRCUIT_OPEN)
    err.retry_safe = False
    return err


async def _admit(opts: ActorOptions) -> Admission:
    """The breaker's answer for the next attempt (always yes without a breaker)."""
    return _OPEN_ROAD if opts.breaker is None else await opts.breaker.admit(opts.clock())


def _refused(opts: ActorOptions, provider: Provider, msg: TurnRequest, attempt: int,
             waited: float, wait: float) -> tuple[ProviderError, float | None]:
    """The refusal of an attempt the breaker did not let through (it could say yes in
    ``wait`` seconds) and how long to wait before the next attempt (None: the turn ends
    here)."""
    if msg.can_fail_over:
        return _refusal(opts, provider, wait, attempt, waiting=False), None
    if attempt >= opts.policy.max_attempts:
        return _refusal(opts, provider, wait, attempt, waiting=False,
                        why=f"; no attempt left of retry.max_attempts "
                            f"{opts.policy.max_attempts}"), None
    if waited + wait > opts.circuit_wait:
        return _refusal(opts, provider, wait, attempt, waiting=False,
                        why=f", beyond timeout.total {opts.circuit_wait:g} s of waiting "
                            "for it in this turn"), None
    return _refusal(opts, provider, wait, attempt, waiting=True), wait


_OPEN_ROAD = Admission(True, BreakerState.CLOSED)


async def _await_circuit(opts: ActorOptions, until: float, budget_end: float
                         ) -> Admission | None:
    """Wait for the breaker to let a call through: its admission when it did (a half-open
    probe slot is then this turn's). An open circuit cannot close before its cool-down, so
    that is slept in one go; None when it is still (or again) open at ``until``. While
    another turn's probe is out the circuit is looked at every ``CIRCUIT_POLL`` seconds, up
    to ``budget_end`` (the turn's timeout.total for circuit waits)."""
    breaker = opts.breaker
    assert breaker is not None
    while True:
        now = opts.clock()
        gate = await breaker.admit(now)
        if gate.allowed:
            return gate
        is_open = gate.state is BreakerState.OPEN
        # open at ``until`` means opened again (another probe failed), unless the probe time
        # is only a rounding away: a shared breaker computes ``retry_in`` as a plain
        # subtraction in Lua, which can fall a float step short (see ``seconds_until``)
        if now >= budget_end or (is_open and now >= until and gate.retry_in > CIRCUIT_SLACK):
            return None
        step = min(gate.retry_in, until - now) if is_open else CIRCUIT_POLL
        await opts.sleep(max(1e-3, min(step, budget_end - now)))


def _remote(opts: ActorOptions) -> bool:
    """Whether both gates live in another process (a fleet's Redis): each call a round trip."""
    return (getattr(opts.breaker, "remote", False) is True
            and getattr(opts.limiter, "remote", False) is True)


async def admit_and_reserve(opts: ActorOptions, tokens: float) -> tuple[Admission, bool]:
    """Ask a remote breaker and a remote limiter at once, so that a request waits for one
    round trip before it goes out, not two: (the admission, whether ``tokens`` and one
    request were reserved). A refused admission's reservation is given back by the caller
    (its tokens; the request slot stays spent, erring on the side of caution), so the actor
    asks at once only while the circuit was closed when last asked: an open circuit costs
    each turn in flight at most the one slot of the refusal that saw it open."""
    breaker, limiter = opts.breaker, opts.limiter
    assert breaker is not None and limiter is not None
    now = opts.clock()
    seen: list[Admission] = []

    async def admit() -> None:
        seen.append(await breaker.admit(now))

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(admit)
            wait = await limiter.reserve(tokens, now)
    except BaseExceptionGroup as group:  # one failure comes out as itself
        lone = sole_exception(group)
        if lone is None:
            raise
        raise lone from None
    return seen[0], wait <= 0.0


async def _record(opts: ActorOptions, verdict: Verdict, probe: float | str | None) -> None:
    if opts.breaker is not None:
        await opts.breaker.record(verdict, opts.clock(), probe=probe)


_reply = send_soon  # a slow consumer still holds the turn back (backpressure)


async def run_turn(provider: Provider, msg: TurnRequest, opts: ActorOptions,
                   state: dict[str, Any]) -> None:
    """All attempts of one turn; every outcome is a reply message, never an exception."""
    stream = msg.stream and not state.get("streaming_disabled")
    attempt = 0
    waited = 0.0  # seconds spent waiting for an open circuit
    async with msg.reply as reply:
        key: str | None = None
        if opts.cache is not None:
            try:
                key, hit = await opts.cache.lookup(opts.cache_kind, msg.request)
            except ProviderError as err:  # a replay miss: nothing sent, the breaker untold
                rid = new_request_id()
                await _reply(reply, AttemptFailed(err, 1, rid, None))
                await _reply(reply, TurnFailed(err, 1))
                return
            if hit is not None:
                await _reply(reply, CacheOutcome("hit", key))
                await _reply(reply, events_of(hit))
                await _reply(reply, TurnDone(hit, 0, new_request_id(), hit.request_id, cached=True))
                return
            if opts.cache.serves:
                await _reply(reply, CacheOutcome("miss", key))
        # the reservation: the prompt as guessed plus the whole output budget, settled with
        # the real usage afterwards
        prompt = msg.estimate if msg.estimate >= 0 else estimate_tokens(msg.request.messages)
        estimate = prompt + (msg.request.params.max_tokens or 0)
        admitted: Admission | None = None  # the breaker already let the next attempt through
        while True:
            attempt += 1
            rid = new_request_id()
            reserved = False  # the limiter already granted this attempt
            if admitted is not None:
                gate = admitted
            elif _remote(opts) and state.get("circuit", BreakerState.CLOSED) is BreakerState.CLOSED:
                # at once only while the circuit was closed when last asked: a refusal then
                # spends one request slot of the shared limit (see admit_and_reserve)
                gate, reserved = await admit_and_reserve(opts, estimate)
            else:
                gate = await _admit(opts)
            state["circuit"] = gate.state
            if not gate.allowed:
                if reserved and opts.limiter is not None:  # nothing goes out: tokens back
                    await opts.limiter.settle(0, opts.clock(), estimate=estimate)
                refusal, wait = _refused(opts, provider, msg, attempt, waited, gate.retry_in)
                await _reply(reply, AttemptFailed(refusal, attempt, rid, wait))
                if wait is None:
                    await _reply(reply, TurnFailed(refusal, attempt))
                    return
                t0 = opts.clock()
                admitted = await _await_circuit(opts, t0 + wait,
                                                t0 + opts.circuit_wait - waited)
                waited += opts.clock() - t0
                continue
            admitted = None
            probe_at = gate.probe
            if opts.limiter is not None and not reserved:
                await acquire_from(opts.limiter, estimate, clock=opts.clock, sleep=opts.sleep)
            await _reply(reply, AttemptStarted(attempt, rid, stream))
            try:
                resp = await provider.attempt(msg.request, reply, stream=stream)
            except ProviderError as err:
                await _record(opts, verdict_of(err), probe_at)
                if opts.limiter is not None:
                    if not err.output_started:
                        await opts.limiter.settle(0, opts.clock(), estimate=estimate)  # unused
                    if err.kind is ErrorKind.RATE_LIMITED and err.retry_after is not None:
                        await opts.limiter.hold(err.retry_after, opts.clock())
                if stream and err.kind.value in opts.streaming_fallback_kinds:
                    stream = False
                    reason = err.message
                    if not state.get("streaming_disabled"):
                        state["streaming_disabled"] = reason
                        await _reply(reply, StreamingDisabled(reason))
                    await _reply(reply, AttemptFailed(err, attempt, rid, 0.0))
                    attempt -= 1  # refusing a stream is not a failed attempt
                    continue
                if opts.policy.should_retry(attempt, err):
                    delay = opts.policy.delay(attempt, err, opts.rng)
                    await _reply(reply, AttemptFailed(err, attempt, rid, delay))
                    await opts.sleep(delay)
                    continue
                await _reply(reply, AttemptFailed(err, attempt, rid, None))
                await _reply(reply, TurnFailed(err, attempt))
                return
            except BaseException:  # cancelled (Ctrl-C, a session stopped): no verdict
                with trio.CancelScope(shield=True, deadline=trio.current_time() + 10.0):
                    await _record(opts, Verdict.NEUTRAL, probe_at)
                raise
            await _record(opts, Verdict.SUCCESS, probe_at)
            if opts.limiter is not None and resp.usage is not None:
                await opts.limiter.settle(resp.usage.total_tokens, opts.clock(),
                                          estimate=estimate)
            if opts.cache is not None and opts.cache.records:
                key = await opts.cache.store(opts.cache_kind, msg.request, resp)
                await _reply(reply, CacheOutcome("store", key))
            await _reply(reply, TurnDone(resp, attempt, rid, resp.request_id))
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
            nursery.start_soon(_turn, provider, msg, opts, state)


async def _turn(provider: Provider, msg: TurnRequest, opts: ActorOptions,
                state: dict[str, Any]) -> None:
    """One turn in the actor's nursery. The session that asked may give it up (its turn
    was cancelled): it cancels ``msg.scope``, or, if it left without doing so, its reply
    channel is gone. Either way the attempt in flight is cancelled (the breaker gets no
    verdict from it) and the actor goes on serving others."""
    with msg.scope:
        try:
            await run_turn(provider, msg, opts, state)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # nobody is reading the replies any more
