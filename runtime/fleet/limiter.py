"""The fleet's rate limiter and circuit breaker: one state per provider in Redis.

``RedisLimiter`` and ``RedisBreaker`` satisfy the async protocols of
``runtime.resilience.gates`` (what the provider runtime actor awaits); each decision is one
script of ``runtime.fleet.lua``, the local state machine step for step, on Redis's clock.
Every process that names the same provider entry (name, base URL, key: ``limiter_key``)
shares one limiter and one breaker, so any 60 s window grants at most twice the limit
across the fleet, a 429's ``retry-after`` or a provider's ``x-ratelimit-*`` headers seen by
one process hold every process back, and one probe at a time goes to a provider whose
circuit is half open.

While Redis is unreachable, a decision that lets a request out (``reserve``, ``admit``)
waits for it (with backoff: the fleet's bounds never lapse), and what is said after a
response (``settle``, ``hold``, a verdict, header caps) is sent once and dropped if Redis
does not answer: the turn in flight finishes either way (a reservation not settled stays
taken, which only errs on the side of caution).

``caller_clock=True`` makes the scripts use the ``now`` the caller passes instead of
Redis's clock (tests compare them with the Python objects step by step).
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Mapping
from typing import Any

import trio

from ..resilience.breaker import BreakerState, Verdict
from ..resilience.gates import Admission
from ..resilience.ratelimit import header_caps
from .connection import DOWN, Backend, as_text, retrying

__all__ = ["RedisBreaker", "RedisLimiter", "limit_arg"]


def limit_arg(per_minute: float | None) -> str:
    """A per-minute limit as the scripts take it ('0': unlimited)."""
    return "0" if per_minute is None else repr(float(per_minute))


class RedisLimiter:
    """Requests and tokens per minute for one provider, shared by the fleet.

    ``observe_headers`` is called while a response streams (synchronously): what the
    headers say is handed to this limiter's own task (:meth:`run`), which sends it on."""

    remote = True  # each call is a round trip: the actor asks it beside the breaker

    def __init__(self, backend: Backend, name: str, requests_per_minute: float | None,
                 tokens_per_minute: float | None, *, token_headers: bool = True,
                 caller_clock: bool = False) -> None:
        if requests_per_minute is not None and not requests_per_minute > 0:
            raise ValueError(f"a per-minute limit must be positive, not {requests_per_minute}")
        if tokens_per_minute is not None and not tokens_per_minute > 0:
            raise ValueError(f"a per-minute limit must be positive, not {tokens_per_minute}")
        self.backend = backend
        self.name = name
        self.key = backend.keys.limiter(name)
        self.rpm = requests_per_minute
        self.tpm = tokens_per_minute
        self.token_headers = token_headers
        self.caller_clock = caller_clock
        self._caps_send, self._caps_recv = trio.open_memory_channel[
            tuple[float, list[str]]](256)

    def _now(self, now: float) -> str:
        return repr(float(now)) if self.caller_clock else ""

    async def _call(self, op: str, now: float, *args: object) -> Any:
        return await self.backend.run(
            "limiter", [self.key],
            [op, self._now(now), limit_arg(self.rpm), limit_arg(self.tpm), *args])

    async def reserve(self, tokens: float, now: float) -> float:
        wait = await retrying(self.backend, lambda: self._call("reserve", now, float(tokens)))
        return float(wait)

    async def settle(self, actual: float, now: float, *, estimate: float) -> None:
        await _best_effort(self._call("settle", now, float(actual), float(estimate)))

    async def hold(self, seconds: float, now: float) -> None:
        if seconds > 0 and math.isfinite(seconds):
            await _best_effort(self._call("hold", now, float(seconds)))

    def caps_args(self, headers: Mapping[str, str], wall: float | None = None) -> list[str]:
        """The ``caps`` arguments of what ``headers`` say (empty: nothing to say)."""
        caps = header_caps(headers, wall)
        if not self.token_headers:
            caps.pop("tokens", None)
        if not caps:
            return []
        args: list[str] = []
        for bucket in ("requests", "tokens"):
            found = caps.get(bucket)
            if found is None:
                args += ["", ""]
            else:
                remaining, delay = found
                args += [repr(remaining), "" if delay is None else repr(delay)]
        return args

    def observe_headers(self, headers: Mapping[str, str], now: float) -> None:
        args = self.caps_args(headers, time.time())
        if not args:
            return
        try:
            self._caps_send.send_nowait((now, args))
        except trio.WouldBlock:
            pass  # hundreds unsent: the newest ones to come say the same

    async def apply_caps(self, now: float, args: list[str]) -> None:
        await self._call("caps", now, *args)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                  ) -> None:
        """The limiter's task: send what headers said to Redis (a lost connection loses
        only that observation; the next response says it again)."""
        task_status.started()
        async with self._caps_recv:
            async for now, args in self._caps_recv:
                try:
                    await self.apply_caps(now, args)
                except DOWN:
                    continue

    async def peek(self) -> tuple[float, float, float]:
        """(requests available, tokens available, seconds held back by the provider)."""
        r, t, held = await self._call("peek", 0.0)
        return float(r), float(t), float(held)


class RedisBreaker:
    """A provider's circuit, shared by the fleet (one probe at a time, fleet-wide)."""

    remote = True  # each call is a round trip: the actor asks it beside the limiter

    def __init__(self, backend: Backend, name: str, failure_threshold: int = 5,
                 cooldown: float = 30.0, *, caller_clock: bool = False) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        if cooldown < 0:
            raise ValueError("cooldown must not be negative")
        self.backend = backend
        self.name = name
        self.key = backend.keys.breaker(name)
        self.failure_threshold = failure_threshold
        self.cooldown = float(cooldown)
        self.caller_clock = caller_clock

    async def _call(self, op: str, now: float, *args: object) -> Any:
        return await self.backend.run(
            "breaker", [self.key],
            [op, repr(float(now)) if self.caller_clock else "", self.failure_threshold,
             repr(self.cooldown), *args])

    async def admit(self, now: float) -> Admission:
        allowed, state, retry_in, token = await retrying(
            self.backend, lambda: self._call("admit", now))
        tok = as_text(token)
        return Admission(bool(allowed), BreakerState(as_text(state)), float(retry_in),
                         tok or None)

    async def record(self, verdict: Verdict, now: float, *,
                     probe: float | str | None = None) -> None:
        await _best_effort(self._call("record", now, verdict.value,
                                      probe if isinstance(probe, str) else ""))

    async def peek(self, now: float = 0.0) -> tuple[BreakerState, int, float]:
        """(state, consecutive failures, seconds until a call could go out)."""
        state, failures, retry_in = await self._call("peek", now)
        return BreakerState(as_text(state)), int(failures), float(retry_in)


async def _best_effort(call: Awaitable[Any]) -> None:
    """Said once: a Redis that does not answer loses it (the backend notes it is down)."""
    try:
        await call
    except DOWN:
        pass
