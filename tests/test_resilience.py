"""Circuit breaker and rate limiter inside whole sessions over loopback (virtual time)."""

from __future__ import annotations

import itertools
import tempfile
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from trio.testing import MockClock

from runtime.config import load_config
from runtime.engine import Engine, run_session
from runtime.errors import RETRYABLE, ErrorKind, ProviderError
from runtime.model import Message, Request, Response, TextPart, ToolCallPart, Usage
from runtime.providers import HTTPProvider, ProviderSpec, Timeouts
from runtime.providers.actor import ActorOptions, TurnDone, TurnRequest, run_turn
from runtime.resilience.breaker import BreakerState, CircuitBreaker
from runtime.resilience.retry import RetryPolicy
from runtime.testing import ScriptedProvider, faults, open_fake_server
from runtime.testing.script import RecordedRequest
from runtime.tools import make_tool

PROTOCOLS = ["openai-chat", "openai-responses", "anthropic"]
FINAL = Response("r-final", "m", [TextPart("made it")], "stop", "stop", Usage(10, 2))


async def probe() -> str:
    """An async tool: a worker thread would let the autojump clock run ahead."""
    return "ok"


def answer(i: int, final: bool = False) -> Response:
    if final:
        return Response(f"r{i}", "m", [TextPart("done")], "stop", "stop", Usage(10, 2))
    return Response(f"r{i}", "m", [ToolCallPart(f"c{i}", "probe", "{}")], "tool_calls",
                    "tool_calls", Usage(10, 2))


def write(tmp_path: Path, providers: dict[str, Any], **extra: Any) -> Path:
    cfg = {"provider": "main", "providers": providers, "task": "go",
           "tools": {"workspace": str(tmp_path / "ws")},
           "logging": {"dir": str(tmp_path / "logs")},
           "reasoning": {"key_env": "TEST_TRACE_KEY"}, **extra}
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


async def test_open_circuit_sends_nothing_and_fails_over(tmp_path: Path, run_agent,
                                                         autojump_clock: Any) -> None:
    """After `failure_threshold` consecutive failures the circuit opens: the next turn is not
    sent to the main provider at all and goes straight to the fallback."""
    main_script = [answer(1), faults.server_error(), faults.server_error()]
    backup_script = [answer(2), answer(3, final=True)]
    async with open_fake_server(main_script) as s1, open_fake_server(backup_script) as s2:
        path = write(tmp_path, {
            "main": {"kind": "openai-chat", "model": "m", "api_key": "k-main-1",
                     "base_url": s1.base_url("openai-chat"),
                     "retry": {"max_attempts": 2, "base_delay": 0.1},
                     "circuit": {"failure_threshold": 2, "cooldown": 600}},
            "backup": {"kind": "openai-chat", "model": "m", "api_key": "k-backup-1",
                       "base_url": s2.base_url("openai-chat")}}, fallbacks=["backup"])
        run = await run_agent(path, extra_tools=[make_tool(probe)])
    assert run.outcome.exit_code == 0, run.err
    assert s1.request_count == 3  # turn 1 + two failures; nothing more once open
    assert s2.request_count == 2
    errors = run.errors(2)
    assert [e["kind"] for e in errors] == ["server", "server"]
    # turn 3 starts with main again, whose open circuit skips it without a request
    skipped = [e for e in run.events("warning") if e.get("code") in ("circuit_open", "circuit_wait")]
    assert [e["turn"] for e in skipped] == [3]
    assert not (run.run_dir / "errors" / "turn_3.json").exists()


async def test_rate_limit_waits_instead_of_failing(tmp_path: Path, run_agent,
                                                   autojump_clock: Any) -> None:
    """requests_per_minute: 2 — the third request waits for the bucket (30 s of virtual time
    for one token at 2/min) and the session still finishes."""
    arrivals: list[float] = []

    def timed(resp: Response) -> Any:
        def entry(req: RecordedRequest) -> Response:
            arrivals.append(trio.current_time())
            return resp
        return entry

    script = [timed(answer(1)), timed(answer(2)), timed(answer(3)), timed(answer(4, final=True))]
    async with open_fake_server(script) as server:
        path = write(tmp_path, {"main": {
            "kind": "openai-chat", "model": "m", "api_key": "k-1234",
            "base_url": server.base_url("openai-chat"),
            "rate_limit": {"requests_per_minute": 2}}})
        run = await run_agent(path, extra_tools=[make_tool(probe)])
    assert run.outcome.exit_code == 0, run.err
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    assert gaps[0] < 1  # the bucket starts full: two requests at once
    assert 29 <= gaps[1] <= 31 and 29 <= gaps[2] <= 31  # then one every 30 s
    assert not run.events("provider_error")


