"""The numbers of a batch: one ``Tally`` per task, folded from its records, and
``batch.json`` computed from the tallies (pure).

A task's tally is built the same way whether its records arrive live
(``Session.events()``) or are read back from its run folder on a rerun, so a rerun that
runs nothing computes the same ``batch.json`` byte for byte. Everything in ``batch.json``
derives from the tasks' records: totals are the sum of the tasks' ``session_end`` totals
(which are their ``summary.json`` totals), latencies are the ``assistant`` durations, the
start and end times are those of the tasks' sessions.

No I/O and no trio.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Literal

import attrs

from ..accounting import Accounts, percentile
from ..session.outcome import EXIT_CODES
from ..session.records import RecordBase, SessionEnd, SessionStart
from .batch_tasks import TaskSpec

__all__ = [
    "SETTLED",
    "STATUS_ORDER",
    "Tally",
    "batch_document",
    "batch_exit_code",
    "counts",
    "plan",
    "progress",
    "sum_totals",
    "summary_lines",
]

SETTLED = frozenset({"finished", "limit"})
"""Statuses a rerun leaves alone: the model answered, or a limit that a resume would hit
again at once. Every other ended status is resumed from the journal."""

STATUS_ORDER = ("finished", "limit", "provider_failed", "error", "interrupted", "terminated",
                "cancelled", "incomplete", "running", "pending")
_TOKENS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens",
           "reasoning_tokens", "total_tokens")
_SEVERITY = ("error", "provider_failed", "limit")     # the exit code of a batch: 1, then 3, 4

Plan = Literal["skip", "resume", "start"]


@attrs.define
class Tally:
    """One task's state and numbers. ``status`` is ``pending`` (no record yet),
    ``running`` (a session of this process runs it: ``live``), ``incomplete`` (its
    journal's last run has no ``session_end``: its process died) or the status of its last
    ``session_end``."""

    accounts: Accounts = attrs.field(factory=Accounts)
    status: str = "pending"
    exit_code: int | None = None
    turns: int = 0
    message: str | None = None
    totals: dict[str, Any] | None = None
    runs: int = 0
    active_s: float = 0.0
    started_at: float | None = None
    ended_at: float | None = None
    provider: str | None = None
    model: str | None = None
    live: bool = False
    _open_at: float | None = None
    _end_status: str | None = None    # the status of the last session_end, if it is last

    @classmethod
    def of(cls, records: Iterable[RecordBase]) -> Tally:
        """The tally of a journal read back from disk."""
        tally = cls()
        for rec in records:
            tally.apply(rec)
        if tally._open_at is not None:
            tally.status = "incomplete"
        return tally

    @classmethod
    def running(cls) -> Tally:
        """The tally of a task a session of this process is about to run; its records
        (all of them, from the start of its journal) are applied as they arrive."""
        return cls(status="running", live=True)

    def apply(self, rec: RecordBase) -> None:
        """Fold one record (in journal order)."""
        self.accounts.apply(rec)
        self.turns = max(self.turns, rec.turn)
        t = type(rec)
        if t is SessionStart:
            assert isinstance(rec, SessionStart)
            self.runs += 1
            self._open_at, self._end_status = rec.ts, None
            if self.started_at is None:
                self.started_at = rec.ts
            self.provider = rec.providers[0] if rec.providers else self.provider
            self.model = rec.model or self.model
            if not self.live:
                self.status = "running"
        elif t is SessionEnd:
            assert isinstance(rec, SessionEnd)
            if self._open_at is not None:
                self.active_s += max(0.0, rec.ts - self._open_at)
            self._open_at, self._end_status = None, rec.status
            self.ended_at = rec.ts
            self.exit_code, self.turns = rec.exit_code, rec.turns
            self.message, self.totals = rec.message, dict(rec.totals)
            if not self.live:
                self.status = rec.status

    def settle(self, status: str, exit_code: int, *, turns: int, message: str | None,
               totals: dict[str, Any], at: float) -> None:
        """A live session ended with this result. Its ``session_end`` is the truth when it
        arrived (a rerun reads the same record back); otherwise (its run folder could not
        be written, or it never started) the result is."""
        self.live = False
        if self._end_status == status:
            self.status = status
            return
        if self._open_at is not None:
            self.active_s += max(0.0, at - self._open_at)
            self._open_at = None
        self.ended_at = at
        self.status, self.exit_code, self.turns = status, exit_code, turns
        self.message, self.totals = message or None, dict(totals)

    def fail(self, message: str, at: float) -> None:
        """The task could not even start this time (its folder or journal is unusable)."""
        self.live = False
        self.status, self.exit_code, self.message, self.ended_at = "error", 1, message, at

    @property
    def ended(self) -> bool:
        return self.status not in ("pending", "running", "incomplete")

    def current_totals(self) -> dict[str, Any]:
        """Token and cost totals: the last ``session_end``'s, or the live ones while it
        runs."""
        if self.totals is not None and self.status != "running":
            return self.totals
        return self.accounts.totals()

    def latencies(self) -> list[float]:
        """The duration of every complete (not cached) response."""
        return [x for acc in self.accounts.providers.values() for x in acc.latencies]

    def row(self, spec: TaskSpec, folder: str | None) -> dict[str, Any]:
        """The task's row in ``batch.json``."""
        totals = self.current_totals()
        return {
            "id": spec.id, "line": spec.line, "status": self.status,
            "exit_code": self.exit_code, "turns": self.turns,
            "cost_usd": totals.get("cost_usd", 0.0),
            "tokens": totals.get("total_tokens", 0),
            "duration_s": round(self.active_s, 6) if self.runs else None,
            "runs": self.runs, "provider": self.provider, "model": self.model,
            "folder": folder if self.status != "pending" else None,
            "message": self.message if self.status != "finished" else None,
            "totals": {k: totals.get(k, 0) for k in (*_TOKENS, "cost_usd")},
        }


def plan(tally: Tally) -> Plan:
    """What a run of the batch does with a task found in this state on disk."""
    if tally.status == "pending":
        return "start"
    if tally.status in SETTLED:
        return "skip"
    return "resume"


def batch_exit_code(statuses: Iterable[str], stopped: str | None = None) -> int:
    """0 when every task finished; else the most serious code among the tasks (1 an internal
    failure, then 3 a provider failure, then 4 a limit); 130 / 143 when the batch was
    interrupted / terminated."""
    if stopped is not None:
        return EXIT_CODES.get(stopped, 130)
    seen = set(statuses)
    for status in _SEVERITY:
        if status in seen:
            return EXIT_CODES[status]
    rest = seen - {"finished"}
    if not rest:
        return 0
    return max(EXIT_CODES.get(s, 1) for s in rest)


def _p(values: list[float]) -> dict[str, float | None]:
    return {"p50": percentile(values, 50), "p95": percentile(values, 95)}


def counts(statuses: Iterable[str]) -> dict[str, int]:
    """Tasks by status, in a fixed order."""
    seen: dict[str, int] = {}
    for s in statuses:
        seen[s] = seen.get(s, 0) + 1
    known = [s for s in STATUS_ORDER if s in seen]
    return {s: seen[s] for s in [*known, *sorted(set(seen) - set(known))]}


def sum_totals(tallies: Iterable[Tally]) -> dict[str, Any]:
    out: dict[str, Any] = dict.fromkeys(_TOKENS, 0)
    cost = 0.0
    for t in tallies:
        totals = t.current_totals()
        for k in _TOKENS:
            out[k] += int(totals.get(k, 0))
        cost += float(totals.get("cost_usd", 0.0))
    out["cost_usd"] = round(cost, 8)
    return out


def batch_document(*, batch_id: str, state: str, specs: Sequence[TaskSpec],
                   tallies: Sequence[Tally], folders: Sequence[str | None], config: str,
                   tasks_file: str, folder: str, started_at: float,
                   rows: Sequence[dict[str, Any]] | None = None) -> dict[str, Any]:
    """``batch.json``. ``state``: ``running``, ``complete``, ``interrupted``,
    ``terminated`` or ``error``; ``started_at`` counts when no task has started yet;
    ``rows``: the tasks' rows when the caller keeps them (else made from the tallies)."""
    statuses = [t.status for t in tallies]
    stopped = state if state in ("interrupted", "terminated") else None
    starts = [t.started_at for t in tallies if t.started_at is not None]
    ends = [t.ended_at for t in tallies if t.ended_at is not None]
    turn_latencies = [x for t in tallies for x in t.latencies()]
    durations = [t.active_s for t in tallies if t.ended and t.runs]
    return {
        "batch_id": batch_id,
        "state": state,
        "exit_code": batch_exit_code(statuses, stopped) if state != "running" else None,
        "config": config,
        "tasks_file": tasks_file,
        "folder": folder,
        "started_at": min(starts) if starts else started_at,
        "ended_at": (max(ends) if ends else None) if state != "running" else None,
        "total": len(specs),
        "counts": counts(statuses),
        "totals": sum_totals(tallies),
        "latency_s": {"turn": _p(turn_latencies), "session": _p(durations)},
        "tasks": list(rows) if rows is not None else [
            t.row(s, f) for s, t, f in zip(specs, tallies, folders, strict=True)],
    }


def progress(tallies: Sequence[Tally]) -> dict[str, Any]:
    """What the progress display shows: done/total, running, failed, tokens, cost."""
    done = sum(t.ended for t in tallies)
    totals = sum_totals(tallies)
    return {
        "total": len(tallies), "done": done,
        "running": sum(t.status == "running" for t in tallies),
        "finished": sum(t.status == "finished" for t in tallies),
        "failed": sum(t.ended and t.status not in SETTLED for t in tallies),
        "limit": sum(t.status == "limit" for t in tallies),
        "tokens": totals["total_tokens"], "cost_usd": totals["cost_usd"],
    }


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def summary_lines(doc: dict[str, Any], *, listed: int = 20) -> list[str]:
    """The summary printed on stdout at the end: counts, totals, latencies, where the
    answers are, and the tasks that did not finish (the first ``listed``)."""
    t, lat = doc["totals"], doc["latency_s"]
    width = max(len(s) for s in doc["counts"]) if doc["counts"] else 6
    lines = [f"batch {doc['batch_id']}: {doc['state']}, exit code {doc['exit_code']}, "
             f"{doc['total']} tasks"]
    lines += [f"  {status:<{width}}  {n:>6}" for status, n in doc["counts"].items()]
    lines.append(f"tokens {t['total_tokens']:,} (input {t['input_tokens']:,}, output "
                 f"{t['output_tokens']:,}, cache read {t['cache_read_tokens']:,}) · cost "
                 f"${t['cost_usd']:.4f}")
    lines.append(f"turn latency p50 {_seconds(lat['turn']['p50'])}, p95 "
                 f"{_seconds(lat['turn']['p95'])} · session p50 "
                 f"{_seconds(lat['session']['p50'])}, p95 {_seconds(lat['session']['p95'])}")
    unfinished = [r for r in doc["tasks"] if r["status"] != "finished"]
    for row in unfinished[:listed]:
        message = f": {row['message']}" if row.get("message") else ""
        lines.append(f"  [{row['status']}] {row['id']}{message}")
    if len(unfinished) > listed:
        lines.append(f"  ... and {len(unfinished) - listed} more not finished (batch.json)")
    lines.append(f"answers: the transcript.jsonl of each run folder {doc['folder']}/<task id>/; "
                 f"every number: {doc['folder']}/batch.json")
    return lines
