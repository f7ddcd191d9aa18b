"""Batch mode end to end: many tasks through one engine against the fake provider over
loopback HTTP, batch.json, reruns, Ctrl-C, exit codes, bad task files, the displays."""

from __future__ import annotations

import fcntl
import io
import json
import os
import pty
import re
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import trio
import yaml

from runtime.cli import main
from runtime.cli.batch import read_tasks, run_batch
from runtime.cli.batch_display import LineDisplay
from runtime.cli.console import Console
from runtime.config import load_config
from runtime.model import Response, TextPart, ToolCallPart, Usage
from runtime.redact import Redactor
from runtime.testing import FakeProviderServer, Script, faults, open_fake_server
from runtime.testing.script import RecordedRequest
from runtime.tools import make_tool
from tests.recordings import ROOT

ENV = {"TEST_TRACE_KEY": "batch-test-trace-key"}


def task_and_turn(req: RecordedRequest) -> tuple[str, int]:
    """The task a chat request belongs to (its first user message) and its turn."""
    messages = req.body["messages"]
    first = next(m for m in messages if m["role"] == "user")
    text = first["content"] if isinstance(first["content"], str) else first["content"][0]["text"]
    return text, 1 + sum(m["role"] == "tool" for m in messages)


def answer(task: str, turn: int, tool: str = "note") -> Response:
    """Turn 1 asks for one tool call; turn 2 answers."""
    if turn == 1:
        args = {"note": {"task": task}, "list_dir": {"path": "."},
                "write_file": {"path": task.replace(" ", "-") + ".txt", "content": task}}[tool]
        return Response(f"r-{task}-1", "m", [TextPart(f"working on {task}"), ToolCallPart(
            "call_1", tool, json.dumps(args))], "tool_calls", "tool_calls", Usage(100, 20))
    return Response(f"r-{task}-2", "m", [TextPart(f"the answer to {task}")], "stop", "stop",
                    Usage(150, 30))


class Responder(Script):
    """Answers every request from the request itself, so that concurrent sessions each get
    their own conversation; ``fault(task, turn, attempt)`` may break an attempt first."""

    def __init__(self, fault: Any = None, tool: str = "note") -> None:
        super().__init__()
        self.fault = fault
        self.tool = tool
        self.attempts: Counter[tuple[str, int]] = Counter()

    def take(self, req: RecordedRequest) -> Any:
        task, turn = task_and_turn(req)
        self.attempts[task, turn] += 1
        resp = answer(task, turn, self.tool)
        broken = self.fault(task, turn, self.attempts[task, turn], resp) if self.fault else None
        return broken if broken is not None else resp


def chat_config(tmp_path: Path, base_url: str, **extra: Any) -> Path:
    cfg: dict[str, Any] = {
        "provider": "main",
        "providers": {"main": {
            "kind": "openai-chat", "model": "m", "api_key": "sk-batch-secret-123456",
            "base_url": base_url,
            "timeout": {"connect": 5, "read": 20, "total": 120},
            "retry": {"max_attempts": 5, "base_delay": 0.2, "max_delay": 2},
        }},
        "pricing": {"m": {"input": 1.0, "output": 4.0}},
        "tools": {"workspace": str(tmp_path / "ws")},
        "logging": {"dir": str(tmp_path / "logs")},
        "reasoning": {"key_env": "TEST_TRACE_KEY"},
    }
    for key, value in extra.items():
        cfg[key] = value
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def write_tasks(path: Path, lines: list[Any]) -> Path:
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return path


def folder_files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def journal(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (run_dir / "transcript.jsonl").read_text().splitlines()]


FAULTS = {
    1: lambda resp: faults.rate_limited(retry_after=1),
    3: lambda resp: faults.server_error(),
    5: lambda resp: faults.cut_mid_stream(then=resp, after_events=2),
    7: lambda resp: faults.html_error(),
}


def first_attempt_fault(task: str, turn: int, attempt: int, resp: Response) -> Any:
    """Every tenth task gets one kind of fault on the first attempt of its first turn."""
    n = int(task.rsplit(" ", 1)[-1])
    if turn == 1 and attempt == 1 and n % 10 in FAULTS:
        return FAULTS[n % 10](resp)
    return None


