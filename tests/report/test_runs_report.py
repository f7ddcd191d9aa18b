"""``runs`` and ``report`` on real run folders made by real sessions (see ``runs.py``)."""

from __future__ import annotations

import io
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from runtime.cli import main
from runtime.report.folder import find_runs, load_run, resolve_run, run_info
from runtime.report.html import render_html
from runtime.report.markdown import render_markdown
from runtime.report.model import build_report

from .runs import HTMLISH, SECRET


def cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(args), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def report_of(base: Path, run_id: str) -> Any:
    _, _, path = resolve_run(base, run_id)
    data = load_run(run_id, path)
    return build_report(run_id, data.records, data.summary, data.errors, data.alive)


def test_runs_lists_every_kind_newest_first(made: tuple[Path, dict[str, Any]]) -> None:
    """Each run shows its real status (crashed from the folded journal), batch runs as
    BATCH/TASK, newest first, with turns, tokens and cost that match summary.json."""
    base, _ = made
    code, out, err = cli("runs", "--dir", str(base), "--json")
    assert code == 0, err
    rows = [json.loads(x) for x in out.splitlines()]
    status = {r["run_id"]: r["status"] for r in rows}
    assert status == {"done": "finished", "failed": "provider_failed",
                      "interrupted": "interrupted", "crashed": "crashed",
                      "compacted": "finished", "b1/t1": "finished", "b1/t2": "limit"}
    started = [r["started_at"] for r in rows]
    assert started == sorted(started, reverse=True)
    assert rows[0]["run_id"] == "b1/t2" and rows[-1]["run_id"] == "done"
    done = next(r for r in rows if r["run_id"] == "done")
    summary = json.loads((base / "done" / "summary.json").read_text())
    assert done["turns"] == summary["turns"] == 3
    assert done["tokens"] == summary["totals"]["total_tokens"] > 0
    assert done["cost_usd"] == pytest.approx(summary["totals"]["cost_usd"]) and done["cost_usd"] > 0
    assert done["task"] == "Show me things"
    crashed = next(r for r in rows if r["run_id"] == "crashed")
    assert crashed["turns"] >= 1 and crashed["tokens"] > 0 and crashed["exit_code"] is None
    code, table, _ = cli("runs", "--dir", str(base))
    lines = table.splitlines()
    assert lines[0].split() == ["RUN", "STATUS", "STARTED", "TURNS", "TOKENS", "COST", "TASK"]
    assert [ln.split()[0] for ln in lines[1:]] == [r["run_id"] for r in rows]


def test_a_running_process_shows_as_running(made: tuple[Path, dict[str, Any]]) -> None:
    """While its process was alive the run without session_end showed as running; after
    kill -9 the same folder shows as crashed."""
    base, seen = made
    assert seen["alive"].status == "running"
    assert run_info("crashed", base / "crashed").status == "crashed"


def test_stale_summary_of_a_resumed_run_is_not_trusted(made: tuple[Path, dict[str, Any]],
                                                       tmp_path: Path) -> None:
    """A finished run resumed and then killed keeps its old summary.json; runs folds the
    journal and says crashed."""
    base, _ = made
    copy = tmp_path / "logging" / "done"
    shutil.copytree(base / "done", copy)
    start = json.loads((copy / "transcript.jsonl").read_text().splitlines()[0])
    start.update(seq=10_000, resumed=True, task=None, process={"host": "elsewhere", "pid": 1})
    with open(copy / "transcript.jsonl", "a") as f:
        f.write(json.dumps(start) + "\n")
    assert json.loads((copy / "summary.json").read_text())["status"] == "finished"
    assert run_info("done", copy).status == "crashed"


def test_resume_last_and_batch_ids_resolve(made: tuple[Path, dict[str, Any]]) -> None:
    """`last` is the newest run (a batch task here, in its batch folder); BATCH/TASK ids
    resolve to the batch folder; ids that climb out are refused."""
    base, _ = made
    assert resolve_run(base, "last") == ("t2", base / "b1", base / "b1" / "t2")
    assert resolve_run(base, "done") == ("done", base, base / "done")
    from runtime.errors import ConfigError

    for bad in ("../x", "a/b/c", "b1/..", ""):
        with pytest.raises(ConfigError):
            resolve_run(base, bad)
    assert {rid for rid, _ in find_runs(base)} >= {"b1/t1", "b1/t2"}


