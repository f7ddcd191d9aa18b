"""Helpers of the session-level context tests: a scripted long tool session against the
fake provider with a small window, its config, and reading its run folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from runtime.context.summary import SUMMARY_SYSTEM
from runtime.model import Response, TextPart, ToolCallPart
from runtime.testing import RecordedRequest
from runtime.tools import make_tool

RESULT_CHARS = 8_192
SUMMARY_TEXT = "The agent read chunks 1 to N of the big file; each was 8 KB of numbered lines."
FINAL = "All chunks read."
# (protocol of the fake server, provider kind, context dialect)
CASES = [("openai-chat", "openai-chat", "vendor"),
         ("openai-responses", "openai-responses", "vendor"),
         ("anthropic", "anthropic", "vendor"),
         ("openai-chat", "local", "llama.cpp")]


async def read_chunk(n: int) -> str:
    """Read chunk n of the big file (8 KB)."""
    line = f"chunk {n:03d} line "
    out = []
    i = 0
    while sum(map(len, out)) < RESULT_CHARS:
        out.append(f"{line}{i:05d}: {'x' * 40}\n")
        i += 1
    return "".join(out)[:RESULT_CHARS]


TOOLS = [make_tool(read_chunk)]


def is_summary(req: RecordedRequest) -> bool:
    """The summary request: the summary instructions as its system prompt, no tools."""
    canonical = req.canonical
    return canonical.system == SUMMARY_SYSTEM and not canonical.tools


class Agent:
    """The fake model: reads chunk 1, 2, ... one per turn, answers after ``turns`` turns;
    answers a summary request with ``SUMMARY_TEXT``. One instance per session."""

    def __init__(self, turns: int) -> None:
        self.turns = turns
        self.turn = 0
        self.summaries = 0

    def __call__(self, req: RecordedRequest) -> Response:
        if is_summary(req):
            self.summaries += 1
            return Response("sum", "fake-model", [TextPart(SUMMARY_TEXT)], "stop", "stop")
        self.turn += 1
        if self.turn >= self.turns:
            return Response(f"r{self.turn}", "fake-model", [TextPart(FINAL)], "stop", "stop")
        return Response(f"r{self.turn}", "fake-model", [
            TextPart(f"Reading chunk {self.turn}."),
            ToolCallPart(f"call_{self.turn}", "read_chunk", json.dumps({"n": self.turn}))],
            "tool_calls", "tool_calls")

    def script(self, extra: int = 200) -> list[Any]:
        """Entries enough for every request of the session."""
        return [self] * (self.turns + extra)


def config(server: Any, kind: str, protocol: str, tmp_path: Path, *,
           strategy: str = "elide", window: int | None = 4_000, keep: int = 1,
           reserve: int = 800, max_turns: int = 60, **extra: Any) -> dict[str, Any]:
    """An agent.yaml for a session against ``server``."""
    entry: dict[str, Any] = {"kind": kind, "model": "fake-model",
                             "base_url": server.base_url(protocol),
                             "retry": {"max_attempts": 2, "base_delay": 0.01, "max_delay": 0.05}}
    if kind != "local":
        entry["api_key"] = "sk-test-context-1234"
    if window is not None:
        entry["context_window"] = window
    cfg: dict[str, Any] = {
        "provider": "main", "providers": {"main": entry},
        "system": "You read every chunk of the big file, one per turn.",
        "task": "Read the big file chunk by chunk.",
        "context": {"strategy": strategy, "reserve_output": reserve, "keep_recent_turns": keep},
        "limits": {"max_turns": max_turns},
        "pricing": {"fake-model": {"input": 1.0, "output": 2.0}},
        "logging": {"dir": str(tmp_path / "logging")},
        "tools": {"workspace": str(tmp_path / "workspace")},
    }
    cfg.update(extra)
    return cfg


def records(run_dir: Path, type_: str | None = None) -> list[dict[str, Any]]:
    lines = [json.loads(x) for x in (run_dir / "transcript.jsonl").read_text().splitlines()]
    return [r for r in lines if type_ is None or r["type"] == type_]
