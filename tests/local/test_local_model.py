"""End-to-end against a real model: llama.cpp's llama-server serving Gemma 3 270M.

The model is a tiny base model whose text is near nonsense: tests assert structure (events,
calls whose arguments parse, a complete run folder), never wording. Determinism comes from
temperature 0, a seed, one example exchange in the history and ``stop: ["</tool_call>"]``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from runtime.events import Finish, TextDelta, UsageEvent
from runtime.model import Message, Params, Request, TextPart, ToolCallPart, ToolResultPart
from runtime.providers import HTTPProvider, ProviderSpec
from runtime.testing.local_model import MODEL_ALIAS, LocalModelServer, supports_tools

pytestmark = pytest.mark.local_model

ROOT = Path(__file__).resolve().parents[2]
SYSTEM = "You are an agent. When a tool is relevant, call it with <tool_call>."
COMPLETE = {"session_start", "request", "usage", "turn_end", "session_end"}


def example_history() -> list[Message]:
    """The worked example the base model copies: a call, its result, an answer."""
    return [
        Message.user("Read notes.txt."),
        Message("assistant", [ToolCallPart("call_example", "read_file", '{"path": "notes.txt"}')]),
        Message("tool", [ToolResultPart("call_example", "hello", name="read_file")]),
        Message("assistant", [TextPart("It says hello.")]),
    ]


def provider_entry(server: LocalModelServer, kind: str) -> dict[str, Any]:
    params: dict[str, Any] = {"temperature": 0, "seed": 1, "max_tokens": 60,
                              "stop": ["</tool_call>"]}
    if kind == "openai-responses":  # Responses has no stop/seed: llama-server reads them anyway
        params["extra"] = {"stop": ["</tool_call>"], "seed": 1}
    entry: dict[str, Any] = {"kind": kind, "model": MODEL_ALIAS, "base_url": server.base_url(kind)}
    if kind != "local":  # the vendor kinds require a key; llama-server ignores it
        entry["api_key"] = "sk-unused-by-llama-server"
    return {**entry, "params": params, "timeout": {"connect": 5, "read": 60, "total": 120},
            "retry": {"max_attempts": 2, "base_delay": 0.1, "max_delay": 0.5}}


def test_server_is_up_with_tool_support(local_server: LocalModelServer) -> None:
    """The fixture's server answers /health and /props shows a tool-capable template."""
    health = httpx.get(local_server.root_url + "/health", timeout=5)
    assert health.status_code == 200 and health.json()["status"] == "ok"
    assert supports_tools(local_server.props)
    assert local_server.props["total_slots"] == 1
    assert local_server.command.count("-t") == 1
    assert local_server.command[local_server.command.index("-t") + 1] == "1"


async def test_streamed_answer_on_chat_completions(local_server: LocalModelServer) -> None:
    """A streamed answer arrives as several text deltas over several reads; usage and the
    finish reason are decoded."""
    max_tokens = 16
    req = Request(MODEL_ALIAS, [Message.user("Say hello.")], system="You answer briefly.",
                  params=Params(temperature=0, seed=1, max_tokens=max_tokens))
    send, receive = trio.open_memory_channel[list[Any]](64)
    batches: list[list[Any]] = []

    async def consume() -> None:
        async with receive:
            async for batch in receive:
                batches.append(batch)

    with trio.fail_after(30):
        async with httpx.AsyncClient() as client, trio.open_nursery() as nursery:
            nursery.start_soon(consume)
            provider = HTTPProvider(ProviderSpec("local", "local", local_server.base_url(),
                                                 model=MODEL_ALIAS), client)
            async with send:
                resp = await provider.attempt(req, send, stream=True)
    events = [ev for batch in batches for ev in batch]
    deltas = [ev for ev in events if isinstance(ev, TextDelta)]
    assert len(deltas) >= 2 and len(batches) >= 2
    assert "".join(d.text for d in deltas) == resp.text != ""
    finishes = [ev for ev in events if isinstance(ev, Finish)]
    assert len(finishes) == 1 and finishes[0].reason in ("stop", "length")
    assert resp.finish_reason == finishes[0].reason and resp.stop == finishes[0].normalized
    usages = [ev for ev in events if isinstance(ev, UsageEvent)]
    assert len(usages) == 1 and resp.usage is not None
    assert 0 < resp.usage.output_tokens <= max_tokens
    assert resp.usage.input_tokens > 0
    assert 0 <= resp.usage.cache_read_tokens <= resp.usage.input_tokens
    if resp.finish_reason == "length":
        assert resp.usage.output_tokens == max_tokens


