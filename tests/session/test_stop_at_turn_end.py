"""A session stopped at a turn boundary (a service draining) closes resumable and resumes
from there; a resumed keep_open session waits for input again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio

from runtime.config import load_config
from runtime.engine import Engine
from runtime.model import Response, TextPart, ToolCallPart, Usage
from runtime.session.records import ToolCallRecord
from runtime.testing import ScriptedProvider

BASE = {"provider": "main", "tools": {"builtin": ["list_dir"]},
        "providers": {"main": {"kind": "scripted", "model": "scripted",
                               "script": [{"text": "unused"}]}}}
ENV = {"TEST_TRACE_KEY": "unit-test-trace-key"}


def _tool() -> Response:
    return Response("r", "scripted", [ToolCallPart("c1", "list_dir", '{"path": "."}')],
                    "tool_calls", "tool_calls", Usage(10, 5))


def _text(text: str) -> Response:
    return Response("r", "scripted", [TextPart(text)], "stop", "stop", Usage(10, 5))


async def test_stop_after_the_turn_in_progress(write_config: Any) -> None:
    """Asked to stop while turn 1 runs, the session finishes that turn (its tool result and
    turn_end are written) and ends as terminated before turn 2; resumed, it goes on with
    turn 2 and finishes."""
    cfg = load_config(write_config(BASE), environ=ENV)
    provider = ScriptedProvider("main", [_tool(), _text("all done")])
    async with Engine.open(cfg, environ=ENV, providers={"main": provider}) as engine:
        session = await engine.start("look")
        async for ev in session.events():
            if isinstance(ev, ToolCallRecord):
                session.stop_at_turn_end()
        first = await session.result()
        assert first.status == "terminated" and first.turns == 1
        assert len(provider.requests) == 1
        types = [r.type for r in session_records(session.run_dir)]
        assert types[-3:] == ["tool_result", "turn_end", "session_end"]
        resumed = await engine.start(resume=session.run_id)
        second = await resumed.result()
    assert second.status == "finished" and second.answer == "all done"
    assert len(provider.requests) == 2


async def test_resumed_keep_open_session_waits_for_input(write_config: Any) -> None:
    """A keep_open session stopped while waiting for input resumes waiting for input (it
    does not end as finished), takes a message and answers it."""
    cfg = load_config(write_config(BASE), environ=ENV)
    provider = ScriptedProvider("main", [_text("first"), _text("second")])
    async with Engine.open(cfg, environ=ENV, providers={"main": provider}) as engine:
        session = await engine.start("hello", keep_open=True)
        with trio.fail_after(10):
            async for ev in session.events():
                if ev.type == "turn_end":
                    break
        session.stop_at_turn_end()
        assert (await session.result()).status == "terminated"
        resumed = await engine.start(resume=session.run_id, keep_open=True)
        with trio.fail_after(10):
            await resumed.send("again")  # a session that had ended would refuse it
            async for ev in resumed.events():
                if ev.type == "assistant" and getattr(ev, "text", "") == "second":
                    break
        assert resumed.status in ("running", "waiting_input")
        resumed.cancel()
        assert (await resumed.result()).status == "cancelled"
    assert len(provider.requests) == 2


def session_records(run_dir: Path) -> list[Any]:
    from runtime.session.handle import read_journal

    return [rec for rec, _ in read_journal(run_dir)]
