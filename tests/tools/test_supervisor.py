"""The tool supervisor: validation first, concurrent runs, call order, failures contained."""

from __future__ import annotations

import io
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
import trio

from runtime.model import ToolCallPart, ToolResultPart
from runtime.tools import Tool, ToolError, ToolRegistry, builtin_tools, run_tool_calls


def call(i: int | str, name: str, args: str = "{}") -> ToolCallPart:
    return ToolCallPart(f"call_{i}", name, args)


async def test_calls_run_concurrently(autojump_clock: trio.abc.Clock) -> None:
    """Two tools that each wait for the other's event finish: sequential runs would deadlock."""
    a_ready, b_ready = trio.Event(), trio.Event()
    reg = ToolRegistry()

    @reg.tool
    async def ping() -> str:
        a_ready.set()
        await b_ready.wait()
        return "ping done"

    @reg.tool
    async def pong() -> str:
        b_ready.set()
        await a_ready.wait()
        return "pong done"

    with trio.fail_after(5):
        out = await run_tool_calls([call(1, "ping"), call(2, "pong")], reg, timeout=60)
    assert [(o.ok, o.content) for o in out] == [(True, "ping done"), (True, "pong done")]


async def test_results_come_back_in_call_order(autojump_clock: trio.abc.Clock) -> None:
    """Calls finishing in reverse order are still returned in call order."""
    finished: list[int] = []
    reg = ToolRegistry()

    @reg.tool
    async def wait(n: int) -> str:
        await trio.sleep(10 - n)
        finished.append(n)
        return f"n={n}"

    calls = [call(n, "wait", f'{{"n": {n}}}') for n in range(4)]
    out = await run_tool_calls(calls, reg, timeout=60)
    assert finished == [3, 2, 1, 0]
    assert [o.call_id for o in out] == [c.id for c in calls]
    assert [o.content for o in out] == ["n=0", "n=1", "n=2", "n=3"]
    assert [o.arguments for o in out] == [{"n": n} for n in range(4)]
    assert [round(o.duration) for o in out] == [10, 9, 8, 7]


async def test_raising_tool_is_an_error_outcome_and_the_session_goes_on() -> None:
    """A tool that raises gives an error result naming the exception; others are unaffected."""
    reg = ToolRegistry()

    @reg.tool
    def boom(x: int) -> str:
        raise ZeroDivisionError(f"cannot divide {x} by zero")

    @reg.tool
    async def refuse() -> str:
        raise ToolError("nothing to do here")

    @reg.tool
    async def fine() -> dict[str, int]:
        return {"v": 1}

    calls = [call(1, "boom", '{"x": 7}'), call(2, "refuse"), call(3, "fine")]
    for _ in range(2):  # and again: nothing was broken by the failure
        out = await run_tool_calls(calls, reg, timeout=5)
        assert [o.ok for o in out] == [False, False, True]
        assert "ZeroDivisionError: cannot divide 7 by zero" in out[0].content
        assert out[1].content == "nothing to do here"
        assert out[2].content == '{"v":1}'
        assert not any(o.rejected for o in out)


async def test_hanging_tool_is_cut_at_its_timeout(autojump_clock: trio.abc.Clock) -> None:
    """A tool that never returns becomes 'timed out after N s' at N seconds of (virtual) time."""
    reg = ToolRegistry()

    @reg.tool
    async def hang() -> str:
        await trio.sleep_forever()
        return ""

    @reg.tool
    async def quick() -> str:
        return "quick"

    start = trio.current_time()
    out = await run_tool_calls([call(1, "hang"), call(2, "quick")], reg, timeout=30)
    assert trio.current_time() - start == pytest.approx(30)
    assert not out[0].ok and "timed out after 30 s" in out[0].content
    assert out[0].duration == pytest.approx(30)
    assert out[1].ok and out[1].content == "quick"
    assert out[0].to_part().is_error and not out[1].to_part().is_error


