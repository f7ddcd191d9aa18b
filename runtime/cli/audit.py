"""``python main.py audit verify [--dir logging] [--expect-head HASH]``: check the audit log.

Reads ``<dir>/audit.jsonl`` and checks its hash chain (``runtime.server.audit``): every
edited, removed or reordered line is named. Prints the number of records and the head hash
(keep it elsewhere: ``--expect-head`` then also detects lines cut off the end). Exit 0 when
intact, 1 when not, 2 on a usage error or a missing log.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python main.py audit",
                                description="Check the service's audit log.")
    sub = p.add_subparsers(dest="command", required=True)
    v = sub.add_parser("verify", help="check the hash chain of logging/audit.jsonl")
    v.add_argument("--dir", default="logging", help="the logging folder (default: logging)")
    v.add_argument("--expect-head", metavar="HASH",
                   help="the head hash recorded earlier: the log must still end with it or "
                        "continue from it")
    return p


def main(argv: Sequence[str], *, stdout: TextIO | None = None,
         stderr: TextIO | None = None) -> int:
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    try:
        args = _parser().parse_args(list(argv))
    except SystemExit as exc:
        return 2 if exc.code else 0
    from ..server.audit import verify_lines

    path = Path(args.dir) / "audit.jsonl"
    try:
        lines = path.read_bytes().splitlines()
    except FileNotFoundError:
        err.write(f"error: {path}: no audit log here (fix: pass --dir with the logging "
                  "folder of the service)\n")
        return 2
    except OSError as exc:
        err.write(f"error: {path}: cannot read it: {exc}\n")
        return 2
    report = verify_lines(lines)
    for problem in report.problems:
        out.write(f"{path}: {problem}\n")
    if args.expect_head and report.ok:
        seen = _hashes(lines)
        if args.expect_head not in seen:
            out.write(f"{path}: the expected head {args.expect_head} is not in the log "
                      "(lines were cut off the end, or it is another log)\n")
            return 1
    if report.ok:
        out.write(f"{path}: intact, {report.records} records, head {report.head}\n")
        return 0
    out.write(f"{path}: NOT intact: {len(report.problems)} problem(s) in {report.records} "
              "records\n")
    return 1


def _hashes(lines: list[bytes]) -> set[str]:
    import json

    out: set[str] = set()
    for raw in lines:
        try:
            rec = json.loads(raw)
        except ValueError:
            continue
        if isinstance(rec, dict) and isinstance(rec.get("hash"), str):
            out.add(rec["hash"])
    return out
