"""The audit log's hash chain (pure): sealing records and verifying a file.

``logging/audit.jsonl`` holds one JSON object a line. Each record carries ``seq`` (1, 2,
...), ``prev`` (the ``hash`` of the record before it; 64 zeros for the first) and ``hash``:
the SHA-256 of the record's canonical JSON without ``hash`` (keys sorted, no spaces). So an
edited line no longer matches its hash, a removed line breaks the next line's ``prev`` and
leaves a gap in ``seq``, and a moved line breaks both order and ``prev``. Truncating the
tail leaves a valid shorter chain: compare the head hash that ``verify`` reports with one
kept elsewhere (``audit verify --expect-head``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

import attrs

__all__ = ["GENESIS", "Problem", "Report", "seal", "verify_lines"]

GENESIS = "0" * 64


def _digest(record: dict[str, Any]) -> str:
    body = {k: v for k, v in record.items() if k != "hash"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def seal(record: dict[str, Any], seq: int, prev: str) -> tuple[bytes, str]:
    """The line (with its newline) of ``record`` as the ``seq``-th link after ``prev``,
    and its hash."""
    sealed = {**record, "seq": seq, "prev": prev}
    sealed["hash"] = _digest(sealed)
    line = json.dumps(sealed, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return line.encode("utf-8") + b"\n", sealed["hash"]


@attrs.frozen
class Problem:
    line: int
    what: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.what}"


@attrs.frozen
class Report:
    records: int
    head: str                    # the hash of the last record (GENESIS when empty)
    problems: tuple[Problem, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_lines(lines: Iterable[bytes]) -> Report:
    """Check a whole log; every problem names its line (1-based) and what happened to it."""
    problems: list[Problem] = []
    parsed: list[tuple[int, dict[str, Any]]] = []
    for n, raw in enumerate(lines, 1):
        if not raw.strip():
            problems.append(Problem(n, "empty line"))
            continue
        try:
            rec = json.loads(raw)
        except ValueError:
            problems.append(Problem(n, "not JSON (edited or torn)"))
            continue
        if not isinstance(rec, dict) or not isinstance(rec.get("hash"), str):
            problems.append(Problem(n, "not an audit record (no hash)"))
            continue
        parsed.append((n, rec))
    present = {rec["seq"] for _, rec in parsed if isinstance(rec.get("seq"), int)}
    prev, expected, head = GENESIS, 1, GENESIS
    for n, rec in parsed:
        seq = rec.get("seq")
        if _digest(rec) != rec["hash"]:
            problems.append(Problem(n, "edited: its content does not match its hash"))
        elif rec.get("prev") != prev:
            problems.append(Problem(n, _broken_link(seq, expected, present)))
        prev = head = rec["hash"]
        if isinstance(seq, int):
            expected = max(expected, seq + 1)
    problems.sort(key=lambda p: p.line)
    return Report(len(parsed), head, tuple(problems))


def _broken_link(seq: Any, expected: int, present: set[int]) -> str:
    """Why a record does not follow the one before it."""
    if not isinstance(seq, int):
        return "does not follow the line before it (prev hash mismatch)"
    if seq < expected:
        return f"out of order: record {seq} comes after record {expected - 1} (reordered)"
    missing = [s for s in range(expected, seq) if s not in present]
    if seq > expected and not missing:
        return f"out of order: record {seq} comes before record {expected} (reordered)"
    if missing:
        span = (f"record {missing[0]}" if len(missing) == 1 else
                f"records {missing[0]}..{missing[-1]}")
        return f"{span} missing before it (removed)"
    return "does not follow the line before it (prev hash mismatch: a line near it was moved)"