async def run_in_process(cfg_path: Path, tasks_path: Path, batch_id: str, concurrency: int,
                         **options: Any) -> tuple[Any, str]:
    cfg = load_config(cfg_path, environ=ENV)
    specs = read_tasks(str(tasks_path), cfg)
    err = io.StringIO()
    console = Console(io.StringIO(), err, Redactor(cfg.secrets()), fmt="json")
    result = await run_batch(cfg, specs, batch_id=batch_id, display=LineDisplay(console),
                             concurrency=concurrency, signals=False, environ=ENV, **options)
    return result, err.getvalue()


async def test_200_tasks_with_faults_complete_add_up_and_rerun_sends_nothing(
        tmp_path: Path, autojump_clock: Any) -> None:
    """200 tasks at concurrency 50 (a tool call each; 429s, 500s, cut streams, HTML pages):
    every run folder is complete, batch.json adds up and matches the folders, and a rerun
    with the same batch id sends no request and changes no file."""
    calls: Counter[str] = Counter()
    midway: list[dict[str, Any]] = []

    async def note(task: str) -> str:
        """Note a task; at the 100th call, read batch.json as it is mid-run."""
        calls[task] += 1
        if len(calls) == 100:
            midway.append(json.loads((tmp_path / "logs" / "b200" / "batch.json").read_text()))
        return f"noted {task}"

    lines: list[Any] = [f"task {n}" if n % 10 == 9 else {"id": f"t{n}", "task": f"task {n}"}
                        for n in range(200)]
    responder = Responder(first_attempt_fault)
    with trio.fail_after(600):  # virtual seconds
        async with open_fake_server(responder) as server:
            cfg_path = chat_config(tmp_path, server.base_url("openai-chat"))
            tasks = write_tasks(tmp_path / "tasks.jsonl", lines)
            result, err = await run_in_process(cfg_path, tasks, "b200", 50,
                                               tools=[make_tool(note)])
            sent = server.request_count
            served = dict(server.faults_served)
            batch_dir = tmp_path / "logs" / "b200"
            before = folder_files(batch_dir)
            again, err2 = await run_in_process(cfg_path, tasks, "b200", 50,
                                               tools=[make_tool(note)])
            assert server.request_count == sent  # the rerun sent nothing
    assert folder_files(batch_dir) == before    # and changed nothing
    assert result.exit_code == 0 and again.exit_code == 0, err[-3000:]
    assert served == {"rate_limited": 20, "server_error": 20, "cut_mid_stream": 20,
                      "html_error": 20}
    assert sent == 400 + 80
    # mid-run, batch.json was true: 50 running (the concurrency), the rest pending or done
    assert midway[0]["state"] == "running" and midway[0]["exit_code"] is None
    counts = midway[0]["counts"]
    assert sum(counts.values()) == 200 and counts["running"] == 50
    assert 0 < counts.get("finished", 0) < 100 and counts["pending"] > 0
    for row in midway[0]["tasks"]:
        if row["status"] == "finished":
            assert (Path(row["folder"]) / "summary.json").exists()
    assert sorted(calls) == sorted(f"task {n}" for n in range(200))
    assert set(calls.values()) == {1}           # each tool call ran once
    doc = json.loads((batch_dir / "batch.json").read_text())
    assert doc == result.document == again.document
    assert doc["state"] == "complete" and doc["exit_code"] == 0 and doc["total"] == 200
    assert doc["counts"] == {"finished": 200} and sum(doc["counts"].values()) == 200
    ids = [r["id"] for r in doc["tasks"]]
    assert ids == [str(n + 1) if n % 10 == 9 else f"t{n}" for n in range(200)]
    summed: Counter[str] = Counter()
    cost = 0.0
    for row in doc["tasks"]:
        run_dir = Path(row["folder"])
        assert run_dir == batch_dir / row["id"]
        records = journal(run_dir)
        assert records[0]["type"] == "session_start" and records[-1]["type"] == "session_end"
        summary = json.loads((run_dir / "summary.json").read_text())
        assert (row["status"], row["exit_code"], row["turns"]) == (
            summary["status"], summary["exit_code"], summary["turns"]) == ("finished", 0, 2)
        assert row["totals"] == summary["totals"]
        assert row["cost_usd"] == summary["totals"]["cost_usd"] > 0
        assert row["runs"] == 1 and row["message"] is None
        for key, value in summary["totals"].items():
            if key != "cost_usd":
                summed[key] += value
        cost += summary["totals"]["cost_usd"]
    assert {k: v for k, v in doc["totals"].items() if k != "cost_usd"} == dict(summed)
    assert doc["totals"]["total_tokens"] == 200 * 300
    assert doc["totals"]["cost_usd"] == pytest.approx(cost, rel=1e-9)
    lat = doc["latency_s"]
    assert lat["turn"]["p50"] is not None and lat["turn"]["p95"] >= lat["turn"]["p50"]
    assert lat["session"]["p95"] >= lat["session"]["p50"] > 0
    # the non-terminal output: one JSON line per finished task, then the rerun's note only
    task_lines = [json.loads(x) for x in err.splitlines() if '"task"' in x]
    task_lines = [x for x in task_lines if x.get("event") == "task"]
    assert sorted(x["id"] for x in task_lines) == sorted(ids)
    assert [x["done"] for x in task_lines] == list(range(1, 201))
    assert "200 settled, 0 to resume, 0 to start" in err2
    assert "sk-batch-secret" not in err + err2


