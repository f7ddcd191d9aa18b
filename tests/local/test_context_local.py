"""Context management against the real local model: llama-server started with a 2,048-token
window (its own process, stopped by PID) and a 20-turn tool session whose tool results
alone would overflow that window without compaction (the model's answers add more)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio

from runtime.config import load_config
from runtime.engine import Engine
from scripts.local_model import MODEL_ALIAS, LocalModelServer

from .servers import SYSTEM, example_history, running_server

pytestmark = pytest.mark.local_model

CTX = 2_048
TURNS = 20
NOTE = "".join(f"Line {i}: the quarterly report lists revenue, costs and the headcount of "
               f"team {i}.\n" for i in range(45))  # ~3,700 characters, ~1,000 tokens


@pytest.fixture
def small_server(tmp_path: Path) -> Iterator[LocalModelServer]:
    """A second llama-server with a 2,048-token context, stopped by its PID."""
    with running_server(tmp_path / "llama-small.log", ctx=CTX) as server:
        yield server


async def drive(cfg_path: Path, question: str) -> tuple[Any, Path]:
    """A keep_open session on the example history: the question, the model's tool call and
    answer, the question again, ... until the turn limit ends it."""
    env = {"TEST_TRACE_KEY": "local-context-test"}
    cfg = load_config(cfg_path, environ=env)
    async with Engine.open(cfg, environ=env) as engine:
        session = await engine.start(question, history=example_history(), keep_open=True)
        async for ev in session.events():
            if ev.type == "turn_end" and getattr(ev, "finish", "") != "tool_calls":
                await session.send(question)  # an answer: ask again
        result = await session.result()
    return result, session.run_dir


async def test_twenty_tool_turns_in_a_2048_token_window(small_server: LocalModelServer,
                                                        write_config: Any,
                                                        tmp_path: Path) -> None:
    """The window comes from the server's /props; every request stays within it (the
    server counted each prompt with its own tokenizer), compactions are recorded, and the
    session runs its 20 turns although its tool results alone exceed the window."""
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    (workspace / "notes.txt").write_text(NOTE)
    path = write_config({
        "provider": "local",
        "providers": {"local": {
            "kind": "local", "model": MODEL_ALIAS, "base_url": small_server.base_url("local"),
            "params": {"temperature": 0, "seed": 1, "max_tokens": 60,
                       "stop": ["</tool_call>"]},
            "timeout": {"connect": 5, "read": 60, "total": 120},
            "retry": {"max_attempts": 2, "base_delay": 0.1, "max_delay": 0.5}}},
        "system": SYSTEM,
        "tools": {"builtin": ["read_file"], "workspace": str(workspace), "timeout": 10},
        "context": {"keep_recent_turns": 1},
        "limits": {"max_turns": TURNS},
    })
    with trio.fail_after(900):
        result, run_dir = await drive(path, "Read notes.txt.")
    transcript = [json.loads(x) for x in (run_dir / "transcript.jsonl").read_text().splitlines()]

    def events(kind: str) -> list[dict[str, Any]]:
        return [e for e in transcript if e["type"] == kind]

    assert result.status == "limit" and result.turns == TURNS, result.message
    assert transcript[-1]["type"] == "session_end"
    # a tool session: the model calls read_file (this tiny base model does so for the
    # first few turns, then mostly writes text) and the arguments parse
    calls = events("tool_call")
    assert len(calls) >= 3 and all(json.loads(c["arguments"]) for c in calls)
    results = [r for r in events("tool_result") if r["ok"]]
    read = sum(len(r["content"]) for r in results)
    assert len(results) >= 3 and read / 4 > CTX  # the results alone overflow the window
    compactions = events("context_compacted")
    assert compactions and all(c["window"] == CTX for c in compactions)
    assert any(c["elided"] for c in compactions)
    assert not [w for w in events("warning") if w["code"] == "context_window"]
    # every answered request was within the window by the server's own count
    usage = [u for u in events("usage") if not u["estimated"]]
    assert len(usage) >= TURNS
    assert all(u["input_tokens"] + u["output_tokens"] <= CTX for u in usage)
    assert max(u["input_tokens"] for u in usage) > CTX // 2  # it did fill the window
    # a refusal, if the estimate was ever short, was followed by a request that fitted
    errors = events("provider_error")
    assert all(e["kind"] == "context_length" for e in errors), errors
    assert [e["type"] for e in transcript].count("assistant") == TURNS
