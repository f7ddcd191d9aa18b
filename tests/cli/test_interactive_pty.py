"""Interactive mode driven through a real pseudo-terminal (pexpect), against the fake
provider server over loopback: turns, a turn cancelled with Ctrl-C, commands, an inline
approval, Ctrl-D; then the run folder is read back."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pexpect
import pytest

from runtime.model import Response, TextPart, ToolCallPart, Usage
from runtime.testing import FakeProviderServer, Script, faults
from runtime.testing.script import RecordedRequest
from tests.recordings import ROOT

TIMEOUT = 30


def text(t: str) -> Response:
    return Response("r", "m1", [TextPart(t)], "stop", "stop", Usage(20, 6))


def call(cid: str, name: str, args: dict[str, Any]) -> Response:
    return Response("r", "m1", [ToolCallPart(cid, name, json.dumps(args))], "tool_calls",
                    "tool_calls", Usage(30, 8))


@pytest.fixture
def served() -> Iterator[FakeProviderServer]:
    with FakeProviderServer.in_thread(Script()) as server:
        yield server


def config(tmp_path: Path, server: FakeProviderServer) -> Path:
    path = tmp_path / "agent.yaml"
    path.write_text(f"""\
provider: main
providers:
  main:
    kind: openai-chat
    model: m1
    models: [m1, m2]
    api_key: sk-test-pty-000000
    base_url: {server.base_url("openai-chat")}
    retry: {{max_attempts: 1}}
