"""Crash safety: a 30-turn tool session killed with SIGKILL at many seeded instants and
resumed each time finishes; every turn appears once in the final journal; a tool that is
not idempotent ran exactly once per call (a call that may have been cut is reported to the
model as interrupted, never run again)."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import trio

from runtime.model import Response, TextPart, ToolCallPart, Usage
from runtime.testing import open_fake_server
from runtime.testing.script import RecordedRequest
from tests.recordings import ROOT

TURNS = 30
KILLS = 20
ENV = {"PATH": "/usr/bin:/bin", "TEST_TRACE_KEY": "soak-key-0123456789"}


def answer(ledger: Path) -> Any:
    """The provider: turn k (k tool results so far) asks for one side effect, then the last
    turn answers. Each call appends its id to the ledger: running it twice shows."""
    def reply(req: RecordedRequest) -> Response:
        done = sum(1 for m in req.body["messages"] if m.get("role") == "tool")
        if done >= TURNS:
            return Response("final", "gpt-4o", [TextPart("all steps done")], "stop", "stop",
                            Usage(100, 4))
        k = done + 1
        command = f"echo call_{k} >> {ledger}"
        return Response(f"r{k}", "gpt-4o", [TextPart(f"step {k}"), ToolCallPart(
            f"call_{k}", "run_shell", json.dumps({"command": command}))], "tool_calls",
            "tool_calls", Usage(10 * k, 5))
    return reply


def lines(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / "transcript.jsonl"
    if not path.exists():
        return []
    out = []
    for raw in path.read_bytes().splitlines():
        try:
            out.append(json.loads(raw))
        except ValueError:
            pass  # a torn last line, cut by the kill
    return out


async def test_sigkill_at_twenty_instants_then_resume(tmp_path: Path) -> None:
    """Kill, resume, kill again... at seeded instants until the session ends on its own."""
    rng = random.Random(20261130)
    ledger = tmp_path / "ledger.txt"
    ws = tmp_path / "ws"
    ws.mkdir()
    run_dir = tmp_path / "logs" / "soak"
    kills = 0
    with trio.fail_after(300):
        async with open_fake_server([answer(ledger)] * 10_000) as server:
            path = tmp_path / "agent.yaml"
            path.write_text(
                "provider: main\nproviders:\n  main:\n    kind: openai-chat\n"
                f"    model: gpt-4o\n    api_key: k-soak-1234\n"
                f"    base_url: {server.base_url('openai-chat')}\n"
                f"task: do the thirty steps\nlimits: {{max_turns: {TURNS + 5}}}\n"
                f"tools: {{builtin: [run_shell], approval: {{run_shell: auto}}, "
                f"workspace: {ws}}}\n"
                f"logging: {{dir: {tmp_path / 'logs'}}}\n"
                "reasoning: {key_env: TEST_TRACE_KEY}\n")
            first = True
            while True:
                args = ["--run-id", "soak"] if first else ["--resume", "soak"]
                first = False
                proc = await trio.lowlevel.open_process(
                    [sys.executable, str(ROOT / "main.py"), "--config", str(path), *args],
                    env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                target = len(lines(run_dir)) + rng.randrange(1, 5)
                extra = rng.uniform(0, 0.01)
                while proc.poll() is None and len(lines(run_dir)) < target:  # noqa: ASYNC110 - the child writes it
                    await trio.sleep(0.002)  # polling the journal written by the child
                if proc.poll() is None and kills < KILLS:
                    await trio.sleep(extra)
                    proc.kill()
                    kills += 1
                code = await proc.wait()
                if code == 0:
                    break
                assert code == -9, f"the run ended with {code}"
    assert kills == KILLS
    records = lines(run_dir)
    assert records[-1]["type"] == "session_end" and records[-1]["status"] == "finished"
    # every turn appears once: one complete answer per turn, one result per call
    answers = Counter(r["turn"] for r in records
                      if r["type"] == "assistant" and r.get("status", "complete") == "complete")
    assert sorted(answers) == list(range(1, TURNS + 2)) and set(answers.values()) == {1}
    results = Counter(r["call_id"] for r in records if r["type"] == "tool_result")
    assert set(results) == {f"call_{k}" for k in range(1, TURNS + 1)}
    assert set(results.values()) == {1}
    # the side effect ran once per call: exactly once where the result says it ran, at
    # most once where the call was cut and reported as interrupted
    ran = Counter(ledger.read_text().split())
    assert max(ran.values()) == 1
    for r in records:
        if r["type"] == "tool_result":
            if r["ok"]:
                assert ran[r["call_id"]] == 1, r["call_id"]
            else:
                assert r["interrupted"], r
    assert sum(not r["ok"] for r in records if r["type"] == "tool_result") < KILLS