def exit_code_responder(task: str, turn: int, attempt: int, resp: Response) -> Any:
    if task.startswith("auth"):
        return faults.custom(401, name="auth")
    return None


@pytest.mark.parametrize(("tasks", "code"), [
    ([{"id": "ok", "task": "ok 1"}, {"id": "auth", "task": "auth 2"},
      {"id": "lim", "task": "lim 3", "max_turns": 1}], 3),
    ([{"id": "ok", "task": "ok 1"}, {"id": "lim", "task": "lim 3", "max_turns": 1}], 4),
    (["ok 1", "ok 2", {"id": "ok", "task": "ok 3"}], 0),
    ([{"id": "ok", "task": "ok 1"}, {"id": "auth", "task": "auth 2"},
      {"id": "lim", "task": "lim 3", "max_turns": 1}, {"id": "broken", "task": "x 4"}], 1),
])
def test_exit_code_is_the_most_serious_among_the_tasks(tasks: list[Any], code: int,
                                                        tmp_path: Path) -> None:
    """All finished: 0; else an internal failure (1) before a provider failure (3) before a
    limit (4); the rows say which task ended how."""
    with FakeProviderServer.in_thread(Responder(exit_code_responder, "list_dir")) as server:
        cfg = chat_config(tmp_path, server.base_url("openai-chat"),
                          tools={"workspace": str(tmp_path / "ws"), "builtin": ["list_dir"]})
        path = write_tasks(tmp_path / "tasks.jsonl", tasks)
        (tmp_path / "logs" / "b").mkdir(parents=True)
        (tmp_path / "logs" / "b" / "broken").write_text("a file where the folder should be")
        out, err = io.StringIO(), io.StringIO()
        got = main(["--config", str(cfg), "--tasks", str(path), "--batch-id", "b"],
                   stdout=out, stderr=err)
    assert got == code, err.getvalue()
    doc = json.loads((tmp_path / "logs" / "b" / "batch.json").read_text())
    assert doc["exit_code"] == code
    status = {r["id"]: r["status"] for r in doc["tasks"]}
    assert status.get("ok") == "finished"
    assert status.get("auth", "provider_failed") == "provider_failed"
    assert status.get("lim", "limit") == "limit"
    if "broken" in status:
        assert status["broken"] == "error"
        row = next(r for r in doc["tasks"] if r["id"] == "broken")
        assert "could not start" in row["message"]
    assert out.getvalue().startswith(f"batch b: complete, exit code {code},")