tools: {{builtin: [write_file], workspace: {tmp_path / "ws"}, approval: {{write_file: ask}}}}
logging: {{dir: {tmp_path / "logs"}}}
reasoning: {{key_env: TEST_TRACE_KEY}}
""")
    (tmp_path / "ws").mkdir()
    return path


def spawn(tmp_path: Path, *args: str) -> pexpect.spawn:
    env = {"PATH": "/usr/bin:/bin", "TERM": "xterm", "PROMPT_TOOLKIT_NO_CPR": "1",
           "TEST_TRACE_KEY": "k" * 16, "HOME": str(tmp_path)}
    child = pexpect.spawn(sys.executable, [str(ROOT / "main.py"), *args], env=env,
                          cwd=str(tmp_path), encoding="utf-8", timeout=TIMEOUT,
                          dimensions=(40, 120))
    child.logfile_read = open(tmp_path / "terminal.log", "a")
    return child


def stop(child: pexpect.spawn) -> None:
    child.close(force=True)
    child.logfile_read.close()


def records(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (run_dir / "transcript.jsonl").read_text().splitlines()]


def test_chat_turns_cancel_commands_approval_and_ctrl_d(tmp_path: Path,
                                                        served: FakeProviderServer) -> None:
    """Two answered turns, one cancelled with Ctrl-C while it streams, /cost, /model, an
    inline approval and Ctrl-D: exit 0, and the run folder holds all of it."""
    stalled = threading.Event()

    def slow(req: RecordedRequest) -> Any:
        stalled.set()
        return faults.stall(3600, then=text("never finished in time"), after_events=3)

    served.add(text("first answer"), slow,
               call("c1", "write_file", {"path": "note.txt", "content": "hello"}),
               text("wrote it with m2"))
    child = spawn(tmp_path, "--config", str(config(tmp_path, served)), "--run-id", "chat")
    try:
        child.expect("you>")
        child.sendline("hello")
        child.expect("first answer")
        child.expect("you>")
        child.sendline("take your time")
        child.expect("never fi")          # the stalled answer is streaming
        assert stalled.is_set()
        child.sendcontrol("c")
        child.expect("cancelling the turn")
        child.expect("you>")
        child.sendline("/cost")
        child.expect(r"cost: \$")
        child.expect("you>")
        child.sendline("/model m2")
        child.expect(r"\[model\] the next turns go to main \(m2\)")
        child.expect("you>")
        child.sendline("write a note")
        child.expect(r"allow write_file\?")
        child.sendline("y")
        child.expect("wrote it with m2")
        child.expect("you>")
        child.sendcontrol("d")
        child.expect(r"\[finished\]")
        child.expect(pexpect.EOF)
    finally:
        stop(child)
    assert child.exitstatus == 0, (tmp_path / "terminal.log").read_text()[-3000:]
    run_dir = tmp_path / "logs" / "chat"
    recs = records(run_dir)
    users = [r["text"] for r in recs if r["type"] == "user"]
    assert users == ["hello", "take your time", "write a note"]
    partial = [r for r in recs if r["type"] == "assistant" and r["status"] == "interrupted"]
    assert len(partial) == 1 and partial[0]["text"].startswith("never fi")
    assert [r["code"] for r in recs if r["type"] == "warning"].count("model_switch") == 1
    decisions = [r for r in recs if r["type"] == "approval"]
    assert len(decisions) == 1 and decisions[0]["allow"] is True
    assert (tmp_path / "ws" / "note.txt").read_text() == "hello"
    assert recs[-1]["type"] == "session_end" and recs[-1]["status"] == "finished"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["exit_code"] == 0 and summary["turns"] == 4
    models = [r.body["model"] for r in served.requests]
    assert models == ["m1", "m1", "m2", "m2"]
    # the cancelled turn left a valid conversation: the next request has both user messages
    roles = [m["role"] for m in served.requests[2].body["messages"]]
    assert roles == ["user", "assistant", "user", "user"]


def test_ctrl_c_at_the_prompt_ends_with_130_and_resume_continues(
        tmp_path: Path, served: FakeProviderServer) -> None:
    """Ctrl-C at the prompt ends the session (exit 130, folder closed); --resume last in a
    terminal continues the same chat."""
    served.add(text("one"), text("two"))
    path = config(tmp_path, served)
    child = spawn(tmp_path, "--config", str(path), "--run-id", "r")
    try:
        child.expect("you>")
        child.sendline("first")
        child.expect("one")
        child.expect("you>")
        child.sendcontrol("c")
        child.expect(pexpect.EOF)
    finally:
        stop(child)
    assert child.exitstatus == 130 or child.signalstatus == signal.SIGINT
    assert child.exitstatus == 130
    recs = records(tmp_path / "logs" / "r")
    assert recs[-1]["type"] == "session_end" and recs[-1]["status"] == "interrupted"
    child = spawn(tmp_path, "--config", str(path), "--resume", "last")
    try:
        child.expect(r"\(resumed\) you> first")
        child.expect("you>")
        child.sendline("second")
        child.expect("two")
        child.expect("you>")
        child.sendline("/exit")
        child.expect(pexpect.EOF)
    finally:
        stop(child)
    assert child.exitstatus == 0
    recs = records(tmp_path / "logs" / "r")
    assert [r["text"] for r in recs if r["type"] == "user"] == ["first", "second"]
    assert [m["role"] for m in served.requests[-1].body["messages"]] == [
        "user", "assistant", "user"]
    assert os.listdir(tmp_path / "logs") == ["r"]


def test_a_task_on_a_terminal_streams_under_a_status_line(tmp_path: Path) -> None:
    """With a task and a terminal the run is not interactive: the status line is drawn
    while it runs and gone at the end, leaving the answer, the tool line and the closing
    line whole."""
    from tests.cli.test_status import screen_of

    path = tmp_path / "agent.yaml"
    path.write_text(f"""\
provider: main
providers:
  main:
    kind: scripted
    script:
      - tool_calls: [{{name: list_dir, arguments: {{path: .}}}}]
      - text: "Here is the long answer that streams in many small pieces."
tools: {{builtin: [list_dir], workspace: {tmp_path}}}
logging: {{dir: {tmp_path / "logs"}}}
reasoning: {{key_env: TEST_TRACE_KEY}}
""")
    child = spawn(tmp_path, "--config", str(path), "--task", "look", "--run-id", "t")
    try:
        child.expect(pexpect.EOF)
    finally:
        stop(child)
    assert child.exitstatus == 0
    with open(tmp_path / "terminal.log", newline="") as f:   # keep lone carriage returns
        data = f.read()
    assert "turn 1 ·" in data and "waiting for the first token" in data
    rows = [r for r in screen_of(data, width=120) if r]
    assert "Here is the long answer that streams in many small pieces." in rows
    assert not any("· 00:0" in r for r in rows)          # the status line is gone
    closing = "".join(rows[rows.index(next(r for r in rows if r.startswith("[finished]"))):])
    assert closing.startswith("[finished] · 2 turns") and closing.endswith("logs/t")
