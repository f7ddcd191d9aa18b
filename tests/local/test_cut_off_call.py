"""Issue 10's acceptance against the real local model: with ``max_tokens: 60`` and tools, a
tool call cut off at the token limit (its arguments not valid JSON) is rejected, sent back as
``{}`` with a note, and the session goes on to finish (exit 0) instead of dying on it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import trio

from runtime.model import Message, TextPart, ToolCallPart, ToolResultPart
from scripts.local_model import MODEL_ALIAS, LocalModelServer

pytestmark = pytest.mark.local_model

LONG = "line of the report " * 20


def example() -> list[Message]:
    """A worked example whose call the base model copies: arguments far longer than 60
    tokens, so its own copy is cut off mid-string."""
    return [Message.user("Save the report."),
            Message("assistant", [ToolCallPart("call_ex", "write_file", json.dumps(
                {"path": "report.txt", "content": LONG}))]),
            Message("tool", [ToolResultPart("call_ex", "wrote 380 bytes to report.txt",
                                            name="write_file")]),
            Message("assistant", [TextPart("Saved.")])]


async def test_a_call_cut_at_the_token_limit_does_not_end_the_session(
        local_server: LocalModelServer, write_config: Any, run_agent: Any,
        tmp_path: Path) -> None:
    """The cut-off call is rejected and explained; the next request (with {} in place of the
    broken arguments) is accepted by llama-server; the session finishes."""
    path = write_config({
        "provider": "main",
        "providers": {"main": {"kind": "local", "model": MODEL_ALIAS,
                               "base_url": local_server.base_url("local"),
                               "params": {"temperature": 0, "seed": 1, "max_tokens": 60},
                               "timeout": {"connect": 5, "read": 60, "total": 120}}},
        "system": "You are an agent. When a tool is relevant, call it with <tool_call>.",
        "tools": {"builtin": ["write_file", "read_file"], "workspace": str(tmp_path / "ws")},
        "limits": {"max_turns": 4},
    })
    (tmp_path / "ws").mkdir()
    with trio.fail_after(120):
        run = await run_agent(path, task="Save the report again.", history=example())
    assert run.outcome.exit_code == 0, run.err
    assert not run.events("provider_error")
    [first, *_] = run.events("assistant")
    assert first["finish_reason"] == "length"
    [rejected] = run.events("tool_rejected")
    result = next(r for r in run.events("tool_result") if r["call_id"] == rejected["call_id"])
    assert "not valid JSON" in result["content"] and "replaced by {}" in result["content"]
    codes = [w["code"] for w in run.events("warning")]
    assert "arguments_replaced" in codes and "length_cutoff" in codes
    assert "ended at the output token limit" in run.err
    assert not (tmp_path / "ws" / "report.txt").exists()  # the broken call never ran
