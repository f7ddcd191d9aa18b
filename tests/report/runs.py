"""Real run folders for the ``runs`` and ``report`` tests, made by real sessions: finished
(with tools, a long result, HTML-like text and a secret the journal redacts), failed
(provider errors over loopback, retried), interrupted, crashed (kill -9 of a real
process), compacted, and a batch folder."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import trio
import yaml

from runtime.config import load_config
from runtime.engine import Engine
from runtime.events import TextDelta
from runtime.model import Request, Response, TextPart, ToolCallPart, Usage
from runtime.session.records import ContextCompacted
from runtime.testing import ScriptedProvider, faults, open_fake_server
from runtime.tools import make_tool
from tests.recordings import ROOT

SECRET = "sk-canary-report-0123456789"
ENV = {"TEST_TRACE_KEY": "k" * 16}
LONG = "\n".join(f"line {i}: " + "x" * 60 for i in range(80))
HTMLISH = '<script>alert("boom")</script> & <img src=x onerror=alert(1)>'


def text(t: str, usage: Usage | None = None) -> Response:
    return Response("r", "m1", [TextPart(t)], "stop", "stop", usage or Usage(100, 20))


def calls(*items: tuple[str, str, dict[str, Any]]) -> Response:
    return Response("r", "m1", [ToolCallPart(c, n, json.dumps(a)) for c, n, a in items],
                    "tool_calls", "tool_calls", Usage(150, 30))


async def show(kind: str) -> str:
    """Returns a long text, an HTML-like text or the secret."""
    return {"long": LONG, "html": HTMLISH, "secret": f"the key is {SECRET}"}[kind]


def write_config(folder: Path, **extra: Any) -> Path:
    cfg: dict[str, Any] = {
        "provider": "main",
        "providers": {"main": {"kind": "scripted", "model": "m1", "api_key": SECRET,
                               "script": [{"text": "x"}]}},
        "pricing": {"m1": {"input": 2.0, "output": 8.0}},
        "tools": {"builtin": [], "workspace": str(folder / "ws")},
        "logging": {"dir": str(folder / "logging")},
        "reasoning": {"key_env": "TEST_TRACE_KEY"},
        **extra}
    (folder / "ws").mkdir(exist_ok=True)
    path = folder / f"agent-{len(list(folder.glob('agent-*.yaml')))}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


class Hanging:
    """Streams a few words of its answer, then never finishes."""

    protocol = "scripted"

    def __init__(self, name: str) -> None:
        self.name = name
        self.streaming = trio.Event()

    async def attempt(self, req: Request, send: Any = None, *, stream: bool = True) -> Response:
        if send is not None:
            await send.send([TextDelta("half an ans")])
        self.streaming.set()
        await trio.sleep_forever()
        raise AssertionError("unreachable")


async def finished(folder: Path) -> None:
    provider = ScriptedProvider("main", [
        calls(("c1", "show", {"kind": "long"}), ("c2", "show", {"kind": "html"})),
        calls(("c3", "show", {"kind": "secret"})),
        text("All done: <b>bold</b> & `code <x>`\nsecond line")])
    cfg = load_config(write_config(folder), environ=ENV)
    async with Engine.open(cfg, environ=ENV, providers={"main": provider},
                           tools=[make_tool(show)]) as engine:
        s = await engine.start("Show me things\nwith a second line", run_id="done")
        assert (await s.result()).status == "finished"


async def failed(folder: Path) -> None:
    async with open_fake_server([faults.server_error(500), faults.server_error(503)]) as srv:
        path = write_config(folder, providers={"main": {
            "kind": "openai-chat", "model": "m1", "api_key": SECRET,
            "base_url": srv.base_url("openai-chat"),
            "retry": {"max_attempts": 2, "base_delay": 0.01, "max_delay": 0.02}}})
        cfg = load_config(path, environ=ENV)
        async with Engine.open(cfg, environ=ENV) as engine:
            s = await engine.start("this will fail", run_id="failed")
            assert (await s.result()).status == "provider_failed"


async def interrupted(folder: Path) -> None:
    provider = Hanging("main")
    cfg = load_config(write_config(folder), environ=ENV)
    async with Engine.open(cfg, environ=ENV, providers={"main": provider}) as engine:
        s = await engine.start("never answered", run_id="interrupted")
        await provider.streaming.wait()
        s.cancel("interrupted")
        assert (await s.result()).status == "interrupted"


async def crashed(folder: Path) -> dict[str, Any]:
    """A real process killed with SIGKILL in its second turn; ``seen`` holds what ``runs``
    said while it was still alive."""
    from runtime.report.folder import run_info

    hang = trio.Event()

    def stall(req: object) -> object:
        hang.set()
        return faults.stall(3600, then=text("never"), after_events=None)

    seen: dict[str, Any] = {}
    first = calls(("c1", "list_dir", {"path": "."}))
    async with open_fake_server([first, stall]) as srv:
        path = write_config(folder, providers={"main": {
            "kind": "openai-chat", "model": "m1", "api_key": SECRET,
            "base_url": srv.base_url("openai-chat")}},
            tools={"builtin": ["list_dir"], "workspace": str(folder / "ws")})
        proc = await trio.lowlevel.open_process(
            [sys.executable, str(ROOT / "main.py"), "--config", str(path), "--task",
             "crash while listing", "--run-id", "crashed"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env={"PATH": "/usr/bin:/bin", **ENV})
        try:
            await hang.wait()
            seen["alive"] = run_info("crashed", folder / "logging" / "crashed")
        finally:
            proc.kill()
            await proc.wait()
    return seen


async def compacted(folder: Path) -> None:
    provider = ScriptedProvider("main", [calls(("c1", "show", {"kind": "long"})),
                                         text("compacted and done")])
    cfg = load_config(write_config(folder), environ=ENV)
    async with Engine.open(cfg, environ=ENV, providers={"main": provider},
                           tools=[make_tool(show)]) as engine:
        s = await engine.start("fill the window", run_id="compacted", keep_open=True)
        await s.wait_input()
        # what the context manager records when it elides a result before a request
        assert s._recorder is not None
        await s._recorder.emit(ContextCompacted(
            strategy="elide", tokens_before=5200, tokens_after=1800, elided=["c1"],
            reason="over the window"))
        s.close_input()
        assert (await s.result()).status == "finished"


async def batch(folder: Path) -> None:
    provider = ScriptedProvider("main", [text("task one done"),
                                         calls(("c1", "show", {"kind": "html"}))])
    cfg = load_config(write_config(folder), environ=ENV)
    base = folder / "logging" / "b1"
    async with Engine.open(cfg, environ=ENV, providers={"main": provider},
                           tools=[make_tool(show)]) as engine:
        one = await engine.start("first batch task", run_id="t1", folder=base)
        assert (await one.result()).status == "finished"
        two = await engine.start("second batch task", run_id="t2", folder=base, max_turns=1)
        assert (await two.result()).status == "limit"
    (base / "batch.json").write_text(json.dumps({"counts": {"finished": 1, "limit": 1}}))


async def make_runs(folder: Path) -> dict[str, Any]:
    """Every kind of run folder, oldest first; returns what was observed on the way."""
    with trio.fail_after(60):
        await finished(folder)
        await failed(folder)
        await interrupted(folder)
        seen = await crashed(folder)
        await compacted(folder)
        await batch(folder)
    return seen
