"""Batch mode's pure parts: the tasks file, the tally of a task, batch.json, exit codes, and
the two displays rendered into strings."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console as RichConsole

from runtime.cli.batch_display import BarDisplay, LineDisplay
from runtime.cli.batch_report import (
    Tally,
    batch_document,
    batch_exit_code,
    plan,
    progress,
    summary_lines,
)
from runtime.cli.batch_tasks import TaskSpec, parse_tasks
from runtime.cli.console import Console
from runtime.engine import valid_run_id
from runtime.errors import ConfigError
from runtime.redact import Redactor
from runtime.session.records import AssistantRecord, SessionEnd, SessionStart, UsageRecord

PROVIDERS = {"main": ["m1", "m2"], "backup": []}


def parse(data: bytes) -> list[TaskSpec]:
    return parse_tasks(data, "t.jsonl", providers=PROVIDERS, default_provider="main",
                       valid_id=valid_run_id)


def test_lines_objects_strings_and_blank_lines() -> None:
    """Objects keep their ids (numbers too), strings take their line number, blank lines are
    skipped but counted, a BOM and CRLF line ends are accepted."""
    data = ('\ufeff"first"\r\n\r\n{"id": "b", "task": "second", "provider": "backup", '
            '"model": "x", "max_turns": 3}\r\n{"id": 17, "task": "third", "model": "m2"}\n'
            '   \n"fourth"').encode()
    assert parse(data) == [
        TaskSpec("1", "first", 1),
        TaskSpec("b", "second", 3, provider="backup", model="x", max_turns=3),
        TaskSpec("17", "third", 4, model="m2"),
        TaskSpec("6", "fourth", 6),
    ]


@pytest.mark.parametrize(("data", "path", "message", "fix"), [
    (b'{"id": "a", "task": "x", "tsak": 1}', "line 1", "unknown key 'tsak'", "did you mean"),
    (b'"a"\n{"id": "a", "task": "x", "max_turns": 1.5}', "line 2", "max_turns",
     "whole number"),
    (b'{"id": "a", "task": "x", "provider": "nope"}', "line 1: provider",
     "no provider named 'nope'", "use one of main, backup"),
    (b'{"id": "a", "task": "x", "model": "m1x"}', "line 1: model", "allowlist of provider "
     "'main'", "did you mean 'm1'"),
    (b'{"id": "-a", "task": "x"}', "line 1: id", "cannot name a run folder", "letters"),
    (b'{"id": "a", "task": 5}', "line 1", "task: expected `str`", "JSON string"),
    (b'[1, 2]', "line 1", "not a task", "one JSON object"),
])
def test_errors_name_the_line_and_the_fix(data: bytes, path: str, message: str,
                                          fix: str) -> None:
    """Each error is a ConfigError with the file, the line (and key) and a fix."""
    with pytest.raises(ConfigError) as info:
        parse(data)
    err = info.value
    assert err.file == "t.jsonl" and err.path == path
    assert message in err.message, err.message
    assert err.fix is not None and fix in err.fix, err.fix


_ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,20}", fullmatch=True).filter(
    lambda s: s not in ("batch.json", "batch.json.tmp") and not s.isdigit())
_task = st.text(min_size=1, max_size=40).filter(lambda s: s.strip() != "")
_line = st.tuples(_ids, _task, st.sampled_from([None, "main", "backup"]),
                  st.sampled_from([None, "m1", "m2"]), st.none() | st.integers(1, 500),
                  st.booleans(), st.integers(0, 2))


@given(st.lists(_line, max_size=12, unique_by=lambda x: x[0]))
def test_any_valid_file_parses_back_to_its_tasks(lines: list[Any]) -> None:
    """Whatever valid tasks are written (objects or strings, blank lines between), parsing
    the file gives them back, in order, with string lines named by their line number."""
    text, expected, n = [], [], 0
    for id_, task, provider, model, max_turns, as_string, blanks in lines:
        for _ in range(blanks):
            text.append("")
            n += 1
        n += 1
        if as_string:
            text.append(json.dumps(task))
            expected.append(TaskSpec(str(n), task, n))
            continue
        obj: dict[str, Any] = {"id": id_, "task": task}
        for key, value in (("provider", provider), ("model", model), ("max_turns", max_turns)):
            if value is not None:
                obj[key] = value
        text.append(json.dumps(obj))
        expected.append(TaskSpec(id_, task, n, provider, model, max_turns))
    if not expected:
        with pytest.raises(ConfigError, match="no tasks"):
            parse("\n".join(text).encode())
        return
    assert parse("\n".join(text).encode()) == expected


# ---- the tally of a task --------------------------------------------------------------

def run_records(start: float, end: float | None, status: str = "finished",
                *, usage: tuple[int, int] = (10, 5), duration: float = 0.5,
                resumed: bool = False) -> list[Any]:
    recs: list[Any] = [
        SessionStart(ts=start, providers=["main"], model="m1", resumed=resumed),
        AssistantRecord(ts=start + 0.1, turn=1, provider="main", duration=duration),
        UsageRecord(ts=start + 0.1, turn=1, provider="main", input_tokens=usage[0],
                    output_tokens=usage[1], cost_usd=0.25),
    ]
    if end is not None:
        total = usage[0] + usage[1]
        recs.append(SessionEnd(ts=end, turn=1, status=status, exit_code={
            "finished": 0, "limit": 4, "provider_failed": 3, "interrupted": 130}[status],
            turns=1, totals={"input_tokens": usage[0], "output_tokens": usage[1],
                             "total_tokens": total, "cost_usd": 0.25},
            message=None if status == "finished" else f"{status}!"))
    return recs


@pytest.mark.parametrize(("records", "status", "action"), [
    ([], "pending", "start"),
    (run_records(1, None), "incomplete", "resume"),
    (run_records(1, 2), "finished", "skip"),
    (run_records(1, 2, "limit"), "limit", "skip"),
    (run_records(1, 2, "provider_failed"), "provider_failed", "resume"),
    (run_records(1, 2, "interrupted"), "interrupted", "resume"),
    (run_records(1, 2, "interrupted") + run_records(5, None, resumed=True), "incomplete",
     "resume"),
])
def test_a_task_on_disk_is_started_resumed_or_left_alone(records: list[Any], status: str,
                                                         action: str) -> None:
    """Never started: start; finished or limit: settled; anything else: resume."""
    tally = Tally.of(records)
    assert tally.status == status and plan(tally) == action


def test_a_resumed_task_counts_each_run_once() -> None:
    """Two runs: both runs' time, the first start, the last end and the last totals."""
    tally = Tally.of(run_records(1, 3, "interrupted") + run_records(10, 14, resumed=True))
    assert (tally.status, tally.runs, tally.active_s) == ("finished", 2, 6.0)
    assert (tally.started_at, tally.ended_at) == (1, 14)
    assert tally.latencies() == [0.5, 0.5]
    assert tally.current_totals()["total_tokens"] == 15


