"""Comparing two runs as a person debugging a replay would (pure but for reading files).

Two runs of the same session — a recording and its replay from the cache, or a run and its
rerun — legitimately differ in timestamps, ids (run, request, provider request), record
positions, durations, how requests got their connections (``connection``, ``pool_wait``),
the cache's own bookkeeping (``cache`` records, ``cached`` flags, costs of hits), retries and
warnings. ``comparable`` keeps everything else: the user turns,
every answer and its parts, every tool call and its arguments, every tool result, usage,
finish reasons, the end status. ``differences`` lists what differs, as a unified diff.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .handle import read_journal
from .records import RecordBase

__all__ = ["IGNORED_FIELDS", "IGNORED_TYPES", "comparable", "differences"]

# records that say how a run went, not what it did
IGNORED_TYPES = frozenset({"cache", "request", "warning", "provider_error", "session_start",
                           "text_delta"})
# fields that differ between two runs of the same conversation
IGNORED_FIELDS = frozenset({"ts", "run_id", "seq", "request_id", "provider_request_id",
                            "duration", "ttft", "attempts", "attempt", "cached", "cost_usd",
                            "totals", "message", "connection", "pool_wait"})


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in sorted(value.items()) if k not in IGNORED_FIELDS}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def comparable(lines: Iterable[bytes]) -> list[str]:
    """One canonical JSON line per record that matters (see the module docstring)."""
    out = []
    for line in lines:
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if not isinstance(rec, dict) or rec.get("type") in IGNORED_TYPES:
            continue
        out.append(json.dumps(_strip(rec), sort_keys=True, ensure_ascii=False))
    return out


def differences(a: Path, b: Path) -> list[str]:
    """The unified diff of two run folders' comparable records (empty: same run)."""
    def lines(run: Path) -> list[str]:
        return comparable(line for _, line in _records(run))

    return list(difflib.unified_diff(lines(a), lines(b), fromfile=str(a), tofile=str(b),
                                     lineterm=""))


def _records(run: Path) -> list[tuple[RecordBase, bytes]]:
    if not (run / "transcript.jsonl").is_file():
        raise FileNotFoundError(f"{run} has no transcript.jsonl")
    return read_journal(run)