async def test_main_provider_comes_back_after_the_cooldown(tmp_path: Path, run_agent,
                                                           autojump_clock: Any) -> None:
    """Once the cool-down has passed, a turn probes the main provider again (half-open) and,
    on success, the session is back on it."""

    async def wait_20s() -> str:
        """Let virtual time pass."""
        await trio.sleep(20)
        return "waited"

    def call(i: int) -> Response:
        return Response(f"r{i}", "m", [ToolCallPart(f"c{i}", "wait_20s", "{}")], "tool_calls",
                        "tool_calls", Usage(10, 2))

    main_script = [faults.server_error(), faults.server_error(), answer(9, final=True)]
    async with open_fake_server(main_script) as s1, \
            open_fake_server([call(1), call(2)]) as s2:
        path = write(tmp_path, {
            "main": {"kind": "openai-chat", "model": "m", "api_key": "k-main-1",
                     "base_url": s1.base_url("openai-chat"),
                     "retry": {"max_attempts": 2, "base_delay": 0.1},
                     "circuit": {"failure_threshold": 2, "cooldown": 30}},
            "backup": {"kind": "openai-chat", "model": "m", "api_key": "k-backup-1",
                       "base_url": s2.base_url("openai-chat")}}, fallbacks=["backup"])
        run = await run_agent(path, extra_tools=[make_tool(wait_20s)])
    assert run.outcome.exit_code == 0, run.err
    providers = [e["provider"] for e in run.events("assistant")]
    assert providers == ["backup", "backup", "main"]  # turn 2 still inside the cool-down
    assert s1.request_count == 3 and s2.request_count == 2


async def test_rate_limit_headers_make_the_next_request_wait(tmp_path: Path, run_agent,
                                                             autojump_clock: Any) -> None:
    """A response saying no request remains until a reset 20 s away holds the next request
    back (it waits, it does not fail), even though the configured limit has room."""
    import json as _json

    from runtime.testing.script import Raw
    from runtime.testing.wire import openai_chat as wire

    arrivals: list[float] = []

    def first(req: RecordedRequest) -> Raw:
        arrivals.append(trio.current_time())
        body = _json.dumps(wire.encode_json(answer(1))).encode()
        return Raw(200, {"content-type": "application/json",
                         "x-ratelimit-remaining-requests": "0",
                         "x-ratelimit-reset-requests": "20s"}, body)

    def second(req: RecordedRequest) -> Response:
        arrivals.append(trio.current_time())
        return answer(2, final=True)

    async with open_fake_server([first, second]) as server:
        path = write(tmp_path, {"main": {
            "kind": "openai-chat", "model": "m", "api_key": "k-1234", "stream": False,
            "base_url": server.base_url("openai-chat"),
            "rate_limit": {"requests_per_minute": 600}}})
        run = await run_agent(path, extra_tools=[make_tool(probe)])
    assert run.outcome.exit_code == 0, run.err
    assert 19 <= arrivals[1] - arrivals[0] <= 21