def test_limit_and_finished_tasks_are_settled_on_rerun(tmp_path: Path) -> None:
    """A rerun leaves finished and limit tasks alone and resumes a provider failure, which
    then finishes: the batch exits 4 (the limit is still there) and only the failed task
    sent requests; the limited task resumed alone with more turns then counts as finished."""
    broken = {"on": True}

    def fault(task: str, turn: int, attempt: int, resp: Response) -> Any:
        return faults.custom(401, name="auth") if task.startswith("auth") and broken["on"] \
            else None

    tasks = [{"id": "ok", "task": "ok 1"}, {"id": "auth", "task": "auth 2"},
             {"id": "lim", "task": "lim 3", "max_turns": 1}]
    with FakeProviderServer.in_thread(Responder(fault, "list_dir")) as server:
        cfg = chat_config(tmp_path, server.base_url("openai-chat"),
                          tools={"workspace": str(tmp_path / "ws"), "builtin": ["list_dir"]})
        path = write_tasks(tmp_path / "tasks.jsonl", tasks)
        argv = ["--config", str(cfg), "--tasks", str(path), "--batch-id", "b"]
        assert main(argv, stdout=io.StringIO(), stderr=io.StringIO()) == 3
        first = server.request_count
        ok_before = (tmp_path / "logs" / "b" / "ok" / "transcript.jsonl").read_bytes()
        broken["on"] = False
        assert main(argv, stdout=io.StringIO(), stderr=io.StringIO()) == 4
        later = [task_and_turn(r)[0] for r in server.requests[first:]]
    assert later == ["auth 2", "auth 2"]   # its two turns; nothing for ok and lim
    assert (tmp_path / "logs" / "b" / "ok" / "transcript.jsonl").read_bytes() == ok_before
    doc = json.loads((tmp_path / "logs" / "b" / "batch.json").read_text())
    assert doc["counts"] == {"finished": 2, "limit": 1}
    auth = next(r for r in doc["tasks"] if r["id"] == "auth")
    assert auth["runs"] == 2 and auth["status"] == "finished"
    # a task that hit its limit gets more room when resumed alone; the batch then sees it
    with FakeProviderServer.in_thread(Responder(fault, "list_dir")) as server:
        cfg = chat_config(tmp_path, server.base_url("openai-chat"),
                          tools={"workspace": str(tmp_path / "ws"), "builtin": ["list_dir"]})
        out = io.StringIO()
        assert main(["--config", str(cfg), "--resume", "b/lim", "--max-turns", "5"],
                    stdout=out, stderr=io.StringIO()) == 0
        assert out.getvalue() == "the answer to lim 3\n"
        assert main(argv, stdout=io.StringIO(), stderr=io.StringIO()) == 0
        assert [task_and_turn(r) for r in server.requests] == [("lim 3", 2)]
    doc = json.loads((tmp_path / "logs" / "b" / "batch.json").read_text())
    assert doc["counts"] == {"finished": 3}


# ---- Ctrl-C and SIGTERM in a real process ---------------------------------------------

