"""Reading run folders for ``runs`` and ``report`` (the I/O side; rendering is pure).

A logging folder holds run folders (``<run_id>/transcript.jsonl``) and batch folders
(``<batch_id>/<task_id>/transcript.jsonl``, with ``batch.json``); a run inside a batch is
named ``<batch_id>/<task_id>``. Only redacted files are read: ``transcript.jsonl``,
``summary.json`` and ``errors/turn_<n>.json``.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import attrs

from ..engine import valid_run_id
from ..errors import ConfigError
from ..session.handle import read_journal
from ..session.journal import TRANSCRIPT
from ..session.liveness import alive
from ..session.records import RecordBase, SessionEnd, SessionStart, decode_line
from .runs import RunInfo, info_from_journal, info_from_summary, task_of

__all__ = ["RunData", "find_runs", "load_run", "resolve_run", "run_info"]

_HEAD_LINES = 64
_TAIL_BYTES = 1 << 20
_ERRORS = re.compile(r"^turn_(\d+)\.json$")


@attrs.frozen
class RunData:
    """What a report is made of."""

    run_id: str
    path: Path
    records: list[RecordBase]
    summary: dict[str, Any] | None
    errors: dict[int, list[dict[str, Any]]]
    alive: bool | None


def _is_run(path: Path) -> bool:
    return (path / TRANSCRIPT).is_file()


def find_runs(base: Path) -> list[tuple[str, Path]]:
    """Every run folder under ``base``: ``(run id, folder)``; batch runs as
    ``batch/task``."""
    found: list[tuple[str, Path]] = []
    try:
        entries = sorted(os.scandir(base), key=lambda e: e.name)
    except (FileNotFoundError, NotADirectoryError):
        return []
    for entry in entries:
        if entry.name.startswith(".") or not entry.is_dir(follow_symlinks=False):
            continue
        path = Path(entry.path)
        if _is_run(path):
            found.append((entry.name, path))
            continue
        try:
            inner = sorted(os.scandir(path), key=lambda e: e.name)
        except OSError:
            continue
        for sub in inner:
            sub_path = Path(sub.path)
            if not sub.name.startswith(".") and sub.is_dir(follow_symlinks=False) \
                    and _is_run(sub_path):
                found.append((f"{entry.name}/{sub.name}", sub_path))
    return found


def _head(path: Path) -> list[RecordBase]:
    out: list[RecordBase] = []
    with open(path / TRANSCRIPT, "rb") as f:
        for _ in range(_HEAD_LINES):
            line = f.readline()
            if not line:
                break
            rec = decode_line(line.rstrip(b"\n"))
            if rec is not None:
                out.append(rec)
    return out


def _last_record(path: Path) -> RecordBase | None:
    """The journal's last complete line, read from the end."""
    with open(path / TRANSCRIPT, "rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(max(0, size - _TAIL_BYTES))
        tail = f.read()
    lines = tail.rstrip(b"\n").rsplit(b"\n", 1)
    return decode_line(lines[-1]) if lines and lines[-1] else None


def _summary(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((path / "summary.json").read_bytes())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _owner_alive(records: list[RecordBase]) -> bool | None:
    starts = [r for r in records if isinstance(r, SessionStart)]
    return alive(starts[-1].process) if starts else None


def run_info(run_id: str, path: Path) -> RunInfo:
    """One run's line: from ``summary.json`` when it is current, else the folded journal."""
    head = _head(path)
    last = _last_record(path)
    if isinstance(last, SessionEnd):
        return info_from_summary(run_id, _summary(path), last, task_of(head),
                                 head[0].ts if head else None)
    records = [rec for rec, _ in read_journal(path)]
    return info_from_journal(run_id, records, _owner_alive(records))


def _errors(path: Path) -> dict[int, list[dict[str, Any]]]:
    out: dict[int, list[dict[str, Any]]] = {}
    try:
        names = os.listdir(path / "errors")
    except OSError:
        return out
    for name in names:
        m = _ERRORS.match(name)
        if not m:
            continue
        try:
            data = json.loads((path / "errors" / name).read_bytes())
        except (OSError, ValueError):
            continue
        if isinstance(data, list):
            out[int(m.group(1))] = [d for d in data if isinstance(d, dict)]
    return out


def load_run(run_id: str, path: Path) -> RunData:
    records = [rec for rec, _ in read_journal(path)]
    live = None if records and isinstance(records[-1], SessionEnd) else _owner_alive(records)
    return RunData(run_id, path, records, _summary(path), _errors(path), live)


def resolve_run(base: Path, ref: str) -> tuple[str, Path, Path]:
    """A run named on the command line: ``last`` (the newest run), ``RUN_ID`` or
    ``BATCH_ID/TASK_ID``. Returns ``(run id, folder it lives in, run folder)``."""
    if ref == "last":
        runs = [run_info(rid, p) for rid, p in find_runs(base)]
        if not runs:
            raise ConfigError(f"there is no run under {base} to resume", path="--resume",
                              fix="start a run first, or pass --dir / --config")
        newest = max(runs, key=lambda i: (i.started_at or 0.0, i.run_id))
        ref = newest.run_id
    parts = ref.split("/")
    if len(parts) > 2 or not all(valid_run_id(p) for p in parts):
        raise ConfigError(f"invalid run id {ref!r}", path="RUN_ID",
                          fix="use a run id as `runs` lists it: ID or BATCH_ID/TASK_ID")
    folder = base / parts[0] if len(parts) == 2 else base
    return parts[-1], folder, folder / parts[-1]