@pytest.mark.parametrize("kind", ["local", "anthropic", "openai-responses"])
async def test_tool_session(kind: str, local_server: LocalModelServer, write_config: Any,
                            run_agent: Any, tmp_path: Path) -> None:
    """A whole session on each route: the model calls the built-in read_file, the call is
    validated and run on the workspace, its result goes back, and the loop ends within its
    turn limit with a complete run folder."""
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    note = f"note for {kind}"
    (workspace / "notes.txt").write_text(note)
    max_turns = 2
    path = write_config({
        "provider": "main",
        "providers": {"main": provider_entry(local_server, kind)},
        "system": SYSTEM,
        "tools": {"builtin": ["read_file"], "workspace": str(workspace), "timeout": 10},
        "limits": {"max_turns": max_turns},
    })
    with trio.fail_after(90):
        run = await run_agent(path, task="Read notes.txt.", history=example_history())
    assert run.outcome.exit_code in (0, 4), run.err
    transcript = run.transcript
    assert COMPLETE <= {e["type"] for e in transcript}
    assert transcript[-1]["type"] == "session_end"
    assert not run.events("provider_error"), run.events("provider_error")
    summary = run.summary
    assert 1 <= summary["turns"] <= max_turns
    assert summary["status"] == transcript[-1]["status"]
    assert summary["exit_code"] == run.outcome.exit_code

    calls = run.events("tool_call")
    assert calls and calls[0]["turn"] == 1, [e["type"] for e in transcript]
    first = calls[0]
    assert first["name"] == "read_file" and first["call_id"] != "call_example"
    args = first["arguments"]
    args = json.loads(args) if isinstance(args, str) else args
    assert isinstance(args, dict) and isinstance(args.get("path"), str)
    results = {e["call_id"]: e for e in run.events("tool_result")}
    rejected = {e["call_id"] for e in run.events("tool_rejected")}
    assert all(c["call_id"] in results or c["call_id"] in rejected for c in calls)
    result = results[first["call_id"]]
    if args["path"] == "notes.txt":  # what the example teaches: the real file was read
        assert result["ok"] is True and result["content"] == note
    # the result went back: the next turn's request followed it
    requests = run.events("request")
    assert [r["turn"] for r in requests] == list(range(1, summary["turns"] + 1))
    assert summary["turns"] == 2
    if run.outcome.exit_code == 0:
        assert run.events("assistant")[-1]["text"] == run.outcome.answer


def test_main_py_with_config_local_yaml(local_server: LocalModelServer, tmp_path: Path) -> None:
    """``python main.py --config config/local.yaml`` exits 0 with a non-empty answer and
    leaves a complete run folder."""
    env = {**os.environ, "CONDUCTOR_LOCAL_URL": local_server.base_url("local"),
           "CONDUCTOR_TRACE_KEY": "local-model-test-key"}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "main.py"), "--config", str(ROOT / "config" / "local.yaml"),
         "--run-id", "local-run"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip()
    run_dir = tmp_path / "logging" / "local-run"
    transcript = [json.loads(line) for line in
                  (run_dir / "transcript.jsonl").read_text().splitlines()]
    assert COMPLETE <= {e["type"] for e in transcript}
    assert transcript[-1]["type"] == "session_end" and transcript[-1]["status"] == "finished"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["turns"] == 1
    assert (run_dir / "state.json").exists()
    answers = [e for e in transcript if e["type"] == "assistant"]
    assert answers and answers[-1]["text"].strip()
