"""Chaos: a long tool-loop session over loopback with seeded random faults of every kind."""

from __future__ import annotations

import io
import json
import random
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import trio
import yaml

from runtime.cli.attach import attach
from runtime.cli.console import Console
from runtime.config import load_config
from runtime.engine import Engine
from runtime.model import Response, TextPart, ToolCallPart, Usage
from runtime.redact import Redactor
from runtime.testing import faults, open_fake_server
from runtime.tools import make_tool

TURNS = 200
FAULTS = {
    "rate_limited": lambda then: faults.rate_limited(retry_after=2),
    "server_error": lambda then: faults.server_error(),
    "overloaded": lambda then: faults.overloaded(),
    "html_error": lambda then: faults.html_error(),
    "cut_mid_stream": lambda then: faults.cut_mid_stream(then=then, after_events=3),
    "malformed_chunk": lambda then: faults.malformed_chunk(then=then, after_events=2),
    "stall": lambda then: faults.stall(3600, then=then, after_events=2),
    "streaming_refused": lambda then: faults.streaming_refused(),
}


def build_script(seed: int, turns: int = TURNS) -> tuple[list[Any], list[str], list[str]]:
    """The server's script: per turn 0-2 faults (>= 20% of requests), then the answer.
    Returns the entries, the fault names in order and the texts the provider produced."""
    rng = random.Random(seed)
    entries: list[Any] = []
    injected: list[str] = []
    texts: list[str] = []
    kinds = [k for k in FAULTS if k != "streaming_refused"]
    refused_at = rng.randrange(turns // 2, turns - 10)  # streaming refused once, late
    for turn in range(1, turns + 1):
        text = f"Turn {turn}: the answer has several words so that it streams in pieces. "
        texts.append(text)
        if turn < turns:
            resp = Response(f"r{turn}", "m", [TextPart(text), ToolCallPart(
                f"call_{turn}", "count", json.dumps({"n": turn}))], "tool_calls", "tool_calls",
                Usage(100, 20))
        else:
            resp = Response(f"r{turn}", "m", [TextPart(text)], "stop", "stop", Usage(100, 20))
        n = 1 if turn == refused_at else rng.choice([0, 0, 0, 1, 1, 2])
        for i in range(n):
            kind = "streaming_refused" if turn == refused_at and i == 0 else rng.choice(kinds)
            entries.append(FAULTS[kind](resp))
            injected.append(kind)
        entries.append(resp)
    return entries, injected, texts


@pytest.mark.parametrize(("protocol", "turns"), [("openai-chat", TURNS), ("anthropic", 60),
                                                 ("openai-responses", 60)])
async def test_long_session_rides_through_every_fault(protocol: str, turns: int, tmp_path: Path,
                                                     autojump_clock: Any) -> None:
    """200 turns (60 for the other protocols, to keep the suite short), >= 20% of requests
    faulty: exit 0, each turn once, no tool twice, the user saw exactly the provider's text
    once, and one error record per injected fault."""
    entries, injected, texts = build_script(seed=7 + len(protocol), turns=turns)
    requests = len(entries)
    assert len(injected) / requests >= 0.20
    assert set(injected) == set(FAULTS)
    runs: Counter[int] = Counter()

    async def count(n: int) -> str:
        """Count a call."""
        runs[n] += 1
        return f"counted {n}"

    with trio.fail_after(3600):  # virtual seconds
        async with open_fake_server(entries) as server:
            cfg_path = tmp_path / "agent.yaml"
            cfg_path.write_text(yaml.safe_dump({
                "provider": "main",
                "providers": {"main": {
                    "kind": protocol, "model": "m", "api_key": "chaos-key-123",
                    "base_url": server.base_url(protocol),
                    "timeout": {"connect": 5, "read": 20, "total": 120},
                    "retry": {"max_attempts": 4, "base_delay": 0.5, "max_delay": 4},
                }},
                "task": "count",
                "limits": {"max_turns": turns + 5},
                "tools": {"workspace": str(tmp_path / "ws")},
                "logging": {"dir": str(tmp_path / "logs")},
                "reasoning": {"key_env": "TEST_TRACE_KEY"},
            }))
            cfg = load_config(cfg_path, environ={"TEST_TRACE_KEY": "chaos"})
            out, err = io.StringIO(), io.StringIO()
            console = Console(out, err, Redactor(cfg.secrets()), stream_answer=True)
            async with Engine.open(cfg, environ={"TEST_TRACE_KEY": "chaos"},
                                   tools=[make_tool(count)]) as engine:
                session = await engine.start(cfg.task)
                outcome = await attach(session, console)
                run_dir = session.run_dir
    assert outcome.exit_code == 0, err.getvalue()[-2000:]
    assert server.request_count == requests
    # every turn completed once, no tool executed twice
    lines = [json.loads(x) for x in (run_dir / "transcript.jsonl").read_text().splitlines()]
    assistant_turns = [e["turn"] for e in lines if e["type"] == "assistant"]
    assert assistant_turns == list(range(1, turns + 1))
    assert sorted(runs) == list(range(1, turns)) and set(runs.values()) == {1}
    # the user saw the provider's text, each piece once
    assert out.getvalue() == "".join(t + "\n" for t in texts)
    # one error record per injected fault, in order
    records = []
    for turn in range(1, turns + 1):
        path = run_dir / "errors" / f"turn_{turn}.json"
        if path.exists():
            records += json.loads(path.read_text())
    assert len(records) == len(injected)
    expected_kind = {"rate_limited": "rate_limited", "server_error": "server",
                     "overloaded": "overloaded", "html_error": "server",
                     "cut_mid_stream": "stream_interrupted", "malformed_chunk": "malformed_response",
                     "stall": "timeout", "streaming_refused": "streaming_unsupported"}
    assert [r["kind"] for r in records] == [expected_kind[k] for k in injected]
    assert err.getvalue().count("[streaming-disabled]") == 1
    assert err.getvalue().count("[provider-error]") == len(injected)
    assert "chaos-key-123" not in (run_dir / "transcript.jsonl").read_text()
