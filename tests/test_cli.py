"""The command line: exit codes, bad configurations, Ctrl-C."""

from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from runtime.cli import main
from runtime.model import Response, TextPart, Usage
from runtime.testing import faults, open_fake_server
from tests.recordings import ROOT

GOOD = """\
provider: main
providers:
  main:
    kind: scripted
    script:
      - text: hi
task: greet
logging: {dir: LOGDIR}
"""

BAD = {
    "unknown_key": ("GOOD\nlimts: {max_turns: 3}\n", "limts"),
    "unknown_nested_key": (GOOD.replace("kind: scripted", "kind: scripted\n    retyr: {}"),
                           "providers.main.retyr"),
    "wrong_type": ("GOOD\nlimits: {max_turns: lots}\n", "limits.max_turns"),
    "negative_limit": ("GOOD\nlimits: {max_turns: -1}\n", "limits.max_turns"),
    "unknown_kind": (GOOD.replace("kind: scripted", "kind: gpt-magic"),
                     "providers.main.kind"),
    "missing_provider_entry": (GOOD.replace("provider: main", "provider: other"), "provider"),
    "missing_fallback": ("GOOD\nfallbacks: [nowhere]\n", "fallbacks"),
    "missing_secret": ("provider: main\nproviders:\n  main:\n    kind: anthropic\n"
                       "    model: claude-sonnet-4-5\n    api_key: ${NO_SUCH_VAR_XYZ}\ntask: t\n",
                       "providers.main.api_key"),
    "model_not_allowed": ("provider: main\nproviders:\n  main:\n    kind: openai-chat\n"
                          "    api_key: k\n    model: gpt-9\n    models: [gpt-4o]\ntask: t\n",
                          "providers.main.model"),
    "bad_cache_mode": ("GOOD\ncache: {mode: sometimes}\n", "cache.mode"),
    "bad_regex": (GOOD.replace("logging: {dir: LOGDIR}",
                               "logging: {dir: LOGDIR, redact: ['(unclosed']}"), "logging.redact"),
    "unknown_builtin_tool": ("GOOD\ntools: {builtin: [launch_rockets]}\n", "tools.builtin"),
    "bad_approval": ("GOOD\ntools: {builtin: [read_file], approval: {read_file: maybe}}\n",
                     "tools.approval.read_file"),
    "yaml_syntax": ("provider: [unclosed\n", "line"),
}


def write(tmp_path: Path, text: str) -> Path:
    text = text.replace("GOOD", GOOD.rstrip("\n")).replace("LOGDIR", str(tmp_path / "logs"))
    path = tmp_path / "agent.yaml"
    path.write_text(text)
    return path


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_config_exits_2_naming_file_and_key(case: str, tmp_path: Path) -> None:
    """Each kind of bad configuration exits 2 with one message naming the file and key path."""
    text, key = BAD[case]
    path = write(tmp_path, text)
    code, out, err = run_cli("--config", str(path))
    assert code == 2, err
    assert out == ""
    assert "agent.yaml" in err and key in err
    assert "Traceback" not in err


def test_missing_config_file_and_usage_errors_exit_2(tmp_path: Path) -> None:
    """A missing file, a missing task and a bad flag value are usage errors (exit 2)."""
    code, _, err = run_cli("--config", str(tmp_path / "absent.yaml"))
    assert code == 2 and "absent.yaml" in err and "not found" in err
    path = write(tmp_path, GOOD.replace("task: greet\n", ""))
    code, _, err = run_cli("--config", str(path))
    assert code == 2 and "task" in err
    code, _, _ = run_cli("--config", str(path), "--max-turns", "0", "--task", "x")
    assert code == 2
    code, _, _ = run_cli("--config", str(path), "--cache", "sometimes")
    assert code == 2


def test_good_config_runs_and_prints_the_answer(tmp_path: Path) -> None:
    """The scripted provider answers; stdout holds only the final answer."""
    code, out, err = run_cli("--config", str(write(tmp_path, GOOD)), "--run-id", "r1")
    assert code == 0, err
    assert out == "hi\n"
    assert (tmp_path / "logs" / "r1" / "summary.json").is_file()


def test_demo_config_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """config/demo.yaml (the README's first command) finishes with exit 0."""
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli("--config", str(ROOT / "config" / "demo.yaml"), "--run-id", "demo")
    assert code == 0, err
    assert out.strip()
    transcript = (tmp_path / "logging" / "demo" / "transcript.jsonl").read_text().splitlines()
    kinds = [json.loads(line)["type"] for line in transcript]
    assert kinds.count("tool_result") >= 3 and kinds[-1] == "session_end"


