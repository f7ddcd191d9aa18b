"""The conductor's own cost: per turn, per session, and late turns against early ones.

    python scripts/bench_turn.py [--turns 200] [--sessions 100] [--long 1000] [--runs 3]

Everything runs in this process on one engine, opened before anything is measured, with
the scripted provider (no HTTP) and a no-op tool, so what is measured is the conductor's
path: the provider runtime actor, the turn reader, records stamped, redacted, encoded and
journaled (the journal writes in worker threads), accounts, the tool supervisor. CPU time is
the whole process's (``time.process_time``: worker threads included).

* turn overhead: a session of ``--turns`` turns each calling the no-op tool, minus a
  session of one turn, divided by the difference; for a read-only tool (one journal flush
  per turn: before the request) and for a tool with effects (one more flush: its
  ``tool_start`` is on disk before it runs);
* session fixed cost: ``engine.start(task)`` -> ``result()`` of a one-turn session (run
  folder, session_start, the answer, session_end, state.json, summary.json), averaged over
  ``--sessions`` sessions;
* late turn vs early turn: one session of ``--long`` + 10 turns; the CPU between two
  consecutive requests is the cost of a turn; turns 6-15 against the last ten.

Goals (issue 11): turn < 0.5 ms CPU, session < 2 ms CPU, turn 1,000 within 1.2x of turn 10.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import trio
import yaml

from runtime.config import load_config
from runtime.engine import Engine
from runtime.model import Request, Response, TextPart, ToolCallPart, Usage
from runtime.providers.scripted import ScriptedProvider
from runtime.tools.registry import Tool

ENV = {"BENCH_TRACE_KEY": "bench-trace-key"}


def _config(root: Path) -> Any:
    path = root / "agent.yaml"
    path.write_text(yaml.safe_dump({
        "provider": "main",
        "providers": {"main": {"kind": "scripted", "model": "scripted",
                           "script": [{"text": "replaced by the bench"}]}},
        "limits": {"max_turns": 100_000},
        "logging": {"dir": str(root / "logging")},
        "tools": {"workspace": str(root / "workspace")},
        "reasoning": {"encrypt": True, "key_env": "BENCH_TRACE_KEY"},
    }))
    (root / "workspace").mkdir(exist_ok=True)
    return load_config(path, environ=ENV)


async def _noop() -> str:
    return "ok"


TOOLS = [
    Tool("noop", "Does nothing.", {"type": "object", "properties": {}}, _noop, read_only=True),
    Tool("touch", "Does nothing, but is not read-only.", {"type": "object", "properties": {}},
         _noop),
]


def _call(turn: int, tool: str) -> Response:
    return Response(f"r{turn}", "scripted",
                    [TextPart("Calling the tool now."), ToolCallPart(f"c{turn}", tool, "{}")],
                    "tool_calls", "tool_calls", Usage(100 + turn, 12))


def _answer(turn: int) -> Response:
    return Response(f"r{turn}", "scripted", [TextPart("Done: the answer is 42.")], "stop",
                    "stop", Usage(100 + turn, 8))


class Script:
    """``turns`` tool turns then an answer, answered forever (one script per session);
    ``marks`` gets the process CPU time at every request."""

    def __init__(self, turns: int, tool: str = "noop") -> None:
        self.turns, self.tool = turns, tool
        self.marks: list[float] = []

    def __call__(self, req: Request) -> Response:
        self.marks.append(time.process_time())
        n = len(self.marks)
        return _call(n, self.tool) if n <= self.turns else _answer(n)


class Scripts:
    """A scripted provider whose every request asks the current script."""

    def __init__(self) -> None:
        self.current: Script = Script(0)

    def provider(self, requests: int = 1_000_000) -> ScriptedProvider:
        def take(req: Request) -> Response:
            return self.current(req)

        return ScriptedProvider("main", [take] * requests, model="scripted")


async def _session(engine: Engine, scripts: Scripts, script: Script) -> float:
    scripts.current = script
    t = time.process_time()
    s = await engine.start("Do the thing.")
    result = await s.result()
    spent = time.process_time() - t
    if result.status != "finished":
        raise SystemExit(f"bench session ended {result.status}: {result.message}")
    return spent


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-turn-") as tmp:
        cfg = _config(Path(tmp))
        scripts = Scripts()
        async with Engine.open(cfg, providers={"main": scripts.provider()}, tools=TOOLS,
                               environ=ENV) as engine:
            for _ in range(3):  # warm-up: imports, caches, the worker thread pool
                await _session(engine, scripts, Script(3))
            for tool in ("noop", "touch"):
                one = statistics.median([await _session(engine, scripts, Script(0, tool))
                                         for _ in range(5)])
                many = await _session(engine, scripts, Script(args.turns, tool))
                out[f"turn_{tool}"] = (many - one) / args.turns
            costs = [await _session(engine, scripts, Script(0))
                     for _ in range(args.sessions)]
            out["session"] = statistics.mean(costs)
            long = Script(args.long + 10)
            await _session(engine, scripts, long)
            steps = [b - a for a, b in zip(long.marks, long.marks[1:], strict=False)]
            out["early"] = statistics.median(steps[5:15])
            out["late"] = statistics.median(steps[args.long - 10:args.long])
            out["late_turn"] = args.long
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--turns", type=int, default=200)
    ap.add_argument("--sessions", type=int, default=100)
    ap.add_argument("--long", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    runs = [trio.run(measure, args) for _ in range(args.runs)]

    def span(key: str, scale: float = 1e3, fmt: str = "{:.2f}") -> str:
        vals = [r[key] * scale for r in runs]
        return f"{fmt.format(min(vals))}-{fmt.format(max(vals))}"

    ratios = [r["late"] / r["early"] for r in runs]
    rows: list[tuple[str, str, str]] = [
        ("turn overhead, read-only no-op tool (ms CPU)", span("turn_noop"), "< 0.5"),
        ("turn overhead, no-op tool with effects (ms CPU)", span("turn_touch"), "-"),
        ("session fixed cost, start -> result (ms CPU)", span("session"), "< 2"),
        ("turn 10 (ms CPU)", span("early"), "-"),
        (f"turn {runs[0]['late_turn']} (ms CPU)", span("late"), "-"),
        (f"turn {runs[0]['late_turn']} / turn 10", f"{min(ratios):.2f}-{max(ratios):.2f}x",
         "<= 1.2x"),
    ]
    print(f"conductor cost, scripted provider, {args.runs} runs (min-max)")
    width = max(len(r[0]) for r in rows)
    print(f"{'figure':<{width}}  {'measured':>14}  {'goal':>8}")
    for name, got, goal in rows:
        print(f"{name:<{width}}  {got:>14}  {goal:>8}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
