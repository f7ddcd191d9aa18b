"""Circuit breaker and rate limiter inside whole sessions over loopback (virtual time)."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import trio
import yaml

from runtime.model import Response, TextPart, ToolCallPart, Usage
from runtime.testing import faults, open_fake_server
from runtime.testing.script import RecordedRequest
from runtime.tools import make_tool


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
    skipped = [e for e in run.events("warning") if e.get("circuit_open")]
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
