"""The command line names runs as `runs` lists them: `--resume last`, `--resume BATCH/TASK`;
interactive mode needs a terminal."""

from __future__ import annotations

import io
import json
from pathlib import Path

from runtime.cli import main


def cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    return main(list(args), stdout=out, stderr=err), out.getvalue(), err.getvalue()


def config(tmp_path: Path, answers: list[str]) -> Path:
    script = "\n".join(f"      - text: {a}" for a in answers)
    path = tmp_path / "agent.yaml"
    path.write_text(f"provider: main\nproviders:\n  main:\n    kind: scripted\n    script:\n"
                    f"{script}\nlogging: {{dir: {tmp_path / 'logs'}}}\n"
                    "reasoning: {encrypt: false}\n")
    return path


def test_resume_last_continues_the_newest_run(tmp_path: Path) -> None:
    """`--resume last --task` adds a message to the newest run, in its folder."""
    path = config(tmp_path, ["done"])   # each process starts the script afresh
    assert cli("--config", str(path), "--task", "one", "--run-id", "a")[0] == 0
    code, out, err = cli("--config", str(path), "--resume", "last", "--task", "two")
    assert code == 0, err
    assert out == "done\n"
    lines = (tmp_path / "logs" / "a" / "transcript.jsonl").read_text().splitlines()
    starts = [json.loads(x) for x in lines if json.loads(x)["type"] == "session_start"]
    assert [(s["task"], s["resumed"]) for s in starts] == [("one", False), ("two", True)]
    assert sorted(p.name for p in (tmp_path / "logs").iterdir()) == ["a"]


def test_resume_a_batch_task_by_its_listed_id(tmp_path: Path) -> None:
    """BATCH/TASK resumes the run folder inside the batch folder; a missing one is a usage
    error."""
    path = config(tmp_path, ["done"])
    logs = tmp_path / "logs"
    assert cli("--config", str(path), "--task", "one", "--run-id", "t1")[0] == 0
    (logs / "b1").mkdir()
    (logs / "t1").rename(logs / "b1" / "t1")
    code, out, err = cli("--config", str(path), "--resume", "b1/t1", "--task", "more")
    assert code == 0, err
    assert out == "done\n"
    assert (logs / "b1" / "t1" / "summary.json").exists() and not (logs / "t1").exists()
    code, _, err = cli("--config", str(path), "--resume", "b1/../x")
    assert code == 2 and "invalid run id" in err


def test_interactive_without_a_terminal_is_a_usage_error(tmp_path: Path) -> None:
    """-i needs a terminal on stdin (pytest's stdin is none)."""
    code, _, err = cli("--config", str(config(tmp_path, ["x"])), "-i")
    assert code == 2 and "needs a terminal" in err