async def test_blocking_sync_tool_does_not_block_the_loop() -> None:
    """A sync tool blocked in its thread is abandoned at the timeout; async tools still run."""
    release = threading.Event()
    reg = ToolRegistry()

    @reg.tool
    def stuck() -> str:
        release.wait(10)
        return "late"

    @reg.tool
    async def quick() -> str:
        return "quick"

    try:
        with trio.fail_after(5):
            out = await run_tool_calls([call(1, "stuck"), call(2, "quick")], reg, timeout=0.2)
    finally:
        release.set()
    assert "timed out after 0.2 s" in out[0].content
    assert out[1].content == "quick"


async def test_rejected_calls_never_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unknown tools, malformed or invalid arguments and denied calls never reach fn."""
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n"))  # not a terminal: ask is denied
    ran: list[str] = []

    def make(name: str, approval: str = "auto") -> Tool:
        def fn(**kwargs: Any) -> str:
            ran.append(name)
            return "ran"
        schema = {"type": "object", "properties": {"path": {"type": "string"}},
                  "required": ["path"], "additionalProperties": False}
        return Tool(name, "", schema, fn, approval=approval)

    reg = ToolRegistry([make("read"), make("nuke", "deny"), make("shell", "ask")])
    calls = [call(1, "missing_tool"), call(2, "read", '{"path": '),
             call(3, "read", '{"path": 1, "x": 2}'), call(4, "nuke", '{"path": "a"}'),
             call(5, "shell", '{"path": "a"}'), call(6, "read", '{"path": "ok"}')]
    out = await run_tool_calls(calls, reg, timeout=5)
    assert ran == ["read"]  # only the last, valid and allowed call
    assert [o.rejected for o in out] == [True, True, True, True, True, False]
    assert "Available tools: nuke, read, shell" in out[0].content
    assert "not valid JSON" in out[1].errors[0] and out[1].arguments is None
    assert sorted(e.split(":")[0] for e in out[2].errors) == ["$.path", "$.x"]
    assert out[2].arguments == {"path": 1, "x": 2}
    assert "deny" in out[3].content
    assert "no terminal to ask on" in out[4].content
    parts = [o.to_part() for o in out]
    assert all(isinstance(p, ToolResultPart) for p in parts)
    assert [p.call_id for p in parts] == [f"call_{i}" for i in range(1, 7)]
    assert [p.is_error for p in parts] == [True] * 5 + [False]


async def test_config_approval_overrides_and_asker_decides() -> None:
    """tools.approval overrides a tool's default, and the injected asker is followed."""
    reg = ToolRegistry()
    ran: list[str] = []

    @reg.tool(approval="ask")
    def a() -> str:
        ran.append("a")
        return "a"

    @reg.tool
    def b() -> str:
        ran.append("b")
        return "b"

    asked: list[str] = []

    def asker(prompt: str) -> bool:
        asked.append(prompt)
        return False

    out = await run_tool_calls([call(1, "a"), call(2, "b")], reg, timeout=5,
                               approval={"a": "auto", "b": "ask"}, ask=asker)
    assert ran == ["a"]
    assert len(asked) == 1 and " b " in asked[0]
    assert out[1].rejected and "declined" in out[1].content


async def test_default_asker_denies_without_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """With no ask given and stdin not a terminal, ask calls are denied with the fix."""
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n"))
    reg = ToolRegistry()

    @reg.tool(approval="ask")
    def danger() -> str:
        raise AssertionError("must not run")

    (out,) = await run_tool_calls([call(1, "danger")], reg, timeout=5)
    assert out.rejected and out.errors == [
        "approval required but no terminal to ask on; set tools.approval.danger: auto to allow"]


async def test_rejection_text_for_the_model(tmp_path: Path) -> None:
    """A builtin call missing its argument tells the model exactly what was wrong."""
    reg = ToolRegistry(builtin_tools(tmp_path, ["read_file"]))
    (out,) = await run_tool_calls([call(1, "read_file")], reg, timeout=5)
    part = out.to_part()
    assert part.content == "Invalid arguments for read_file: $.path: 'path' is a required property"
    assert part.is_error and part.name == "read_file"


async def test_cancellation_propagates(autojump_clock: trio.abc.Clock) -> None:
    """Cancelling the supervisor from outside is not turned into an outcome."""
    reg = ToolRegistry()

    @reg.tool
    async def hang() -> str:
        await trio.sleep_forever()
        return ""

    result = None
    with trio.move_on_after(1) as scope:
        result = await run_tool_calls([call(1, "hang")], reg, timeout=100)
    assert scope.cancelled_caught and result is None


