"""``python main.py runs [--dir DIR] [--config agent.yaml] [--json]``: the runs, newest
first (id, status, started, turns, tokens, cost, the first line of the task).

Batch runs are listed as ``BATCH_ID/TASK_ID``. A run whose journal has no ``session_end``
shows as ``crashed`` (or ``running`` while its process is alive). The folder is ``--dir``,
else the config's ``logging.dir``, else ``logging``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from ..errors import ConfigError

__all__ = ["logging_dir", "main"]


def logging_dir(directory: str | None, config: str | None) -> Path:
    """``--dir``, else ``logging.dir`` of ``--config`` (read without needing its secrets),
    else ``logging``."""
    if directory:
        return Path(directory)
    if not config:
        return Path("logging")
    from ..config import load_config

    try:
        return Path(load_config(config).logging.dir)
    except ConfigError as exc:
        if exc.path is not None and not exc.path.startswith("logging"):
            return _logging_dir_only(Path(config))
        raise


def _logging_dir_only(path: Path) -> Path:
    """``logging.dir`` of a config that does not load whole (a secret not set here)."""
    from ..config.paths import load_yaml

    try:
        raw, _ = load_yaml(path.read_text(encoding="utf-8"), str(path))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the config: {exc}", file=str(path)) from exc
    section = raw.get("logging") if isinstance(raw, dict) else None
    value = section.get("dir") if isinstance(section, dict) else None
    if isinstance(value, str) and value and "${" not in value:
        return Path(value)
    return Path("logging")


def parser(prog: str, what: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=what)
    p.add_argument("--dir", help="the logging folder (default: logging.dir of --config, "
                                 "else ./logging)")
    p.add_argument("--config", help="an agent.yaml whose logging.dir to read")
    return p


def main(argv: Sequence[str], *, stdout: TextIO, stderr: TextIO) -> int:
    p = parser("python main.py runs", "List the runs, newest first.")
    p.add_argument("--json", action="store_true", help="one JSON object a line")
    try:
        args = p.parse_args(list(argv))
    except SystemExit as exc:
        return 2 if exc.code else 0
    from ..report.folder import find_runs, run_info
    from ..report.runs import runs_table

    try:
        base = logging_dir(args.dir, args.config)
    except ConfigError as exc:
        stderr.write(f"error: {exc}\n")
        return 2
    infos = []
    for run_id, path in find_runs(base):
        try:
            infos.append(run_info(run_id, path))
        except OSError as exc:
            stderr.write(f"warning: {run_id}: cannot read it: {exc}\n")
    infos.sort(key=lambda i: (i.started_at or 0.0, i.run_id), reverse=True)
    if args.json:
        for info in infos:
            stdout.write(json.dumps(info.to_dict(), ensure_ascii=False) + "\n")
    elif not infos:
        stderr.write(f"no runs under {base}\n")
    else:
        stdout.write(runs_table(infos))
    return 0
