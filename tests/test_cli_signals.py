"""The command line as a user meets it: SIGTERM, a server that will not start, JSON logs
on every stderr line, the unpriced-model warning, the closing line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import trio

from runtime.model import Response, TextPart, ToolCallPart, Usage
from runtime.testing import faults, open_fake_server
from runtime.tools.shell import group_alive
from tests.recordings import ROOT

ENV = {"PATH": "/usr/bin:/bin", "TEST_TRACE_KEY": "k" * 16}


def config(tmp_path: Path, base_url: str, *, model: str = "gpt-4o", tools: str = "",
           extra: str = "") -> Path:
    path = tmp_path / "agent.yaml"
    path.write_text(
        f"provider: main\nproviders:\n  main:\n    kind: openai-chat\n    model: {model}\n"
        f"    api_key: k-123456\n    base_url: {base_url}\n"
        f"    retry: {{max_attempts: 3, base_delay: 0.01, max_delay: 0.02}}\n"
        f"task: go\ntools: {{workspace: {tmp_path / 'ws'}{tools}}}\n"
        f"logging: {{dir: {tmp_path / 'logs'}}}\nreasoning: {{key_env: TEST_TRACE_KEY}}\n"
        + extra)
    (tmp_path / "ws").mkdir(exist_ok=True)
    return path


def main_py(*args: str) -> list[str]:
    return [sys.executable, str(ROOT / "main.py"), *args]


def records(run_dir: Path) -> list[dict[str, object]]:
    return [json.loads(x) for x in (run_dir / "transcript.jsonl").read_text().splitlines()]


async def test_sigterm_during_a_shell_command_exits_143_and_leaves_nothing_running(
        tmp_path: Path) -> None:
    """SIGTERM while run_shell runs a command with background children: exit 143, the
    process group is gone, session_end status terminated, state and summary written, and
    the run resumes."""
    marker = tmp_path / "pgid"
    command = f"sleep 300 & echo $$ > {marker}; wait"
    call = Response("r1", "gpt-4o", [ToolCallPart("c1", "run_shell", json.dumps(
        {"command": command}))], "tool_calls", "tool_calls", Usage(10, 5))
    done = Response("r2", "gpt-4o", [TextPart("resumed")], "stop", "stop", Usage(20, 2))
    with trio.fail_after(60):
        async with open_fake_server([call, done]) as server:
            path = config(tmp_path, server.base_url("openai-chat"),
                          tools=", builtin: [run_shell], approval: {run_shell: auto}")
            proc = await trio.lowlevel.open_process(
                main_py("--config", str(path), "--run-id", "term"), env=ENV,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                while not marker.exists() or not marker.read_text().strip():  # noqa: ASYNC110 - another process writes it
                    await trio.sleep(0.05)  # polling the command's own marker file
                pgid = int(marker.read_text())
                proc.send_signal(signal.SIGTERM)
                with trio.fail_after(10):
                    code = await proc.wait()
            finally:
                if proc.returncode is None:
                    proc.kill()
            assert code == 143
            assert not group_alive(pgid)
            run_dir = tmp_path / "logs" / "term"
            lines = records(run_dir)
            assert lines[-1]["type"] == "session_end" and lines[-1]["status"] == "terminated"
            [result] = [x for x in lines if x["type"] == "tool_result"]
            assert result["interrupted"] and not result["ok"]
            assert json.loads((run_dir / "summary.json").read_text())["exit_code"] == 143
            assert (run_dir / "state.json").is_file()
            resumed = await trio.run_process(main_py("--config", str(path), "--resume", "term"),
                                             env=ENV, capture_stdout=True, capture_stderr=True,
                                             check=False)
    assert resumed.returncode == 0, resumed.stderr.decode()[-1500:]
    assert resumed.stdout.decode() == "resumed\n"


def test_an_mcp_server_that_does_not_start_leaves_no_run_folder(tmp_path: Path) -> None:
    """exit 2 naming tools.mcp.<name>; no run folder, empty or not, is left behind."""
    path = config(tmp_path, "http://127.0.0.1:9/v1",
                  tools=", mcp: {broken: {command: /bin/false}}")
    proc = subprocess.run(main_py("--config", str(path)), env=ENV, capture_output=True,
                          timeout=60)
    assert proc.returncode == 2, proc.stderr.decode()
    assert b"tools.mcp.broken" in proc.stderr and b"Traceback" not in proc.stderr
    assert not (tmp_path / "logs").exists() or not any((tmp_path / "logs").iterdir())


async def test_json_logs_make_every_stderr_line_json(tmp_path: Path) -> None:
    """--log-format json: the trace-key warning, progress, [provider-error] and the closing
    line are all JSON objects; nothing else reaches stderr."""
    env = {k: v for k, v in ENV.items() if k != "TEST_TRACE_KEY"}  # the key warning too
    answer = Response("r1", "gpt-4o", [TextPart("done")], "stop", "stop", Usage(10, 2))
    with trio.fail_after(60):
        async with open_fake_server([faults.server_error(), answer]) as server:
            path = config(tmp_path, server.base_url("openai-chat"))
            proc = await trio.run_process(
                main_py("--config", str(path), "--log-format", "json", "--run-id", "j"),
                env=env, capture_stdout=True, capture_stderr=True, check=False)
    assert proc.returncode == 0, proc.stderr.decode()
    lines = proc.stderr.decode().splitlines()
    parsed = [json.loads(x) for x in lines]  # every line is JSON
    events = [str(x["event"]) for x in parsed]
    assert any(e.startswith("warning:") and "TEST_TRACE_KEY is not set" in e for e in events)
    assert any(e.startswith("[provider-error] main server 500") for e in events)
    assert "request" in events
    assert parsed[-1]["status"] == "finished" and "run folder:" in events[-1]
    assert proc.stdout.decode() == "done\n"


async def test_unpriced_model_warns_on_the_console_and_the_run_ends_with_one_line(
        tmp_path: Path) -> None:
    """A model without a price: a warning on stderr (and in the transcript); the last stderr
    line gives status, turns, tokens, cost, duration and the run folder."""
    answer = Response("r1", "mystery-model", [TextPart("hi")], "stop", "stop", Usage(1200, 34))
    with trio.fail_after(60):
        async with open_fake_server([answer]) as server:
            path = config(tmp_path, server.base_url("openai-chat"), model="mystery-model")
            proc = await trio.run_process(main_py("--config", str(path), "--run-id", "u"),
                                          env=ENV, capture_stdout=True, capture_stderr=True,
                                          check=False)
    err = proc.stderr.decode()
    assert proc.returncode == 0, err
    assert "warning: no price known for model mystery-model" in err
    assert "pricing:" in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("[finished] · 1 turn · 1,234 tokens (in 1,200, out 34) · $0.0000")
    assert last.endswith(f"run folder: {tmp_path / 'logs' / 'u'}")
    assert os.path.isdir(tmp_path / "logs" / "u")


def test_a_task_on_stdin_that_is_not_utf8_is_kept_visible(tmp_path: Path) -> None:
    """``--task -`` with bytes that are not UTF-8: the run goes through, the task is in the
    transcript with the bad bytes shown as escapes, never a crash."""
    path = tmp_path / "agent.yaml"
    path.write_text("provider: main\nproviders:\n  main:\n    kind: scripted\n"
                    "    script: [{text: done}]\n"
                    f"tools: {{workspace: {tmp_path / 'ws'}}}\n"
                    f"logging: {{dir: {tmp_path / 'logs'}}}\nreasoning: {{encrypt: false}}\n")
    (tmp_path / "ws").mkdir()
    proc = subprocess.run(main_py("--config", str(path), "--task", "-", "--run-id", "s"),
                          input=b"fix \xff\xfe this file", env=ENV, capture_output=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr.decode()
    [start] = [r for r in records(tmp_path / "logs" / "s") if r["type"] == "session_start"]
    assert start["task"] == "fix \\xff\\xfe this file"
