"""One line per run: what ``python main.py runs`` lists (pure: records and summaries in,
text out).

A run's truth is its journal. ``summary.json`` is the quick path, used when it belongs to
the journal's last ``session_end`` (a run resumed and then killed has a summary of its
earlier close). Otherwise the journal is folded (``restore.fold``): a run without a
``session_end`` is ``running`` when the process named by its last ``session_start`` is
alive, else ``crashed``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from ..session.records import RecordBase, SessionEnd, SessionStart, UserMessage
from ..session.restore import fold
from .cells import when

__all__ = ["RunInfo", "first_line", "info_from_journal", "info_from_summary", "runs_table",
           "task_of"]

TASK_WIDTH = 60


@attrs.frozen
class RunInfo:
    run_id: str                   # the folder under the logging dir ("batch/task" in a batch)
    status: str
    started_at: float | None
    turns: int
    tokens: int
    cost_usd: float
    task: str                     # its first line
    exit_code: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


def first_line(text: str | None, width: int = TASK_WIDTH) -> str:
    line = next((x.strip() for x in (text or "").splitlines() if x.strip()), "")
    return line if len(line) <= width else line[:width - 1] + "…"


def task_of(records: Iterable[RecordBase]) -> str:
    """The run's task: the first ``session_start`` task, else the first user message."""
    for rec in records:
        if isinstance(rec, SessionStart) and rec.task:
            return rec.task
        if isinstance(rec, UserMessage) and rec.text:
            return rec.text
    return ""


def info_from_summary(run_id: str, summary: Mapping[str, Any] | None, end: SessionEnd,
                      task: str, first_ts: float | None) -> RunInfo:
    """From ``summary.json`` when it describes the journal's last ``session_end``, else
    from that record itself (``first_ts``: the journal's first record's time)."""
    current = summary is not None and summary.get("status") == end.status \
        and summary.get("turns") == end.turns
    source = summary if current and summary is not None else {}
    totals = source.get("totals", end.totals)
    totals = totals if isinstance(totals, Mapping) else {}
    started = source.get("started_at", first_ts)
    return RunInfo(run_id, end.status, float(started) if isinstance(started, int | float)
                   else None, end.turns, int(totals.get("total_tokens", 0) or 0),
                   float(totals.get("cost_usd", 0.0) or 0.0), first_line(task), end.exit_code)


def info_from_journal(run_id: str, records: Sequence[RecordBase], alive: bool | None
                      ) -> RunInfo:
    """Folded from the whole journal. ``alive``: whether the process of the last
    ``session_start`` runs (None: unknown)."""
    if not records:
        return RunInfo(run_id, "empty", None, 0, 0, 0.0, "")
    restored = fold(records)
    last = records[-1]
    turns = max((r.turn for r in records), default=0)
    totals = restored.accounts.totals()
    if isinstance(last, SessionEnd):
        status, code = last.status, last.exit_code
    else:
        status, code = ("running" if alive else "crashed"), None
    return RunInfo(run_id, status, restored.started_at, turns, int(totals["total_tokens"]),
                   float(totals["cost_usd"]), first_line(task_of(records)), code)


def runs_table(infos: Sequence[RunInfo]) -> str:
    """The runs as an aligned text table (newest first, as given)."""
    head = ("RUN", "STATUS", "STARTED", "TURNS", "TOKENS", "COST", "TASK")
    rows = [head] + [(i.run_id, i.status, when(i.started_at), str(i.turns), f"{i.tokens:,}",
                      f"${i.cost_usd:.4f}", i.task) for i in infos]
    widths = [max(len(r[c]) for r in rows) for c in range(len(head) - 1)]
    right = {3, 4, 5}
    lines = []
    for r in rows:
        cells = [r[c].rjust(widths[c]) if c in right else r[c].ljust(widths[c])
                 for c in range(len(head) - 1)]
        lines.append("  ".join([*cells, r[-1]]).rstrip())
    return "\n".join(lines) + "\n"
