"""Resume always sends a valid conversation, wherever the first run stopped.

Two models of "stopped": a crash (kill -9) leaves a prefix of the journal, possibly with a
torn last line; an interruption (Ctrl-C, SIGTERM, ``Session.cancel``) can land at any await
point of the session. For each, the resumed session's first request is checked on the wire
of every protocol: every call answered by its result, no result without its call, arguments
that are JSON — and a tool that may have taken effect never runs twice."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import trio
import yaml

from runtime.config import load_config
from runtime.engine import Engine
from runtime.model import ReasoningPart, Request, Response, TextPart, ToolCallPart, Usage
from runtime.session.handle import Session
from runtime.testing import ScriptedProvider
from runtime.tools import make_tool
from tests.pairing import PROTOCOLS, check_pairing, check_roles, wire

ENV = {"TEST_TRACE_KEY": "resume-validity-key"}


def reasoning(protocol: str, n: int) -> ReasoningPart:
    if protocol == "anthropic":
        return ReasoningPart(f"think {n}", kind="thinking", signature=f"SIG{n}",
                             protocol=protocol)
    if protocol == "openai-responses":
        return ReasoningPart(kind="reasoning", id=f"rs_{n}", encrypted=f"ENC{n}",
                             protocol=protocol)
    return ReasoningPart(f"think {n}", kind="reasoning_content", protocol=protocol)


def script(protocol: str) -> list[Response]:
    """Three tool turns (one with two parallel calls, one a side effect), then an answer."""
    def calls(n: int, *spec: tuple[str, dict[str, Any]]) -> Response:
        parts: list[Any] = [reasoning(protocol, n), TextPart(f"step {n}")]
        parts += [ToolCallPart(f"c{n}_{i}", name, json.dumps(args), item_id=f"fc_{n}_{i}")
                  for i, (name, args) in enumerate(spec)]
        return Response(f"r{n}", "m", parts, "tool_calls", "tool_calls", Usage(10 * n, 5))

    return [
        calls(1, ("bump", {"n": 1})),
        calls(2, ("peek", {"n": 2}), ("bump", {"n": 3})),
        calls(3, ("bump", {"n": 4})),
        Response("r4", "m", [TextPart("all done")], "stop", "stop", Usage(40, 3)),
    ]


class Tools:
    """``bump`` has a side effect (it may not run twice); ``peek`` is read-only."""

    def __init__(self) -> None:
        self.bumps: Counter[int] = Counter()

    def make(self) -> list[Any]:
        async def bump(n: int) -> str:
            """Count a side effect."""
            self.bumps[n] += 1
            return f"bumped {n}"

        async def peek(n: int) -> str:
            """Look without changing anything."""
            return f"saw {n}"

        peek_tool = make_tool(peek)
        return [make_tool(bump), type(peek_tool)(  # read-only: may be run again on resume
            peek_tool.name, peek_tool.description, peek_tool.parameters, peek_tool.fn,
            peek_tool.approval, peek_tool.args_type, peek_tool.var_keyword, True)]


def config(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ws").mkdir(exist_ok=True)
    path = folder / "agent.yaml"
    path.write_text(yaml.safe_dump({
        "provider": "main", "task": "do the steps",
        "providers": {"main": {"kind": "scripted", "model": "m", "script": [{"text": "-"}]}},
        "tools": {"workspace": str(folder / "ws")},
        "logging": {"dir": str(folder / "logs")},
        "reasoning": {"key_env": "TEST_TRACE_KEY"}}))
    return path


async def first_run(folder: Path, protocol: str, tools: Tools,
                    stop_at: int | None = None) -> tuple[Path, bool]:
    """Run the session; with ``stop_at``, cancel it at that task step. Returns the run
    folder and whether the session ran to its end."""
    cfg = load_config(config(folder), environ=ENV)
    provider = ScriptedProvider("main", script(protocol))
    steps = 0
    session: Session | None = None

    class Interrupt(trio.abc.Instrument):
        def before_task_step(self, task: trio.lowlevel.Task) -> None:
            nonlocal steps
            if session is None or stop_at is None or session.done:
                return
            steps += 1
            if steps == stop_at:
                session.cancel("interrupted")

    interrupt = Interrupt()
    trio.lowlevel.add_instrument(interrupt)
    try:
        async with Engine.open(cfg, environ=ENV, providers={"main": provider},
                               tools=tools.make()) as engine:
            session = await engine.start(cfg.task)
            result = await session.result()
    finally:
        trio.lowlevel.remove_instrument(interrupt)
    return session.run_dir, result.status == "finished"


async def resume(folder: Path, run_dir: Path, tools: Tools) -> Request | None:
    """Resume the run; the first request it sends (None when it had nothing to ask)."""
    cfg = load_config(config(folder), environ=ENV)
    seen: list[Request] = []

    def answer(req: Request) -> Response:
        seen.append(req)
        return Response("rz", "m", [TextPart("resumed")], "stop", "stop", Usage(1, 1))

    async with Engine.open(cfg, environ=ENV, providers={"main": ScriptedProvider(
            "main", [answer] * 5)}, tools=tools.make()) as engine:
        session = await engine.start(resume=run_dir.name)
        result = await session.result()
    assert result.status == "finished", result.message
    return seen[0] if seen else None


def check(request: Request | None) -> None:
    if request is None:
        return
    check_roles(request.messages)
    for protocol in PROTOCOLS:
        check_pairing(protocol, wire(protocol, request.messages))


def journal_lines(run_dir: Path) -> list[bytes]:
    return (run_dir / "transcript.jsonl").read_bytes().splitlines(keepends=True)


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_crash_at_any_line_resumes_valid(protocol: str, tmp_path: Path) -> None:
    """For every prefix of a complete journal (a crash after any write), with and without a
    torn last line and with reasoning frames present or lost, the resumed session sends a
    valid conversation, finishes, and never runs a side effect twice."""
    tools = Tools()
    done_dir, finished = await first_run(tmp_path / "whole", protocol, tools)
    assert finished
    lines = journal_lines(done_dir)
    for cut in range(1, len(lines)):
        for torn, frames in ((False, True), (True, False)):
            case = tmp_path / f"cut{cut}-{torn}"
            case.mkdir()
            run_dir = case / "logs" / done_dir.name
            shutil.copytree(done_dir, run_dir)
            body = b"".join(lines[:cut]) + (lines[cut][: len(lines[cut]) // 2] if torn else b"")
            (run_dir / "transcript.jsonl").write_bytes(body)
            if not frames:
                (run_dir / "reasoning.enc").unlink(missing_ok=True)
            bumps_before = Counter(tools.bumps)
            started = {json.loads(x)["call_id"] for x in lines[:cut]
                       if b'"tool_start"' in x}
            check(await resume(case, run_dir, tools))
            # a side effect that had started (its tool_start on disk) did not run again
            for rec in map(json.loads, lines[:cut]):
                if rec["type"] == "tool_call" and rec["name"] == "bump" \
                        and rec["call_id"] in started:
                    n = json.loads(rec["arguments"])["n"]
                    assert tools.bumps[n] == bumps_before[n], (cut, n)


def stateless(protocol: str, seen: list[Request]) -> ScriptedProvider:
    """A provider answering by the position in the conversation (its number of assistant
    messages), so that one engine serves every first run and every resume."""
    answers = script(protocol)

    def answer(req: Request) -> Response:
        seen.append(req)
        return answers[min(sum(m.role == "assistant" for m in req.messages), len(answers) - 1)]

    return ScriptedProvider("main", [answer] * 10_000)


class Interrupt(trio.abc.Instrument):
    """Cancels ``session`` at its ``stop_at``-th task step."""

    def __init__(self) -> None:
        self.session: Session | None = None
        self.stop_at = 0
        self.steps = 0

    def arm(self, stop_at: int) -> None:
        self.session, self.stop_at, self.steps = None, stop_at, 0

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        if self.session is None or self.session.done:
            return
        self.steps += 1
        if self.steps == self.stop_at:
            self.session.cancel("interrupted")


# the two protocols whose reasoning is opaque (every resumed request is checked on all
# three wires anyway)
@pytest.mark.parametrize("protocol", ["anthropic", "openai-responses"])
async def test_an_interruption_at_any_await_point_resumes_valid(protocol: str,
                                                                tmp_path: Path) -> None:
    """Cancel the session at every task step of its run (the shape of Ctrl-C or SIGTERM
    landing anywhere), resume: the first request is valid for every protocol and every
    side effect ran at most once per call."""
    cfg = load_config(config(tmp_path), environ=ENV)
    seen: list[Request] = []
    interrupt = Interrupt()
    trio.lowlevel.add_instrument(interrupt)
    step = 1
    try:
        async with Engine.open(cfg, environ=ENV, providers={"main": stateless(protocol, seen)},
                               tools=(tools := Tools()).make()) as engine:
            while True:
                tools.bumps.clear()
                interrupt.arm(step)
                interrupt.session = session = await engine.start(cfg.task)
                first = await session.result()
                if first.status == "finished":
                    break
                assert first.status == "interrupted", first.message
                seen.clear()
                resumed = await engine.start(resume=session.run_id)
                assert (await resumed.result()).status == "finished"
                check(seen[0] if seen else None)
                assert all(count == 1 for count in tools.bumps.values()), (step, tools.bumps)
                step += 1
    finally:
        trio.lowlevel.remove_instrument(interrupt)
    assert step > 20  # the session really was interrupted at many points
