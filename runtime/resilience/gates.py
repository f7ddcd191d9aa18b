"""The async face of the limiter and the breaker, as the provider runtime actor uses them.

The actor awaits every decision, so one process's in-memory state and a fleet's state in
Redis (``runtime.fleet``) are used alike::

    Limiter   reserve(tokens, now) -> seconds to wait (0.0: granted, taken)
              settle(actual, now, estimate=)   correct a granted reservation
              hold(seconds, now)               a 429's retry-after holds every request back
              observe_headers(headers, now)    x-ratelimit-* headers (sync: called while a
                                               response streams; a shared one sends them on)
    Breaker   admit(now) -> Admission          may a call go out (and is it the probe)
              record(verdict, now, probe=)     the verdict of a call that went out

``LocalLimiter`` and ``LocalBreaker`` wrap the pure state machines of ``ratelimit`` and
``breaker`` (``local`` is the wrapped object); ``now`` is the actor's clock. A shared
implementation ignores ``now`` and reads one clock for the whole fleet. ``as_limiter`` /
``as_breaker`` accept either a pure object or one of these. A gate whose every call is a
round trip to another process says so with a class attribute ``remote = True``; when both
are remote the actor asks the breaker and the limiter at once before a request.

Pure: no trio, no I/O.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Protocol, runtime_checkable

import attrs

from .breaker import BreakerState, CircuitBreaker, Verdict
from .ratelimit import RateLimiter

__all__ = [
    "Admission",
    "Breaker",
    "Limiter",
    "LocalBreaker",
    "LocalLimiter",
    "acquire_from",
    "as_breaker",
    "as_limiter",
]


@attrs.frozen
class Admission:
    """The breaker's answer: ``allowed``; the ``state`` it saw; ``retry_in`` seconds until
    it could say yes; ``probe``: this call's half-open probe slot (None: not the probe),
    handed back to ``record`` so that a neutral probe frees exactly its own slot."""

    allowed: bool
    state: BreakerState
    retry_in: float = 0.0
    probe: float | str | None = None


@runtime_checkable
class Limiter(Protocol):
    async def reserve(self, tokens: float, now: float) -> float: ...

    async def settle(self, actual: float, now: float, *, estimate: float) -> None: ...

    async def hold(self, seconds: float, now: float) -> None: ...

    def observe_headers(self, headers: Mapping[str, str], now: float) -> None: ...


@runtime_checkable
class Breaker(Protocol):
    async def admit(self, now: float) -> Admission: ...

    async def record(self, verdict: Verdict, now: float, *,
                     probe: float | str | None = None) -> None: ...


class LocalLimiter:
    """One process's limiter (``RateLimiter``) behind the async protocol."""

    def __init__(self, local: RateLimiter) -> None:
        self.local = local

    async def reserve(self, tokens: float, now: float) -> float:
        return self.local.reserve(tokens, now)

    async def settle(self, actual: float, now: float, *, estimate: float) -> None:
        self.local.settle(actual, now, estimate=estimate)

    async def hold(self, seconds: float, now: float) -> None:
        self.local.hold(seconds, now)

    def observe_headers(self, headers: Mapping[str, str], now: float) -> None:
        self.local.observe_headers(headers, now)


class LocalBreaker:
    """One process's breaker (``CircuitBreaker``) behind the async protocol."""

    def __init__(self, local: CircuitBreaker) -> None:
        self.local = local

    async def admit(self, now: float) -> Admission:
        b = self.local
        allowed = b.allow(now)
        state = b.state(now)
        return Admission(allowed, state, b.retry_in(now),
                         b.probe_started_at(now) if allowed else None)

    async def record(self, verdict: Verdict, now: float, *,
                     probe: float | str | None = None) -> None:
        self.local.record(verdict, now, probe_at=None if probe is None or isinstance(probe, str)
                          else float(probe))


def as_limiter(value: RateLimiter | Limiter | None) -> Limiter | None:
    """``ActorOptions.limiter``'s converter: a pure ``RateLimiter`` is wrapped."""
    if isinstance(value, RateLimiter):
        return LocalLimiter(value)
    return value


def as_breaker(value: CircuitBreaker | Breaker | None) -> Breaker | None:
    """``ActorOptions.breaker``'s converter: a pure ``CircuitBreaker`` is wrapped."""
    if isinstance(value, CircuitBreaker):
        return LocalBreaker(value)
    return value


async def acquire_from(limiter: Limiter, tokens: float, *, clock: Callable[[], float],
                       sleep: Callable[[float], Awaitable[object]]) -> float:
    """Wait (never fail) until ``limiter`` grants a request of ``tokens``; the seconds
    waited."""
    waited = 0.0
    while True:
        wait = await limiter.reserve(tokens, clock())
        if wait <= 0.0:
            return waited
        await sleep(wait)
        waited += wait