def test_a_live_tally_stays_running_until_its_session_ends() -> None:
    """Replaying an old run's end does not end a live task; the session's result does, and
    without its session_end record the result is the truth."""
    tally = Tally.running()
    for rec in run_records(1, 2, "interrupted") + run_records(5, 8, resumed=True):
        tally.apply(rec)
        assert tally.status == "running"
    tally.settle("finished", 0, turns=1, message="", totals={}, at=99.0)
    assert (tally.status, tally.ended_at, tally.active_s) == ("finished", 8, 4.0)
    lost = Tally.running()
    for rec in run_records(1, None):
        lost.apply(rec)
    lost.settle("error", 1, turns=1, message="the run folder could not be written",
                totals={"total_tokens": 15}, at=4.0)
    assert (lost.status, lost.exit_code, lost.ended_at, lost.active_s) == ("error", 1, 4.0, 3.0)
    assert lost.row(TaskSpec("a", "t", 1), "f")["message"] == "the run folder could not be written"


# ---- exit codes and batch.json --------------------------------------------------------

@pytest.mark.parametrize(("statuses", "stopped", "code"), [
    (["finished"] * 3, None, 0),
    (["finished", "limit"], None, 4),
    (["limit", "provider_failed", "finished"], None, 3),
    (["limit", "provider_failed", "error"], None, 1),
    (["finished", "pending"], "interrupted", 130),
    (["finished", "running"], "terminated", 143),
    ([], None, 0),
])
def test_exit_code_table(statuses: list[str], stopped: str | None, code: int) -> None:
    """The batch exit code for typical endings."""
    assert batch_exit_code(statuses, stopped) == code


SERIOUS = {0: 0, 4: 1, 3: 2, 1: 3}    # exit codes from least to most serious


@given(st.lists(st.sampled_from(["finished", "limit", "provider_failed", "error"])),
       st.sampled_from(["finished", "limit", "provider_failed", "error"]))
def test_one_more_task_never_makes_a_batch_less_serious(statuses: list[str],
                                                        extra: str) -> None:
    """0 only when every task finished; adding a task never lowers the seriousness (1 over 3
    over 4 over 0)."""
    code = batch_exit_code(statuses)
    assert (code == 0) == all(s == "finished" for s in statuses)
    assert SERIOUS[batch_exit_code([*statuses, extra])] >= SERIOUS[code]


