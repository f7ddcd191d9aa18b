"""``python main.py compare RUN_A RUN_B [--dir logging]``: what differs between two runs.

Ignores what legitimately differs between a recording and its replay (times, ids, retries,
the cache's bookkeeping; see ``runtime.session.compare``). Exit 0 when the runs did the same
thing, 1 with a unified diff when they did not, 2 for a run that does not exist."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from ..session.compare import differences

__all__ = ["main"]


def _folder(name: str, base: Path) -> Path:
    path = Path(name)
    return path if path.is_dir() else base / name


def main(argv: Sequence[str], *, stdout: TextIO, stderr: TextIO) -> int:
    p = argparse.ArgumentParser(prog="python main.py compare",
                                description="Compare two runs, ignoring times, ids, retries "
                                            "and cache bookkeeping.")
    p.add_argument("run_a", help="a run id under --dir, or a run folder")
    p.add_argument("run_b")
    p.add_argument("--dir", default="logging", type=Path, help="the logging folder")
    try:
        args = p.parse_args(list(argv))
    except SystemExit as exc:
        return 2 if exc.code else 0
    a, b = _folder(args.run_a, args.dir), _folder(args.run_b, args.dir)
    try:
        diff = differences(a, b)
    except FileNotFoundError as exc:
        stderr.write(f"error: {exc} (fix: give run ids under {args.dir} or run folders)\n")
        return 2
    if not diff:
        stdout.write(f"same: {a} and {b} made the same calls, results and answers\n")
        return 0
    stdout.write("\n".join(diff) + "\n")
    return 1