async def test_sigint_mid_stream_exits_130_with_session_end(tmp_path: Path) -> None:
    """Ctrl-C while a response is streaming: exit 130 within 2 s, session_end interrupted."""
    answer = Response("r", "m", [TextPart("partial answer " * 20)], "stop", "stop", Usage(1, 1))
    cfg = (f"provider: main\nproviders:\n  main:\n    kind: openai-chat\n    model: m\n"
           f"    api_key: k-123456\n    base_url: BASE\ntask: go\n"
           f"logging: {{dir: {tmp_path / 'logs'}}}\nreasoning: {{key_env: TEST_TRACE_KEY}}\n")
    arrived = trio.Event()

    def stall_after_start(req: object) -> object:
        arrived.set()
        return faults.stall(3600, then=answer, after_events=2)

    with trio.fail_after(60):
        async with open_fake_server([stall_after_start]) as server:
            path = tmp_path / "agent.yaml"
            path.write_text(cfg.replace("BASE", server.base_url("openai-chat")))
            proc = await trio.lowlevel.open_process(
                [sys.executable, str(ROOT / "main.py"), "--config", str(path), "--run-id", "int"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                env={"PATH": "/usr/bin:/bin", "TEST_TRACE_KEY": "k" * 16})
            try:
                await arrived.wait()  # the request arrived: the stream is about to open
                await trio.sleep(0.3)
                proc.send_signal(signal.SIGINT)
                with trio.fail_after(2):
                    code = await proc.wait()
            finally:
                if proc.returncode is None:
                    proc.kill()
    assert code == 130
    lines = (tmp_path / "logs" / "int" / "transcript.jsonl").read_text().splitlines()
    end = json.loads(lines[-1])
    assert end["type"] == "session_end" and end["status"] == "interrupted"
    summary = json.loads((tmp_path / "logs" / "int" / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["exit_code"] == 130


async def test_killed_session_resumes_where_it_stopped(tmp_path: Path) -> None:
    """SIGKILL in turn 3 (no chance to clean up): the run folder holds turns 1-2 and the
    state; `--resume` continues with the whole conversation and finishes the session."""
    from runtime.model import ToolCallPart

    def call(i: int) -> Response:
        return Response(f"r{i}", "m", [ToolCallPart(f"call_{i}", "list_dir", '{"path": "."}')],
                        "tool_calls", "tool_calls", Usage(10, 2))

    third = trio.Event()

    def hang(req: object) -> object:
        third.set()
        return faults.stall(3600, then=call(3), after_events=None)

    cfg = (f"provider: main\nproviders:\n  main:\n    kind: openai-chat\n    model: m\n"
           f"    api_key: k-123456\n    base_url: BASE\ntask: look around\n"
           f"tools: {{builtin: [list_dir], workspace: {tmp_path / 'ws'}}}\n"
           f"logging: {{dir: {tmp_path / 'logs'}}}\nreasoning: {{key_env: TEST_TRACE_KEY}}\n")
    env = {"PATH": "/usr/bin:/bin", "TEST_TRACE_KEY": "k" * 16}
    run_dir = tmp_path / "logs" / "crash"
    with trio.fail_after(60):
        async with open_fake_server([call(1), call(2), hang]) as server:
            path = tmp_path / "agent.yaml"
            path.write_text(cfg.replace("BASE", server.base_url("openai-chat")))
            proc = await trio.lowlevel.open_process(
                [sys.executable, str(ROOT / "main.py"), "--config", str(path), "--run-id",
                 "crash"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
            await third.wait()
            proc.kill()
            await proc.wait()
            lines = [json.loads(x) for x in (run_dir / "transcript.jsonl").read_text().splitlines()]
            assert [e["turn"] for e in lines if e["type"] == "turn_end"] == [1, 2]
            assert not any(e["type"] == "session_end" for e in lines)
            # the journal is the truth: no checkpoint is needed to resume
            server.add(Response("r4", "m", [TextPart("resumed and done")], "stop", "stop",
                                Usage(10, 3)))
            done = await trio.run_process(
                [sys.executable, str(ROOT / "main.py"), "--config", str(path), "--resume",
                 "crash"], capture_stdout=True, capture_stderr=True, env=env, check=False)
            resumed = server.requests[-1].body
    assert done.returncode == 0, done.stderr.decode()[-1500:]
    assert done.stdout.decode() == "resumed and done\n"
    roles = [m["role"] for m in resumed["messages"]]
    assert roles == ["user", "assistant", "tool", "assistant", "tool"]
    assert [m.get("tool_call_id") for m in resumed["messages"] if m["role"] == "tool"] == [
        "call_1", "call_2"]
    lines = [json.loads(x) for x in (run_dir / "transcript.jsonl").read_text().splitlines()]
    assert lines[-1]["type"] == "session_end" and lines[-1]["status"] == "finished"
    assert json.loads((run_dir / "summary.json").read_text())["turns"] == 3


def test_json_log_lines_carry_ids_and_no_secret(tmp_path: Path) -> None:
    """--log-format json: structlog lines on stderr are JSON with run_id, turn and
    request_id, redacted like everything else."""
    import contextlib

    import structlog

    text = GOOD.replace("kind: scripted", "kind: scripted\n    api_key: sk-json-canary-0001")
    text = text.replace("      - text: hi", "      - tool_calls: [{name: list_dir, arguments: {}}]"
                                            "\n      - text: hi sk-json-canary-0001")
    text += "tools: {builtin: [list_dir]}\n"
    path = write(tmp_path, text)
    try:
        code, out, err = run_cli("--config", str(path), "--log-format", "json", "--run-id", "j")
    finally:
        with contextlib.suppress(Exception):
            structlog.reset_defaults()
    assert code == 0, err
    lines = [json.loads(x) for x in err.splitlines() if x.startswith("{")]
    assert lines, err
    requests = [x for x in lines if x.get("event") == "request"]
    tools = [x for x in lines if x.get("event") == "tool"]
    assert requests and tools
    for x in requests + tools:
        assert x["run_id"] == "j" and isinstance(x["turn"], int) and x["request_id"].startswith("req_")
    assert "sk-json-canary-0001" not in err + out
