"""Gates in another process (a fleet's Redis) are asked at once before a request: one
round trip, not two. Gates that stand in for Redis here block until the test releases them,
so the order of calls is seen with trio's own tools, not timed."""

from __future__ import annotations

from typing import Any

import trio
import trio.testing

from runtime.model import Message, Request, Response, TextPart, Usage
from runtime.providers.actor import ActorOptions, TurnDone, TurnFailed, TurnRequest, run_turn
from runtime.providers.scripted import ScriptedProvider
from runtime.resilience.breaker import BreakerState, Verdict
from runtime.resilience.gates import Admission

REQUEST = Request("m", [Message.user("hi")])
ANSWER = Response("r1", "m", [TextPart("hello")], "stop", "stop", Usage(5, 1))


class Gate:
    """Calls wait on ``release``; ``log`` says which call entered, in order."""

    def __init__(self, log: list[str], remote: bool) -> None:
        self.log = log
        self.release = trio.Event()
        if remote:
            self.remote = True


class HeldBreaker(Gate):
    def __init__(self, log: list[str], remote: bool, *, allowed: bool = True) -> None:
        super().__init__(log, remote)
        self.allowed = allowed
        self.verdicts: list[Verdict] = []

    async def admit(self, now: float) -> Admission:
        self.log.append("admit")
        await self.release.wait()
        if self.allowed:
            return Admission(True, BreakerState.CLOSED)
        return Admission(False, BreakerState.OPEN, retry_in=30.0)

    async def record(self, verdict: Verdict, now: float, *, probe: Any = None) -> None:
        self.verdicts.append(verdict)


class HeldLimiter(Gate):
    def __init__(self, log: list[str], remote: bool) -> None:
        super().__init__(log, remote)
        self.settled: list[tuple[float, float]] = []

    async def reserve(self, tokens: float, now: float) -> float:
        self.log.append("reserve")
        await self.release.wait()
        return 0.0

    async def settle(self, actual: float, now: float, *, estimate: float) -> None:
        self.settled.append((actual, estimate))

    async def hold(self, seconds: float, now: float) -> None:
        pass

    def observe_headers(self, headers: Any, now: float) -> None:
        pass


async def turn(provider: ScriptedProvider, opts: ActorOptions, *, can_fail_over: bool = False,
               state: dict[str, Any] | None = None) -> list[Any]:
    send, recv = trio.open_memory_channel[Any](64)
    await run_turn(provider, TurnRequest(REQUEST, send, 1, False, can_fail_over=can_fail_over,
                                         estimate=10), opts, {} if state is None else state)
    return [m async for m in recv]


async def test_remote_gates_are_asked_at_once() -> None:
    """Both remote gates are asked before either answers, and the grant is used as is."""
    log: list[str] = []
    breaker, limiter = HeldBreaker(log, True), HeldLimiter(log, True)
    provider = ScriptedProvider("main", [ANSWER])
    replies: list[Any] = []

    async def run() -> None:
        replies.extend(await turn(provider, ActorOptions(breaker=breaker, limiter=limiter)))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(run)
        await trio.testing.wait_all_tasks_blocked()
        assert sorted(log) == ["admit", "reserve"]  # both out before either answered
        breaker.release.set()
        limiter.release.set()
    assert isinstance(replies[-1], TurnDone)
    assert sorted(log) == ["admit", "reserve"]  # the grant was used: no second reserve
    assert breaker.verdicts == [Verdict.SUCCESS]
    assert limiter.settled == [(6, 10)]  # the real usage (5 in + 1 out), once


async def test_a_refused_admission_gives_the_reserved_tokens_back() -> None:
    """An open circuit ends the turn with nothing sent and the reserved tokens settled to 0."""
    log: list[str] = []
    breaker = HeldBreaker(log, True, allowed=False)
    limiter = HeldLimiter(log, True)
    breaker.release.set()
    limiter.release.set()
    provider = ScriptedProvider("main", [ANSWER])
    replies = await turn(provider, ActorOptions(breaker=breaker, limiter=limiter),
                         can_fail_over=True)
    assert isinstance(replies[-1], TurnFailed)
    assert provider.requests == []  # nothing went out
    assert limiter.settled == [(0, 10.0)]  # the reservation's tokens are given back


async def test_in_process_gates_are_asked_in_turn() -> None:
    """Without ``remote`` nothing changes: the limiter is asked once the breaker said yes."""
    log: list[str] = []
    breaker, limiter = HeldBreaker(log, False), HeldLimiter(log, False)
    provider = ScriptedProvider("main", [ANSWER])

    async with trio.open_nursery() as nursery:
        nursery.start_soon(turn, provider, ActorOptions(breaker=breaker, limiter=limiter))
        await trio.testing.wait_all_tasks_blocked()
        assert log == ["admit"]
        breaker.release.set()
        await trio.testing.wait_all_tasks_blocked()
        assert log == ["admit", "reserve"]
        limiter.release.set()
    assert len(provider.requests) == 1


async def test_after_a_refusal_the_gates_are_asked_in_turn_until_the_circuit_closes() -> None:
    """Asking at once spends a request slot when the breaker refuses; so once an actor saw
    the circuit open, its next turns ask the breaker first, and only a closed answer brings
    back asking both at once."""
    log: list[str] = []
    breaker = HeldBreaker(log, True, allowed=False)
    limiter = HeldLimiter(log, True)
    breaker.release.set()
    limiter.release.set()
    state: dict[str, Any] = {}
    provider = ScriptedProvider("main", [ANSWER, ANSWER])
    opts = ActorOptions(breaker=breaker, limiter=limiter)
    await turn(provider, opts, can_fail_over=True, state=state)
    # at once: the limiter is asked in this task while the breaker's call waits to start
    assert log == ["reserve", "admit"]
    log.clear()
    await turn(provider, opts, can_fail_over=True, state=state)
    assert log == ["admit"]  # refused again, and no request slot asked for
    breaker.allowed = True
    log.clear()
    await turn(provider, opts, state=state)
    assert log == ["admit", "reserve"]  # in turn: the breaker said closed first
    log.clear()
    await turn(provider, opts, state=state)
    assert log == ["reserve", "admit"] and len(provider.requests) == 2  # at once again
    assert limiter.settled.count((0, 10)) == 1  # one slot's tokens given back, once