async def test_keyboard_interrupt_propagates() -> None:
    """KeyboardInterrupt from a tool is not swallowed into an error outcome."""
    reg = ToolRegistry()

    @reg.tool
    async def interrupt() -> str:
        raise KeyboardInterrupt

    with pytest.RaisesGroup(KeyboardInterrupt):
        await run_tool_calls([call(1, "interrupt")], reg, timeout=5)


async def test_outcomes_round_trip_through_json() -> None:
    """Outcomes encode with every field (for the transcript) and decode back unchanged."""
    import msgspec

    from runtime.tools import ToolOutcome

    reg = ToolRegistry()

    @reg.tool
    async def echo(text: str) -> str:
        return text

    out = await run_tool_calls([call(1, "echo", '{"text": "hi"}'), call(2, "nope")], reg,
                               timeout=5)
    for o in out:
        raw = msgspec.json.decode(msgspec.json.encode(o))
        assert {"call_id", "name", "ok", "content", "rejected", "errors", "duration",
                "arguments"} <= set(raw)
        assert msgspec.json.decode(msgspec.json.encode(o), type=ToolOutcome) == o


async def test_glob_approval_applies_to_server_tools() -> None:
    """tools.approval {"time__*": auto} lets the tools of MCP server "time" run."""
    reg = ToolRegistry()

    @reg.tool(name="time__now", approval="ask")
    async def now() -> str:
        return "12:00"

    (out,) = await run_tool_calls([call(1, "time__now")], reg, timeout=5,
                                  approval={"time__*": "auto"}, ask=lambda p: False)
    assert out.ok and out.content == "12:00"


async def test_every_output_is_capped_with_a_note(tmp_path: Path) -> None:
    """A Python tool's result, a built-in's, an exception message and a rejection that
    quotes the arguments are all capped at max_output_chars, saying how much was cut."""
    reg = ToolRegistry([*builtin_tools(tmp_path, ["read_file"])], max_output_chars=100)
    (tmp_path / "big.txt").write_text("y" * 5000)

    @reg.tool
    def long() -> str:
        return "x" * 5000

    @reg.tool
    def explode() -> str:
        raise ValueError("z" * 5000)

    @reg.tool
    def takes_int(n: int) -> str:
        return str(n)

    outs = await run_tool_calls([call(1, "long"), call(2, "explode"),
                                 call(3, "takes_int", '{"n": "' + "w" * 5000 + '"}'),
                                 call(4, "read_file", '{"path": "big.txt"}')], reg)
    for o in outs:
        assert len(o.content) < 100 + 300, o.name
        assert "characters cut" in o.content, o.name
        assert all(len(e) < 100 + 300 for e in o.errors)
    assert outs[0].content.startswith("x" * 50) and "4900 of 5000 characters cut" in \
        outs[0].content
    assert outs[1].content.startswith("explode failed: ValueError: zzz")
    assert outs[2].rejected


async def test_the_cap_is_the_registry_default_or_the_argument() -> None:
    """Without an explicit limit the registry's (tools.max_output_chars) applies."""
    reg = ToolRegistry(max_output_chars=50)

    @reg.tool
    def long() -> str:
        return "x" * 1000

    (default,) = await run_tool_calls([call(1, "long")], reg)
    (explicit,) = await run_tool_calls([call(1, "long")], reg, max_output_chars=500)
    assert "950 of 1000 characters cut" in default.content
    assert "500 of 1000 characters cut" in explicit.content


async def test_approval_prompt_shows_undecodable_arguments() -> None:
    """A call whose arguments hold a lone surrogate can still be shown to a person (as
    \\xNN) and approved, instead of failing the prompt."""
    reg = ToolRegistry()
    prompts: list[str] = []

    @reg.tool(approval="ask")
    def touch(name: str) -> str:
        return "touched"

    (out,) = await run_tool_calls([call(1, "touch", '{"name": "caf\\udce9"}')], reg,
                                  ask=lambda p: prompts.append(p) is None)
    assert out.ok and out.content == "touched"
    assert "caf\\\\xe9" in prompts[0]
