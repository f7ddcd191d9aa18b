"""Telemetry hooks: typed events with ids; failing or slow hooks never hurt a session."""

from __future__ import annotations

from typing import Any

import trio

from runtime.hooks import (
    CacheEvent,
    ErrorHookEvent,
    Hooks,
    RequestStart,
    ResponseEnd,
    RetryEvent,
    ToolCallEvent,
)
from runtime.model import Request, Response, TextPart, ToolCallPart, Usage
from runtime.session.records import (
    CacheRecord,
    ProviderErrorRecord,
    RequestRecord,
    ToolResultRecord,
    TurnEnd,
)
from runtime.testing import ScriptedProvider
from runtime.tools import make_tool

BASE = {"provider": "main", "task": "go",
        "providers": {"main": {"kind": "scripted", "script": [{"text": "x"}]}}}


async def echo(text: str) -> str:
    """Echo (async: a worker thread would let the autojump clock run ahead)."""
    return text


def provider(arrivals: list[float]) -> ScriptedProvider:
    def call(req: Request) -> Response:
        arrivals.append(trio.current_time())
        return Response("r", "m", [ToolCallPart("c1", "echo", '{"text": "a"}')], "tool_calls",
                        "tool_calls", Usage(3, 2))

    def final(req: Request) -> Response:
        arrivals.append(trio.current_time())
        return Response("r", "m", [TextPart("done")], "stop", "stop", Usage(4, 1))

    return ScriptedProvider("main", [call, final])


async def test_events_carry_ids_and_slow_hooks_do_not_stall(write_config, run_agent,
                                                           autojump_clock: Any) -> None:
    """A hook sleeping 1 s per event does not delay the session: both requests arrive at the
    same virtual instant; every event carries run id, turn and request id."""
    hooks = Hooks()
    seen: list[Any] = []

    @hooks.on("request_start")
    async def slow(ev: RequestStart) -> None:
        await trio.sleep(1)
        seen.append(ev)

    hooks.on("response_end", seen.append)
    hooks.on("tool_call", seen.append)
    arrivals: list[float] = []
    start = trio.current_time()
    run = await run_agent(write_config(BASE), providers={"main": provider(arrivals)},
                          extra_tools=[make_tool(echo)], hooks=hooks)
    assert run.outcome.exit_code == 0
    assert arrivals == [start, start]  # no virtual time passed between the two requests
    requests = [e for e in seen if isinstance(e, RequestStart)]
    ends = [e for e in seen if isinstance(e, ResponseEnd)]
    tools = [e for e in seen if isinstance(e, ToolCallEvent)]
    assert len(requests) == 2 and len(ends) == 2 and len(tools) == 1
    ids = {e["request_id"] for e in run.events("request")}
    assert {e.request_id for e in ends} == ids
    assert all(e.run_id == run.run_dir.name for e in seen)
    assert [e.turn for e in ends] == [1, 2]
    assert tools[0].request_id == ends[0].request_id and tools[0].ok
    assert ends[1].input_tokens == 4 and ends[1].ttft is not None


async def test_raising_hook_is_reported_once_and_disabled(write_config, run_agent) -> None:
    """A hook that raises is disabled after its first failure, with one warning; the
    session finishes and other hooks go on receiving events."""
    hooks = Hooks()
    calls: list[str] = []

    def broken(ev: Any) -> None:
        calls.append("broken")
        raise RuntimeError("boom")

    hooks.on("request_start", broken)
    hooks.on("request_start", lambda ev: calls.append("ok"))
    run = await run_agent(write_config(BASE), providers={"main": provider([])},
                          extra_tools=[make_tool(echo)], hooks=hooks)
    assert run.outcome.exit_code == 0
    assert calls == ["broken", "ok", "ok"]
    assert run.err.count("warning: hook") == 1 and "boom" in run.err
    warnings = [e["message"] for e in run.events("warning") if "hook" in e["message"]]
    assert len(warnings) == 1


def test_unknown_event_name_is_refused() -> None:
    """Registering for an event that does not exist is an error naming the known ones."""
    hooks = Hooks()
    try:
        hooks.on("first_tokn", print)
    except ValueError as exc:
        assert "first_token" in str(exc)
    else:
        raise AssertionError("expected ValueError")


ERROR = ProviderErrorRecord(run_id="r1", turn=2, provider="main", model="m", kind="server",
                            status=503, message="busy", attempt=1, request_id="req_1",
                            delay=0.5)
RECORDS = [RequestRecord(run_id="r1", turn=2, provider="main", model="m", request_id="req_1"),
           ERROR, CacheRecord(run_id="r1", turn=2, provider="main", outcome="hit", key="k"),
           ToolResultRecord(run_id="r1", turn=2, call_id="c1", name="echo", ok=True),
           TurnEnd(run_id="r1", turn=2)]


async def _emitted(names: list[str]) -> list[Any]:
    """The events the hooks registered for ``names`` get from :data:`RECORDS`."""
    hooks = Hooks()
    seen: list[Any] = []
    for name in names:
        hooks.on(name, seen.append)
    async with trio.open_nursery() as nursery:
        await nursery.start(hooks.run)
        for rec in RECORDS:
            hooks.record(rec)
        hooks.close()
    return seen


async def test_each_record_becomes_its_event_only_for_those_listening() -> None:
    """A request, a failed attempt that is retried, a cache outcome and a tool result become
    request_start, error and retry, cache and tool_call events, each only when a hook
    listens to it; a record that stands for no event gives none."""
    every = await _emitted(["request_start", "error", "retry", "cache", "tool_call"])
    assert [type(e) for e in every] == [RequestStart, ErrorHookEvent, RetryEvent, CacheEvent,
                                        ToolCallEvent]
    assert all((e.run_id, e.turn) == ("r1", 2) for e in every)
    error, retry = every[1], every[2]
    assert (error.kind, error.status, error.attempt) == ("server", 503, 1)
    assert (retry.attempt, retry.delay) == (2, 0.5)
    assert [type(e) for e in await _emitted(["retry"])] == [RetryEvent]
    assert [type(e) for e in await _emitted(["error"])] == [ErrorHookEvent]
    assert [type(e) for e in await _emitted(["cache", "tool_call"])] == [CacheEvent,
                                                                        ToolCallEvent]
