"""The benchmark scripts still run end to end, on tiny sizes, and print whole tables.

Timings are not asserted (speed is measured by running the scripts, not by tests); what is
checked is that each script works against the code as it is now: a refactor that breaks a
benchmark (as the async breaker protocol once broke ``bench_sessions.py``) fails here, not
the day someone wants the figures. Every script runs as a child process, as a user runs it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FLOAT = r"\d+\.\d+"


def run(script: str, *args: str, timeout: float = 180) -> str:
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / script), *args],
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    assert proc.returncode == 0, f"{script} exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def test_bench_stream_prints_every_mode_and_protocol() -> None:
    """bench_stream.py prints a floor, session and ratio range for every mode and protocol."""
    out = run("bench_stream.py", "--events", "50", "--body-words", "10", "--reps", "1",
              "--runs", "1")
    for mode in ("paced", "burst", "body"):
        for proto in ("openai-chat", "openai-responses", "anthropic"):
            assert re.search(rf"^{mode}\s+{proto}\s+us/\w+\s+{FLOAT}-{FLOAT}\s+{FLOAT}-{FLOAT}"
                             rf"\s+{FLOAT}-{FLOAT}x", out, re.M), (mode, proto, out)


def test_bench_turn_prints_every_figure() -> None:
    """bench_turn.py prints a min-max range for each of its figures, turn N named by --long."""
    out = run("bench_turn.py", "--turns", "5", "--sessions", "3", "--long", "20", "--runs", "1")
    for figure in ("turn overhead, read-only no-op tool", "turn overhead, no-op tool with effects",
                   "session fixed cost", "turn 10 (ms CPU)", "turn 20 (ms CPU)",
                   "turn 20 / turn 10"):
        assert re.search(rf"^{re.escape(figure)}.*\s{FLOAT}-{FLOAT}", out, re.M), (figure, out)


def test_bench_sessions_finishes_every_session_also_under_an_fd_limit() -> None:
    """bench_sessions.py prints a row per size and for the fd-limited run, each with no
    failed session and the breaker closed."""
    out = run("bench_sessions.py", "--sizes", "1,5", "--turns", "2", "--deltas", "5",
              "--fd-limit", "256", "--limited", "20")
    rows = {int(m.group(1)): m.group(0) for m in re.finditer(r"^\s+(\d+)\s+\S+.*$", out, re.M)}
    assert set(rows) == {1, 5, 20}, out
    for sessions, row in rows.items():
        cols = row.split()
        assert cols[-2] == "0" and cols[-1] == "closed", (sessions, row)  # none failed


def test_bench_ratelimit_reports_each_operation() -> None:
    """bench_ratelimit.py prints a per-call time for at least three limiter operations."""
    out = run("bench_ratelimit.py", "--calls", "2000", "--reps", "1")
    assert len(re.findall(rf"{FLOAT} µs/call", out)) >= 3, out


def test_bench_service_runs_sessions_through_serve_and_drains_it() -> None:
    """bench_service.py runs sessions through ``main.py serve``, which exits 0 on SIGTERM."""
    out = run("bench_service.py", "--sessions", "5", "--words", "5")
    assert re.search(r"serve exit code after SIGTERM\s*\|\s*0\s*\|", out), out


@pytest.mark.skipif(shutil.which("redis-server") is None,
                    reason="redis-server is not installed (apt-get install -y redis-server)")
def test_bench_fleet_starts_its_redis_and_prints_the_limiter_latency() -> None:
    """bench_fleet.py starts its own redis-server and prints the latency before a request."""
    out = run("bench_fleet.py", "--sessions", "5", "--workers", "1", "--concurrency", "2",
              "--calls", "200")
    assert "redis: one GET" in out and "before a request" in out, out
