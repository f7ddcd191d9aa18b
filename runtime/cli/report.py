"""``python main.py report RUN_ID [--dir DIR] [--config agent.yaml] [--format md|html]
[-o FILE]``: one run, readable — the conversation with tool calls and results, errors and
retries, compactions, and per-turn tokens, cost, latency and time to first token.

``RUN_ID`` is an id as ``runs`` lists it (``BATCH_ID/TASK_ID`` in a batch) or ``last``.
Markdown goes to stdout unless ``-o``; HTML (one self-contained file) needs ``-o`` when
stdout is a terminal. Built from ``transcript.jsonl``, ``errors/`` and ``summary.json`` only.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from ..errors import ConfigError
from .runs import logging_dir, parser

__all__ = ["main"]


def main(argv: Sequence[str], *, stdout: TextIO, stderr: TextIO) -> int:
    p = parser("python main.py report", "Write a readable report of one run.")
    p.add_argument("run_id", metavar="RUN_ID", help="a run id as `runs` lists it, or last")
    p.add_argument("--format", choices=["md", "html"], help="default: from -o's suffix, "
                   "else md")
    p.add_argument("-o", "--output", help="write to this file (default: stdout)")
    try:
        args = p.parse_args(list(argv))
    except SystemExit as exc:
        return 2 if exc.code else 0
    from ..report.folder import load_run, resolve_run
    from ..report.html import render_html
    from ..report.markdown import render_markdown
    from ..report.model import build_report

    fmt = args.format or ("html" if args.output and args.output.endswith((".html", ".htm"))
                          else "md")
    try:
        base = logging_dir(args.dir, args.config)
        run_id, _, path = resolve_run(base, args.run_id)
    except ConfigError as exc:
        stderr.write(f"error: {exc}\n")
        return 2
    if not (path / "transcript.jsonl").is_file():
        stderr.write(f"error: no run {args.run_id!r} under {base} (no {path}/transcript.jsonl;"
                     " `python main.py runs` lists the runs)\n")
        return 2
    name = str(path.relative_to(base)) if path.is_relative_to(base) else run_id
    data = load_run(name, path)
    report = build_report(name, data.records, data.summary, data.errors, data.alive)
    text = render_html(report) if fmt == "html" else render_markdown(report)
    if args.output:
        out = Path(args.output)
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        stderr.write(f"report written to {out}\n")
    else:
        stdout.write(text)
    return 0
