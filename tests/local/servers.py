"""What the local-model tests share: a llama-server run for a test's span (skipped when the
tier is not installed, stopped by its PID and checked to have exited cleanly) and the
system prompt and worked example that the tiny base model copies."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from runtime.model import Message, TextPart, ToolCallPart, ToolResultPart
from scripts.local_model import (
    LocalModelServer,
    LocalModelUnavailable,
    find_binary,
    find_model,
    pid_alive,
    start_server,
)

SYSTEM = "You are an agent. When a tool is relevant, call it with <tool_call>."


@contextmanager
def running_server(log_path: Path, *, ctx: int = 4096) -> Iterator[LocalModelServer]:
    """A llama-server with a ``ctx``-token window; skips (with the reason) only when binary or
    model is missing; on leaving, stopped by its PID, gone, and exited with 0."""
    try:
        find_binary()
        find_model()
    except LocalModelUnavailable as exc:
        pytest.skip(f"local model tier not installed: {exc}")
    server = start_server(ctx=ctx, log_path=log_path)
    try:
        yield server
    finally:
        code = server.stop()
        assert not pid_alive(server.pid), f"llama-server {server.pid} still running"
        assert code == 0, f"llama-server exited with {code}:\n{server.log_tail()}"


def example_history() -> list[Message]:
    """The worked example the base model copies: a call, its result, an answer."""
    return [
        Message.user("Read notes.txt."),
        Message("assistant", [ToolCallPart("call_example", "read_file", '{"path": "notes.txt"}')]),
        Message("tool", [ToolResultPart("call_example", "hello", name="read_file")]),
        Message("assistant", [TextPart("It says hello.")]),
    ]