def test_markdown_report_of_a_finished_run(made: tuple[Path, dict[str, Any]]) -> None:
    """The conversation with tool calls and results (the long one folded), HTML in the
    run's text escaped, a per-turn table with tokens, cost, latency and ttft."""
    base, _ = made
    code, md, err = cli("report", "done", "--dir", str(base))
    assert code == 0, err
    assert "# Run done" in md and "**You**" in md and "Show me things" in md
    assert md.count("**→ Tool call: show**") == 3 and md.count("**← Tool result: show") == 3
    assert "<details><summary>Tool result: show (ok)" in md   # the long result is folded
    assert f"```\n{HTMLISH}\n```" in md      # tool output: verbatim, inside a code fence
    assert "<b>" not in md and "&lt;b>bold&lt;/b>" in md
    assert "`code <x>`" in md            # inline code is left as it is
    table = [ln for ln in md.splitlines() if re.match(r"^\| \d+ \|", ln)]
    assert len(table) == 3
    cells = [c.strip() for c in table[0].strip("|").split("|")]
    assert cells[0] == "1" and cells[5] == "150" and cells[6] == "30"
    assert cells[8].startswith("$") and re.match(r"\d+\.\d\d", cells[9])


def test_report_of_a_failed_run_shows_errors_and_retries(made: tuple[Path, dict[str, Any]]
                                                        ) -> None:
    """Provider errors appear where they happened, the first with its retry, and the
    failure in the header."""
    base, _ = made
    report = report_of(base, "failed")
    errors = [e for e in report.entries if e.kind == "error"]
    assert len(errors) == 2
    assert errors[0].meta["retry"].startswith("retrying in") and errors[1].meta["retry"] == \
        "no retry"
    assert report.status == "provider_failed" and report.exit_code == 3
    assert report.retries == 1 and report.stats[0].errors == 2
    md = render_markdown(report)
    assert md.count("**⚠ Provider error: server") == 2 and "provider\\_failed" in md


def test_report_of_interrupted_crashed_and_compacted_runs(made: tuple[Path, dict[str, Any]]
                                                         ) -> None:
    """An interrupted answer is marked as such; a crashed run says so; a compaction is an
    entry with its numbers."""
    base, _ = made
    inter = report_of(base, "interrupted")
    assert inter.status == "interrupted"
    partial = [e for e in inter.entries if e.kind == "partial"]
    assert partial and partial[0].text == "half an ans"
    crash = report_of(base, "crashed")
    assert crash.status == "crashed" and "killed" in crash.message
    assert any(e.kind == "tool_result" for e in crash.entries)
    comp = report_of(base, "compacted")
    entry = next(e for e in comp.entries if e.kind == "compaction")
    assert entry.meta["tokens"] == "5,200 -> 1,800" and entry.meta["elided"] == "1"
    assert comp.compactions == 1
    assert "Context compacted" in render_html(comp)


def test_reports_hold_nothing_the_transcript_does_not(made: tuple[Path, dict[str, Any]],
                                                      tmp_path: Path) -> None:
    """The secret a tool printed is redacted in the transcript, so in no report either;
    the HTML is one self-contained, escaped file."""
    base, _ = made
    out = tmp_path / "done.html"
    code, _, err = cli("report", "done", "--dir", str(base), "-o", str(out))
    assert code == 0, err
    html = out.read_text()
    _, md, _ = cli("report", "done", "--dir", str(base))
    for text in (html, md):
        assert SECRET not in text
    assert SECRET not in (base / "done" / "transcript.jsonl").read_text()
    assert HTMLISH not in html and "&lt;script&gt;alert(&quot;boom&quot;)" in html
    assert html.count("<script>") == 1            # only the report's own
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", html)
    assert "<svg" in html and html.count('class="turn"') == 3


def test_report_command_errors(made: tuple[Path, dict[str, Any]]) -> None:
    """An unknown run or a bad id is a usage error (exit 2) that says how to find runs."""
    base, _ = made
    code, _, err = cli("report", "nope", "--dir", str(base))
    assert code == 2 and "runs" in err
    code, _, err = cli("report", "../etc", "--dir", str(base))
    assert code == 2 and "invalid run id" in err
    code, md, _ = cli("report", "b1/t1", "--dir", str(base))
    assert code == 0 and "# Run b1/t1" in md