def timed(entry: Any, arrivals: list[float]) -> Any:
    """A script entry that notes the virtual time its request arrived."""
    def answer(req: RecordedRequest) -> Any:
        arrivals.append(trio.current_time())
        return entry
    return answer


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_five_transient_faults_in_one_turn_do_not_end_the_session(
        protocol: str, tmp_path: Path, run_agent, autojump_clock: Any) -> None:
    """One provider, no fallback, retry.max_attempts 8, circuit threshold 3: a 429, a 500, an
    HTML 502, a cut stream and a 529 in one turn open the circuit twice; each time the turn
    waits for the probe (a refusal uses an attempt, sends nothing) and the session finishes."""
    script = [faults.rate_limited(retry_after=1), faults.server_error(), faults.html_error(502),
              faults.cut_mid_stream(then=FINAL, after_events=2), faults.overloaded(), FINAL]
    async with open_fake_server(script) as server:
        url = server.base_url(protocol)
        path = write(tmp_path, {"main": {
            "kind": protocol, "model": "m", "api_key": "k-main-1", "base_url": url,
            "retry": {"max_attempts": 8, "base_delay": 0.5, "max_delay": 4},
            "circuit": {"failure_threshold": 3, "cooldown": 30}}})
        run = await run_agent(path)
    assert run.outcome.exit_code == 0, run.err
    assert run.out.strip() == "made it"
    assert server.request_count == 6  # five faults and the answer: refusals send nothing
    assert [(e["kind"], e["attempt"]) for e in run.errors(1)] == [
        ("rate_limited", 1), ("server", 2), ("server", 3), ("stream_interrupted", 4),
        ("overloaded", 6)]
    waits = [e for e in run.events("warning") if e.get("code") in ("circuit_open", "circuit_wait")]
    assert [w["attempt"] for w in waits] == [5, 7]
    for w in waits:  # the wait is named, with how long, and lasts until the probe
        assert w["message"].startswith("main waits: circuit open")
        assert "waiting" in w["message"] and "next probe" in w["message"]
        assert 26 <= w["delay"] <= 30
    assert [r["attempt"] for r in run.events("request")] == [1, 2, 3, 4, 6, 8]
    [assistant] = run.events("assistant")
    assert assistant["attempts"] == 8
    assert run.breakers["main"].state(trio.current_time()) is BreakerState.CLOSED


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_open_circuit_hands_the_turn_to_the_fallback_at_once(
        protocol: str, tmp_path: Path, run_agent, autojump_clock: Any) -> None:
    """The counterpart: with a fallback configured the same open circuit does not wait; the
    refused attempt ends the main provider's turn and the fallback answers long before the
    cool-down would have passed."""
    arrivals: list[float] = []
    async with open_fake_server([faults.server_error()] * 3) as s1, \
            open_fake_server([timed(FINAL, arrivals)]) as s2:
        path = write(tmp_path, {
            "main": {"kind": protocol, "model": "m", "api_key": "k-main-1",
                     "base_url": s1.base_url(protocol),
                     "retry": {"max_attempts": 8, "base_delay": 0.5, "max_delay": 4},
                     "circuit": {"failure_threshold": 3, "cooldown": 600}},
            "backup": {"kind": protocol, "model": "m", "api_key": "k-backup-1",
                       "base_url": s2.base_url(protocol)}}, fallbacks=["backup"])
        run = await run_agent(path)
    assert run.outcome.exit_code == 0, run.err
    assert run.out.strip() == "made it"
    assert s1.request_count == 3 and s2.request_count == 1
    assert arrivals[0] < 20  # three backoff delays of at most 4 s, no 600 s cool-down
    [skip] = [e for e in run.events("warning") if e.get("code") in ("circuit_open", "circuit_wait")]
    assert skip["attempt"] == 4 and skip["delay"] is None
    assert skip["message"].startswith("main skipped: circuit open")
    assert [e["provider"] for e in run.events("assistant")] == ["backup"]


async def test_a_429_storm_never_opens_the_breaker(tmp_path: Path, run_agent,
                                                   autojump_clock: Any) -> None:
    """Ten 429s in a row against a threshold of 2: each waits out its retry-after, none counts
    against the provider, the circuit stays closed and the session finishes."""
    arrivals: list[float] = []
    storm = [timed(faults.rate_limited(retry_after=3), arrivals) for _ in range(10)]
    async with open_fake_server([*storm, timed(FINAL, arrivals)]) as server:
        url = server.base_url("openai-chat")
        path = write(tmp_path, {"main": {
            "kind": "openai-chat", "model": "m", "api_key": "k-main-1", "base_url": url,
            "retry": {"max_attempts": 12, "base_delay": 0.5},
            "circuit": {"failure_threshold": 2, "cooldown": 60}}})
        run = await run_agent(path)
    assert run.outcome.exit_code == 0, run.err
    assert server.request_count == 11
    assert [e["kind"] for e in run.errors(1)] == ["rate_limited"] * 10
    assert not [e for e in run.events("warning") if e.get("code") in ("circuit_open", "circuit_wait")]
    assert all(b - a >= 3 for a, b in itertools.pairwise(arrivals))
    breaker = run.breakers["main"]
    assert breaker.state(trio.current_time()) is BreakerState.CLOSED
    assert breaker.consecutive_failures == 0