def test_batch_document_adds_up() -> None:
    """Counts sum to the tasks, totals are the tasks' totals, latencies are percentiles of
    the turns and of the sessions' running time; rows are in file order."""
    specs = [TaskSpec("a", "x", 1), TaskSpec("b", "y", 2), TaskSpec("c", "z", 3),
             TaskSpec("d", "w", 4)]
    tallies = [Tally.of(run_records(1, 2, usage=(10, 5), duration=0.2)),
               Tally.of(run_records(2, 6, "limit", usage=(20, 5), duration=0.4)),
               Tally.of(run_records(3, None, usage=(1, 1), duration=1.0)),
               Tally()]
    doc = batch_document(batch_id="B", state="interrupted", specs=specs, tallies=tallies,
                         folders=["fa", "fb", "fc", "fd"], config="c.yaml",
                         tasks_file="t.jsonl", folder="logs/B", started_at=0.5)
    assert doc["counts"] == {"finished": 1, "limit": 1, "incomplete": 1, "pending": 1}
    assert doc["exit_code"] == 130 and doc["total"] == 4
    assert doc["totals"]["total_tokens"] == 15 + 25 + 2
    assert doc["totals"]["cost_usd"] == pytest.approx(0.75)
    assert doc["latency_s"]["turn"] == {"p50": 0.4, "p95": pytest.approx(0.94)}
    assert doc["latency_s"]["session"] == {"p50": 2.5, "p95": pytest.approx(3.85)}
    assert (doc["started_at"], doc["ended_at"]) == (1, 6)
    assert [r["id"] for r in doc["tasks"]] == ["a", "b", "c", "d"]
    assert [r["folder"] for r in doc["tasks"]] == ["fa", "fb", "fc", None]
    assert doc["tasks"][1]["message"] == "limit!" and doc["tasks"][0]["message"] is None
    running = batch_document(batch_id="B", state="running", specs=specs, tallies=tallies,
                             folders=["fa", "fb", "fc", "fd"], config="c.yaml",
                             tasks_file="t.jsonl", folder="logs/B", started_at=0.5)
    assert running["exit_code"] is None and running["ended_at"] is None
    stats = progress(tallies)
    assert (stats["done"], stats["failed"], stats["limit"], stats["tokens"]) == (2, 0, 1, 42)
    lines = summary_lines(doc, listed=2)
    assert lines[0] == "batch B: interrupted, exit code 130, 4 tasks"
    assert "  [limit] b: limit!" in lines and "  [incomplete] c" in lines
    assert "  ... and 1 more not finished (batch.json)" in lines
    assert lines[-1].startswith("answers: the transcript.jsonl of each run folder logs/B/")


# ---- the displays ---------------------------------------------------------------------

def _row(id_: str, status: str, message: str | None = None) -> dict[str, Any]:
    return {"id": id_, "status": status, "exit_code": 0 if status == "finished" else 3,
            "turns": 2, "tokens": 300, "cost_usd": 0.01, "duration_s": 1.5,
            "folder": f"logs/B/{id_}", "message": message}


def test_the_progress_bar_renders_and_ends_cleanly() -> None:
    """On a (forced) terminal the bar shows done/total, running, failed, tokens, cost and
    ETA, prints a task that did not finish above itself (redacted) and gives the cursor
    back at the end."""
    screen = io.StringIO()
    bar = BarDisplay(RichConsole(file=screen, force_terminal=True, width=140),
                     Redactor(["sk-secret-999"]))
    stats = {"total": 3, "done": 0, "running": 2, "failed": 0, "tokens": 0, "cost_usd": 0.0}
    bar.begin(stats)
    stats = {**stats, "done": 1, "running": 2, "failed": 1, "tokens": 12345, "cost_usd": 0.5}
    bar.task_done(_row("t1", "provider_failed", "401 with key sk-secret-999"), 1, 3)
    bar.update(stats)
    bar.close({**stats, "done": 3, "running": 0})
    text = screen.getvalue()
    assert text.startswith("\x1b[?25l") and text.endswith("\x1b[?25h")
    assert "[provider_failed] t1: 401 with key [REDACTED" in text
    assert "sk-secret-999" not in text
    final = text.split("\r")[-2]
    for words in ("3/3", "running 0", "failed 1", "12,345 tokens", "$0.5000", "ETA"):
        assert words in final, final


def test_line_display_writes_one_line_per_task() -> None:
    """Without a terminal each ended task is one structlog line: info when it finished,
    warning otherwise, with its message; JSON with --log-format json."""
    err = io.StringIO()
    lines = LineDisplay(Console(io.StringIO(), err, Redactor([]), fmt="json"))
    lines.task_done(_row("a", "finished"), 1, 2)
    lines.task_done(_row("b", "limit", "turn limit reached"), 2, 2)
    a, b = (json.loads(x) for x in err.getvalue().splitlines())
    assert (a["event"], a["level"], a["id"], a["status"], a["done"]) == (
        "task", "info", "a", "finished", 1)
    assert "message" not in a
    assert (b["level"], b["message"], b["total"]) == ("warning", "turn limit reached", 2)
    err = io.StringIO()
    LineDisplay(Console(io.StringIO(), err, Redactor([]))).task_done(_row("c", "finished"),
                                                                      1, 2)
    assert "task c finished" in err.getvalue() and "turns=2" in err.getvalue()