@pytest.mark.parametrize(("sig", "code", "status"), [
    (signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")])
async def test_signal_mid_batch_then_rerun_finishes_every_task_once(
        sig: int, code: int, status: str, tmp_path: Path) -> None:
    """A real `python main.py --tasks` gets the signal once some tasks are done and others
    are streaming: it exits 130 (143), the running tasks end interrupted (terminated) with
    closed folders, batch.json says so; a rerun finishes the rest, each turn once."""
    stalling = {"on": True}
    quick = [f"quick {n}" for n in range(4)]
    slow = [f"slow {n}" for n in range(4)]
    later = [f"later {n}" for n in range(4)]
    started: set[str] = set()
    all_stalled = trio.Event()

    def fault(task: str, turn: int, attempt: int, resp: Response) -> Any:
        if task.startswith("slow") and stalling["on"]:
            started.add(task)
            if len(started) == len(slow):
                all_stalled.set()
            return faults.stall(3600, then=resp, after_events=2)
        return None

    lines = [{"id": t.replace(" ", "-"), "task": t} for t in quick + slow + later]
    env = {"PATH": "/usr/bin:/bin", **ENV}
    with trio.fail_after(60):
        async with open_fake_server(Responder(fault, tool="write_file")) as server:
            cfg = chat_config(tmp_path, server.base_url("openai-chat"),
                              tools={"workspace": str(tmp_path / "ws"),
                                     "builtin": ["write_file"]})
            tasks = write_tasks(tmp_path / "tasks.jsonl", lines)
            argv = [sys.executable, str(ROOT / "main.py"), "--config", str(cfg), "--tasks",
                    str(tasks), "--concurrency", "4", "--batch-id", "cut"]
            batch_dir = tmp_path / "logs" / "cut"
            log = (tmp_path / "stderr.txt").open("wb")
            proc = await trio.lowlevel.open_process(argv, stdout=subprocess.DEVNULL,
                                                    stderr=log, env=env)
            try:
                # four workers: the slow tasks start as the quick ones end
                await all_stalled.wait()
                assert all((batch_dir / t.replace(" ", "-") / "summary.json").exists()
                           for t in quick)
                proc.send_signal(sig)
                with trio.fail_after(10):
                    got = await proc.wait()
            finally:
                if proc.returncode is None:
                    proc.kill()
                log.close()
            assert got == code, (tmp_path / "stderr.txt").read_text()[-3000:]
            doc = json.loads((batch_dir / "batch.json").read_text())
            assert doc["state"] == status and doc["exit_code"] == code
            assert doc["counts"] == {"finished": 4, status: 4, "pending": 4}
            for row in doc["tasks"]:
                if row["id"].startswith("slow"):
                    assert row["status"] == status
                    records = journal(batch_dir / row["id"])
                    assert records[-1]["type"] == "session_end"
                    assert records[-1]["status"] == status
                    assert (batch_dir / row["id"] / "summary.json").exists()
                elif row["id"].startswith("later"):
                    assert row["folder"] is None
                    assert not (batch_dir / row["id"]).exists()
            stalling["on"] = False
            sent = server.request_count
            rerun = await trio.run_process(argv, capture_stdout=True, capture_stderr=True,
                                           env=env, check=False)
            resent = [task_and_turn(r)[0] for r in server.requests[sent:]]
    assert rerun.returncode == 0, rerun.stderr.decode()[-2000:]
    assert Counter(resent) == Counter({t: 2 for t in slow + later})  # nothing quick again
    doc = json.loads((batch_dir / "batch.json").read_text())
    assert doc["state"] == "complete" and doc["counts"] == {"finished": 12}
    for row in doc["tasks"]:
        records = journal(batch_dir / row["id"])
        ends = [r for r in records if r["type"] == "session_end"]
        assert ends[-1] == records[-1] and ends[-1]["status"] == "finished"
        assert [r["status"] for r in ends].count("finished") == 1
        assert [r["turn"] for r in records if r["type"] == "turn_end"] == [1, 2]
        complete = [r["turn"] for r in records
                    if r["type"] == "assistant" and r["status"] == "complete"]
        assert complete == [1, 2]
        results = [r for r in records if r["type"] == "tool_result" and not r["interrupted"]]
        assert len(results) == 1 and results[0]["ok"]
        assert row["runs"] == (2 if row["id"].startswith("slow") else 1)
    assert rerun.stdout.decode().startswith("batch cut: complete, exit code 0, 12 tasks")
    # the progress count starts at the 4 settled tasks, not at every task that ever ended
    dones = [int(n) for n in re.findall(rb"\bdone=(\d+)", rerun.stderr)]
    assert sorted(dones) == list(range(5, 13)), rerun.stderr.decode()[-2000:]
    assert set(re.findall(rb"\btotal=(\d+)", rerun.stderr)) == {b"12"}


# ---- bad task files and usage ---------------------------------------------------------

SCRIPTED = """\
provider: main
providers:
  main: {kind: scripted, model: small, models: [small, large], script: [{text: hi}]}
  backup: {kind: scripted, script: [{text: hi}]}
logging: {dir: LOGDIR}
"""

BAD_TASKS: dict[str, tuple[bytes, int, str]] = {
    "bad_json": (b'{"id": "a", "task": "x"}\n{"id": "b", "task": }\n', 2, "not valid JSON"),
    "unknown_key": (b'{"id": "a", "task": "x", "modle": "small"}\n', 1, "did you mean 'model'"),
    "wrong_type": (b'{"id": "a", "task": "x", "max_turns": "ten"}\n', 1, "max_turns"),
    "zero_turns": (b'{"id": "a", "task": "x", "max_turns": 0}\n', 1, "at least 1"),
    "id_type": (b'{"id": ["a"], "task": "x"}\n', 1, "id"),
    "missing_task": (b'{"id": "a"}\n', 1, "missing key 'task'"),
    "number_line": (b'"fine"\n42\n', 2, "not a task"),
    "duplicate_id": (b'{"id": "a", "task": "x"}\n\n{"id": "a", "task": "y"}\n', 3,
                     "duplicate id 'a' (first on line 1)"),
    "duplicate_line_id": (b'"x"\n{"id": 1, "task": "y"}\n', 2, "duplicate id '1'"),
    "invalid_id": (b'{"id": "../up", "task": "x"}\n', 1, "cannot name a run folder"),
    "reserved_id": (b'{"id": "batch.json", "task": "x"}\n', 1, "batch folder"),
    "empty_task": (b'{"id": "a", "task": "   "}\n', 1, "the task is empty"),
    "empty_string_task": (b'"ok"\n""\n', 2, "the task is empty"),
    "unknown_provider": (b'{"id": "a", "task": "x", "provider": "bakup"}\n', 1,
                         "did you mean 'backup'"),
    "model_not_allowed": (b'{"id": "a", "task": "x", "model": "huge"}\n', 1, "allowlist"),
    "model_of_other_provider": (b'{"id": "a", "task": "x", "provider": "backup", "model": ""}\n',
                                1, "the model is empty"),
    "not_utf8": (b'"fine"\n"caf\xe9"\n', 2, "not UTF-8"),
}


@pytest.mark.parametrize("case", sorted(BAD_TASKS))
def test_bad_task_file_exits_2_naming_file_line_and_fix_and_creates_nothing(
        case: str, tmp_path: Path) -> None:
    """Each malformed tasks file exits 2 before anything runs, with one message naming the
    file, the line and the fix; no folder is created."""
    data, line, words = BAD_TASKS[case]
    cfg = tmp_path / "agent.yaml"
    cfg.write_text(SCRIPTED.replace("LOGDIR", str(tmp_path / "logs")))
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_bytes(data)
    out, err = io.StringIO(), io.StringIO()
    code = main(["--config", str(cfg), "--tasks", str(tasks)], stdout=out, stderr=err)
    text = err.getvalue()
    assert code == 2, text
    assert out.getvalue() == ""
    assert text.count("\n") == 1 and text.startswith("error: ")
    assert f"tasks.jsonl: line {line}" in text and "(fix: " in text and words in text
    assert "Traceback" not in text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["agent.yaml", "tasks.jsonl"]


@pytest.mark.parametrize(("argv", "words"), [
    (["--tasks", "MISSING"], "tasks file not found"),
    (["--tasks", "EMPTY"], "the tasks file has no tasks"),
    (["--tasks", "GOOD", "--task", "x"], "--task cannot be used with --tasks"),
    (["--tasks", "GOOD", "--resume", "x"], "--resume cannot be used with --tasks"),
    (["--tasks", "GOOD", "-i"], "--interactive cannot be used with --tasks"),
    (["--tasks", "GOOD", "--concurrency", "0"], "--concurrency must be at least 1"),
    (["--tasks", "GOOD", "--batch-id", "../x"], "--batch-id"),
    (["--concurrency", "3"], "go with --tasks"),
    (["--batch-id", "b"], "go with --tasks"),
])
def test_batch_usage_errors_exit_2(argv: list[str], words: str, tmp_path: Path) -> None:
    """Flags that do not fit batch mode, and missing or empty task files, exit 2."""
    cfg = tmp_path / "agent.yaml"
    cfg.write_text(SCRIPTED.replace("LOGDIR", str(tmp_path / "logs")))
    (tmp_path / "good.jsonl").write_text('"hello"\n')
    (tmp_path / "empty.jsonl").write_text("\n\n")
    names = {"MISSING": "absent.jsonl", "EMPTY": "empty.jsonl", "GOOD": "good.jsonl"}
    argv = [str(tmp_path / names[a]) if a in names else a for a in argv]
    err = io.StringIO()
    code = main(["--config", str(cfg), *argv], stdout=io.StringIO(), stderr=err)
    assert code == 2 and words in err.getvalue(), err.getvalue()
    assert not (tmp_path / "logs").exists()


def test_a_batch_running_elsewhere_or_a_run_folder_is_refused(tmp_path: Path) -> None:
    """The same batch id while another process holds the batch, or the id of a single
    run's folder, exits 2 without running anything."""
    cfg = tmp_path / "agent.yaml"
    cfg.write_text(SCRIPTED.replace("LOGDIR", str(tmp_path / "logs")))
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text('"hello"\n')
    batch_dir = tmp_path / "logs" / "held"
    batch_dir.mkdir(parents=True)
    fd = os.open(batch_dir / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        err = io.StringIO()
        code = main(["--config", str(cfg), "--tasks", str(tasks), "--batch-id", "held"],
                    stdout=io.StringIO(), stderr=err)
    finally:
        os.close(fd)
    assert code == 2 and "being run by another process" in err.getvalue()
    assert not (batch_dir / "1").exists()
    (tmp_path / "logs" / "single").mkdir()
    (tmp_path / "logs" / "single" / "transcript.jsonl").write_text("")
    err = io.StringIO()
    code = main(["--config", str(cfg), "--tasks", str(tasks), "--batch-id", "single"],
                stdout=io.StringIO(), stderr=err)
    assert code == 2 and "not a batch" in err.getvalue()


def test_approvals_are_denied_in_a_batch_and_the_batch_says_so(tmp_path: Path) -> None:
    """A tool with approval: ask does not run in a batch: the call is rejected with the
    reason, the task still finishes, and a warning says it at the start."""
    cfg = tmp_path / "agent.yaml"
    cfg.write_text(
        "provider: main\nproviders:\n  main:\n    kind: scripted\n    script:\n"
        "      - tool_calls: [{name: list_dir, arguments: {path: .}}]\n"
        "      - text: done\n"
        f"tools: {{builtin: [list_dir], approval: {{list_dir: ask}}, "
        f"workspace: {tmp_path / 'ws'}}}\n"
        f"logging: {{dir: {tmp_path / 'logs'}}}\n")
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text('"look"\n')
    err = io.StringIO()
    code = main(["--config", str(cfg), "--tasks", str(tasks), "--batch-id", "ask"],
                stdout=io.StringIO(), stderr=err)
    assert code == 0, err.getvalue()
    assert "list_dir (approval: ask) are denied" in err.getvalue()
    records = journal(tmp_path / "logs" / "ask" / "1")
    rejected = [r for r in records if r["type"] == "tool_rejected"]
    assert len(rejected) == 1 and "nobody can answer" in " ".join(rejected[0]["errors"])


# ---- what a person sees ---------------------------------------------------------------

def test_line_output_and_summary_without_a_terminal(tmp_path: Path) -> None:
    """Without a terminal stderr gets one line per ended task (JSON with --log-format json)
    and stdout only the summary (one JSON object with --log-format json)."""
    cfg = tmp_path / "agent.yaml"
    cfg.write_text(
        "provider: main\nproviders:\n  main:\n    kind: scripted\n    script:\n"
        "      - text: a\n      - text: b\n      - text: c\n      - text: d\n"
        f"logging: {{dir: {tmp_path / 'logs'}}}\n")
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text('"one"\n{"id": "two", "task": "two", "max_turns": 1}\n')
    out, err = io.StringIO(), io.StringIO()
    code = main(["--config", str(cfg), "--tasks", str(tasks), "--batch-id", "lines"],
                stdout=out, stderr=err)
    assert code == 0, err.getvalue()
    lines = err.getvalue().splitlines()
    assert lines[0].startswith("batch lines: 2 tasks (0 settled, 0 to resume, 2 to start)")
    done = [x for x in lines if "[info" in x and " task " in x]
    assert len(done) == 2 and all("status=finished" in x for x in done)
    assert out.getvalue().splitlines()[:2] == ["batch lines: complete, exit code 0, 2 tasks",
                                               "  finished       2"]
    out, err = io.StringIO(), io.StringIO()
    code = main(["--config", str(cfg), "--tasks", str(tasks), "--batch-id", "json",
                 "--log-format", "json"], stdout=out, stderr=err)
    assert code == 0
    records = [json.loads(x) for x in err.getvalue().splitlines()]
    tasks_done = [r for r in records if r.get("event") == "task"]
    assert [(r["id"], r["status"], r["done"], r["total"]) for r in tasks_done] in (
        [("1", "finished", 1, 2), ("two", "finished", 2, 2)],
        [("two", "finished", 1, 2), ("1", "finished", 2, 2)])
    summary = json.loads(out.getvalue())
    assert summary["batch_id"] == "json" and summary["counts"] == {"finished": 2}
    assert out.getvalue().count("\n") == 1


def test_progress_bar_on_a_pseudo_terminal(tmp_path: Path) -> None:
    """With stderr on a terminal a real `python main.py --tasks` draws the rich progress bar
    (done/total, running, failed, tokens, cost, ETA), ends it cleanly (cursor shown again)
    and prints a task that did not finish above it."""
    cfg = tmp_path / "agent.yaml"
    cfg.write_text(
        "provider: main\nproviders:\n  main:\n    kind: scripted\n    script:\n"
        "      - text: a\n      - tool_calls: [{name: list_dir, arguments: {path: .}}]\n"
        "      - text: c\n"
        f"tools: {{builtin: [list_dir], workspace: {tmp_path / 'ws'}}}\n"
        f"logging: {{dir: {tmp_path / 'logs'}}}\n")
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text('"one"\n{"id": "two", "task": "two", "max_turns": 1}\n"three"\n')
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "main.py"), "--config", str(cfg), "--tasks", str(tasks),
         "--batch-id", "tty", "--concurrency", "1"], stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=slave, env={"PATH": "/usr/bin:/bin", "COLUMNS": "160",
                                                   **ENV})
    os.close(slave)
    screen = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the process closed the terminal
            break
        if not chunk:
            break
        screen += chunk
    os.close(master)
    assert proc.stdout is not None
    stdout = proc.stdout.read().decode()
    assert proc.wait(timeout=30) == 4
    text = screen.decode()
    assert "\x1b[?25l" in text and text.rstrip("\r\n").endswith("\x1b[?25h")  # cursor back
    last = text.split("\r")[-2]           # the last drawing of the bar
    for words in ("3/3", "running 0", "failed 0", "tokens", "$0.0000", "ETA"):
        assert words in last, last
    assert "[limit] two: turn limit reached" in text
    assert stdout.startswith("batch tty: complete, exit code 4, 3 tasks")
    assert "\x1b" not in stdout


def test_tasks_from_stdin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`--tasks -` reads the tasks from stdin; its errors name <stdin>."""
    cfg = tmp_path / "agent.yaml"
    cfg.write_text(SCRIPTED.replace("LOGDIR", str(tmp_path / "logs")))

    class Stdin:
        def __init__(self, data: bytes) -> None:
            self.buffer = io.BytesIO(data)

    monkeypatch.setattr(sys, "stdin", Stdin(b'"hello"\n'))
    out, err = io.StringIO(), io.StringIO()
    code = main(["--config", str(cfg), "--tasks", "-", "--batch-id", "in"], stdout=out,
                stderr=err)
    assert code == 0, err.getvalue()
    doc = json.loads((tmp_path / "logs" / "in" / "batch.json").read_text())
    assert doc["tasks_file"] == "<stdin>" and doc["counts"] == {"finished": 1}
    monkeypatch.setattr(sys, "stdin", Stdin(b'"hello"\n{"id": 1}\n'))
    err = io.StringIO()
    code = main(["--config", str(cfg), "--tasks", "-"], stdout=io.StringIO(), stderr=err)
    assert code == 2 and err.getvalue().startswith("error: <stdin>: line 2: missing key")