async def test_a_429_retry_after_holds_every_session_of_the_provider(
        tmp_path: Path, run_agent, autojump_clock: Any) -> None:
    """Session A gets a 429 with retry-after 20 s; session B, on the same engine and provider,
    starts 5 s later: the provider's rate limiter holds B's request until the 20 s have passed
    (no rate_limit is configured: the limiter adapts to the provider's answers alone)."""
    arrivals: list[tuple[str, float]] = []

    def note(entry: Any) -> Any:
        def answer(req: RecordedRequest) -> Any:
            arrivals.append((req.raw.decode(), trio.current_time()))
            return entry
        return answer

    async with open_fake_server([note(faults.rate_limited(retry_after=20)), note(FINAL),
                                 note(FINAL)]) as server:
        path = write(tmp_path, {"main": {
            "kind": "openai-chat", "model": "m", "api_key": "k-shared-1",
            "base_url": server.base_url("openai-chat")}})
        cfg = load_config(path, environ={"TEST_TRACE_KEY": "k"})
        runs: dict[str, Any] = {}
        async with Engine.open(cfg, environ={"TEST_TRACE_KEY": "k"}) as engine:

            async def session(name: str, after: float) -> None:
                await trio.sleep(after)
                s = await engine.start(f"task-{name}-marker")
                runs[name] = await s.result()

            async with trio.open_nursery() as nursery:
                nursery.start_soon(session, "a", 0.0)
                nursery.start_soon(session, "b", 5.0)
    runs = {k: type("Run", (), {"outcome": v}) for k, v in runs.items()}
    assert runs["a"].outcome.exit_code == 0 and runs["b"].outcome.exit_code == 0
    a_sent = [t for body, t in arrivals if "task-a-marker" in body]
    [b_sent] = [t for body, t in arrivals if "task-b-marker" in body]
    assert len(a_sent) == 2 and a_sent[0] < 1  # the 429, then its retry
    assert b_sent >= 20 - 1e-6 and a_sent[1] >= 20 - 1e-6


TRANSIENT = sorted(RETRYABLE)


@settings(max_examples=40, deadline=None)
@given(kinds=st.lists(st.sampled_from(TRANSIENT), max_size=5), threshold=st.integers(1, 4))
def test_transient_failures_within_the_budget_never_fail_a_single_provider_session(
        kinds: list[ErrorKind], threshold: int) -> None:
    """For any run of transient failures and any breaker threshold, a session with one
    provider and a retry budget covering the worst case (each failure followed by one
    refusal of the open circuit, then the answer: 2n+1 attempts) finishes with exit 0."""
    script: list[Any] = [ProviderError(k, f"transient {k.value}", provider="main")
                         for k in kinds]
    provider = ScriptedProvider("main", [*script, FINAL])

    async def session(folder: Path) -> Any:
        path = write(folder, {"main": {
            "kind": "scripted", "model": "m", "script": [{"text": "unused"}],
            "retry": {"max_attempts": 2 * len(kinds) + 1, "base_delay": 0.5, "max_delay": 2},
            "circuit": {"failure_threshold": threshold, "cooldown": 10},
            "timeout": {"total": 600}}})
        cfg = load_config(path, environ={"TEST_TRACE_KEY": "k"})
        outcome, _ = await run_session(cfg, task="go", environ={"TEST_TRACE_KEY": "k"},
                                       providers={"main": provider})
        return outcome

    with tempfile.TemporaryDirectory() as folder:
        outcome = trio.run(session, Path(folder), clock=MockClock(autojump_threshold=0))
    assert outcome.exit_code == 0, outcome.message
    assert len(provider.requests) == len(kinds) + 1


async def test_turns_waiting_on_one_circuit_all_go_once_the_probe_succeeds(
        autojump_clock: Any) -> None:
    """Two turns without a fallback wait on the same open circuit; one takes the probe (a
    5 s answer), the other looks again while it is out and goes as soon as the circuit
    closes, not a cool-down later, having used one refusal and one real attempt."""
    breaker = CircuitBreaker(1, 30.0)
    breaker.record_failure(trio.current_time())  # open from t=0 for 30 s
    slow = faults.stall(5, then=FINAL, after_events=None)
    done: dict[str, tuple[float, int]] = {}
    async with open_fake_server([slow, slow]) as server, httpx.AsyncClient() as client:
        spec = ProviderSpec(name="main", kind="openai-chat", model="m", api_key="k-1",
                            base_url=server.base_url("openai-chat"),
                            timeouts=Timeouts(5, 60, 120))
        provider = HTTPProvider(spec, client)
        opts = ActorOptions(breaker=breaker, policy=RetryPolicy(max_attempts=3))

        async def turn(name: str) -> None:
            send, recv = trio.open_memory_channel[Any](16)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(run_turn, provider,
                                   TurnRequest(Request(model="m", messages=[
                                       Message.user(name)]), send), opts, {})
                async with recv:
                    async for msg in recv:
                        if isinstance(msg, TurnDone):
                            done[name] = (trio.current_time(), msg.attempts)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(turn, "a")
            await trio.sleep(1)
            nursery.start_soon(turn, "b")
    assert server.request_count == 2
    times = sorted(t for t, _ in done.values())
    assert 35 <= times[0] <= 36  # the probe: sent at 30, answered 5 s later
    assert times[1] <= times[0] + 5 + 1 + 1e-6  # looked again within a poll; 5 s answer
    assert {n for _, n in done.values()} == {2}
