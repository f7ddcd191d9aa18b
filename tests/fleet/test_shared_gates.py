"""The fleet's limiter and breaker in a real Redis are the local state machines step for
step (same decisions for the same operations at the same times), keep the same bounds
when several clients share them, and serve the provider runtime actor unchanged."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runtime.config import BackendConfig
from runtime.fleet.connection import Backend, open_backend
from runtime.fleet.limiter import RedisBreaker, RedisLimiter
from runtime.providers.actor import ActorOptions, TurnDone, TurnFailed
from runtime.providers.scripted import ScriptedProvider
from runtime.resilience.breaker import BreakerState, CircuitBreaker, Verdict
from runtime.resilience.gates import LocalBreaker
from runtime.resilience.ratelimit import RateLimiter

from ..test_ratelimit import WINDOW, _max_in_window
from ..test_remote_gates import ANSWER, turn

_names = itertools.count()

limiter_ops = st.lists(st.one_of(
    st.tuples(st.just("reserve"), st.floats(0.0, 30.0), st.floats(0.0, 1.5)),
    st.tuples(st.just("settle"), st.floats(0.0, 30.0), st.floats(0.0, 1.5)),
    st.tuples(st.just("hold"), st.floats(0.0, 30.0), st.floats(0.0, 90.0)),
    st.tuples(st.just("caps"), st.floats(0.0, 30.0), st.floats(0.0, 1.0)),
), min_size=1, max_size=60)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rpm=st.one_of(st.none(), st.integers(1, 300)),
       tpm=st.one_of(st.none(), st.integers(100, 100_000)), ops=limiter_ops)
async def test_redis_limiter_decides_as_the_local_one(
        backend_config: BackendConfig, rpm: int | None, tpm: int | None,
        ops: list[tuple[str, float, float]]) -> None:
    """Every reserve/settle/hold/header cap gives the same wait in Redis as in RateLimiter."""
    async with open_backend(backend_config) as backend:
        await _limiter_steps(backend, rpm, tpm, ops)


async def _limiter_steps(backend: Backend, rpm: int | None, tpm: int | None,
                         ops: list[tuple[str, float, float]]) -> None:
    local = RateLimiter(rpm, tpm)
    shared = RedisLimiter(backend, f"eq{next(_names)}", rpm, tpm, caller_clock=True)
    scale = float(tpm or 1000)
    now = 0.0
    for op, gap, x in ops:
        now += gap
        if op == "reserve":
            want = local.reserve(x * scale, now)
            got = await shared.reserve(x * scale, now)
            assert got == pytest.approx(want, rel=1e-12, abs=1e-9)
        elif op == "settle":
            local.settle(x * scale, now, estimate=scale / 2)
            await shared.settle(x * scale, now, estimate=scale / 2)
        elif op == "hold":
            local.hold(x, now)
            await shared.hold(x, now)
        else:
            headers = {"x-ratelimit-remaining-requests": str(int(x * 10)),
                       "x-ratelimit-reset-requests": f"{x * 20:.3f}s"}
            local.observe_headers(headers, now, wall=1.0)
            await shared.apply_caps(now, shared.caps_args(headers, wall=1.0))


async def test_three_clients_sharing_a_limit_stay_within_the_bound(
        backend_config: BackendConfig) -> None:
    """Three clients (own connections, like three processes) reserving from one limiter as
    fast as it lets them: no 60 s window grants more than twice the limit, and a long run
    averages the limit."""
    rpm = 60
    clock = [0.0]
    grants: list[tuple[float, float]] = []

    async def client(n: int) -> None:
        async with open_backend(backend_config) as b:
            lim = RedisLimiter(b, "shared", rpm, None, caller_clock=True)
            for _ in range(150):
                wait = await lim.reserve(1, clock[0])
                if wait == 0.0:
                    grants.append((clock[0], 1.0))
                else:
                    clock[0] += min(wait, 0.5)  # time moves on in small steps
                await trio.lowlevel.checkpoint()

    async with trio.open_nursery() as nursery:
        for i in range(3):
            nursery.start_soon(client, i)
    grants.sort()
    assert _max_in_window(grants, WINDOW) <= 2 * rpm
    span = grants[-1][0] - grants[0][0]
    assert span > 2 * WINDOW
    assert len(grants) <= rpm + rpm * span / 60.0 + 1


breaker_ops = st.lists(st.tuples(
    st.sampled_from(["admit", "failure", "success", "neutral"]), st.floats(0.0, 20.0)),
    min_size=1, max_size=80)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(threshold=st.integers(1, 4), cooldown=st.floats(0.5, 15.0), ops=breaker_ops)
async def test_redis_breaker_moves_as_the_local_one(
        backend_config: BackendConfig, threshold: int, cooldown: float,
        ops: list[tuple[str, float]]) -> None:
    """Admissions, probes, verdicts and lost-probe expiry follow the same transitions."""
    async with open_backend(backend_config) as backend:
        await _breaker_steps(backend, threshold, cooldown, ops)


async def _breaker_steps(backend: Backend, threshold: int, cooldown: float,
                         ops: list[tuple[str, float]]) -> None:
    local = LocalBreaker(CircuitBreaker(threshold, cooldown))
    shared = RedisBreaker(backend, f"cb{next(_names)}", threshold, cooldown,
                          caller_clock=True)
    now = 0.0
    probes: dict[str, Any] = {}
    for op, gap in ops:
        now += gap
        if op == "admit":
            a, b = await local.admit(now), await shared.admit(now)
            assert (a.allowed, a.state) == (b.allowed, b.state)
            assert a.retry_in == pytest.approx(b.retry_in, abs=1e-9)
            assert (a.probe is None) == (b.probe is None)
            if a.probe is not None:
                probes = {"local": a.probe, "shared": b.probe}
        else:
            verdict = Verdict(op)
            await local.record(verdict, now, probe=probes.get("local"))
            await shared.record(verdict, now, probe=probes.get("shared"))
            probes = {}
        state, failures, _ = await shared.peek(now)
        assert state is local.local.state(now)
        assert failures == local.local.consecutive_failures


async def test_one_probe_at_a_time_across_the_fleet(backend_config: BackendConfig) -> None:
    """A half-open circuit lets exactly one of many clients probe; its success closes it
    for all."""
    async with open_backend(backend_config) as b1, open_backend(backend_config) as b2:
        one = RedisBreaker(b1, "probe", 1, 5.0, caller_clock=True)
        two = RedisBreaker(b2, "probe", 1, 5.0, caller_clock=True)
        assert (await one.admit(0.0)).allowed
        await one.record(Verdict.FAILURE, 0.0)
        assert not (await two.admit(1.0)).allowed
        admitted = [await (one if i % 2 else two).admit(6.0) for i in range(6)]
        probes = [a for a in admitted if a.allowed]
        assert len(probes) == 1 and probes[0].state is BreakerState.HALF_OPEN
        # a lost probe frees its slot after another cool-down
        late = await one.admit(11.5)
        assert late.allowed and late.probe is not None
        await two.record(Verdict.SUCCESS, 12.0, probe=late.probe)
        assert (await one.admit(12.0)).state is BreakerState.CLOSED


async def test_the_fleet_gates_serve_the_provider_actor(backend_config: BackendConfig) -> None:
    """Turns through the provider runtime actor on the Redis limiter and breaker: a success
    is recorded and its reservation settled to the real usage; a turn the open circuit
    refuses sends nothing and gives its tokens back, its request slot spent (the limiter
    was asked beside the breaker: one round trip)."""
    async with open_backend(backend_config) as backend:
        limiter = RedisLimiter(backend, "actor", 60, 1000, caller_clock=True)
        breaker = RedisBreaker(backend, "actor", 1, 30.0, caller_clock=True)
        opts = ActorOptions(limiter=limiter, breaker=breaker, clock=lambda: 1.0)
        provider = ScriptedProvider("main", [ANSWER, ANSWER])
        assert isinstance((await turn(provider, opts))[-1], TurnDone)
        assert await breaker.peek(1.0) == (BreakerState.CLOSED, 0, 0.0)
        assert await limiter.peek() == (59.0, 994.0, 0.0)  # 10 reserved, 6 used
        await breaker.record(Verdict.FAILURE, 1.0)
        assert isinstance((await turn(provider, opts, can_fail_over=True))[-1], TurnFailed)
        assert len(provider.requests) == 1
        assert await limiter.peek() == (58.0, 994.0, 0.0)
