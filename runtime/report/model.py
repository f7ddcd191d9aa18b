"""A run, read back for people: the entries of its conversation and its numbers per turn
(pure: the records of ``transcript.jsonl``, ``summary.json`` and ``errors/`` in, a
``Report`` out; the renderers turn it into Markdown or HTML).

Every entry comes from a redacted file, so nothing reaches a report that the run folder
does not already show; the renderers escape it all.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from ..accounting import Accounts
from ..session.records import (
    ApprovalDecision,
    ApprovalRequest,
    AssistantRecord,
    ContextCompacted,
    ProviderErrorRecord,
    ReasoningRecord,
    RecordBase,
    RequestRecord,
    SessionEnd,
    SessionStart,
    ToolCallRecord,
    ToolRejected,
    ToolResultRecord,
    UsageRecord,
    UserMessage,
    WarningRecord,
)

__all__ = ["FOLD_CHARS", "Entry", "Report", "TurnStats", "build_report"]

FOLD_CHARS = 1200          # longer texts are folded (HTML <details>)
FOLD_LINES = 24


@attrs.define
class Entry:
    """One thing that happened, in journal order. ``kind``: session, user, assistant,
    partial, reasoning, tool_call, tool_result, rejected, approval, error, warning,
    compaction, end."""

    kind: str
    turn: int
    seq: int
    ts: float
    title: str
    text: str = ""
    meta: dict[str, str] = attrs.field(factory=dict)
    level: str = "info"          # info | ok | warn | error

    @property
    def folded(self) -> bool:
        return len(self.text) > FOLD_CHARS or self.text.count("\n") >= FOLD_LINES


@attrs.define
class TurnStats:
    turn: int
    provider: str = ""
    model: str = ""
    requests: int = 0            # HTTP attempts
    errors: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cost_usd: float | None = 0.0
    estimated: bool = False      # usage of an interrupted answer, estimated
    latency: float | None = None
    ttft: float | None = None
    status: str = ""             # complete | interrupted | failed | ""


@attrs.define
class Report:
    run_id: str
    status: str
    exit_code: int | None
    message: str
    started_at: float | None
    ended_at: float | None
    turns: int
    totals: dict[str, Any]
    providers: dict[str, Any]
    entries: list[Entry]
    stats: list[TurnStats]
    compactions: int = 0
    retries: int = 0


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return json.dumps(content, ensure_ascii=False, indent=2, default=str)


def _arguments(arguments: str) -> str:
    try:
        return json.dumps(json.loads(arguments), ensure_ascii=False, indent=2)
    except ValueError:
        return arguments


def _error_entry(rec: Mapping[str, Any], turn: int, seq: int, ts: float,
                 source: str = "") -> Entry:
    status = rec.get("status")
    delay = rec.get("delay")
    wait = float(delay) if delay is not None else 0.0
    retry = (f"retrying in {wait:.1f} s" if wait >= 1 else f"retrying in {wait:.2f} s") \
        if rec.get("will_retry") and delay is not None else "no retry"
    meta = {"provider": str(rec.get("provider", "")), "model": str(rec.get("model", "")),
            "kind": str(rec.get("kind", "")), "status": "-" if status is None else str(status),
            "attempt": str(rec.get("attempt", "")), "retry": retry}
    if rec.get("request_id"):
        meta["request"] = str(rec["request_id"])
    if source:
        meta["source"] = source
    text = str(rec.get("message", ""))
    if rec.get("hint"):
        text += f"\nhint: {rec['hint']}"
    if rec.get("details"):
        text += f"\nbody: {rec['details']}"
    return Entry("error", turn, seq, ts, f"Provider error: {meta['kind']} {meta['status']}",
                 text, meta, "warn" if rec.get("will_retry") else "error")


def _entry(rec: RecordBase) -> Entry | None:
    t, turn, seq, ts = type(rec), rec.turn, rec.seq, rec.ts
    if t is SessionStart:
        assert isinstance(rec, SessionStart)
        meta = {"providers": ", ".join(rec.providers), "model": rec.model,
                "tools": ", ".join(rec.tools) or "none"}
        title = "Session resumed" if rec.resumed else "Session started"
        return Entry("session", turn, seq, ts, title, "", meta)
    if t is UserMessage:
        assert isinstance(rec, UserMessage)
        return Entry("user", turn, seq, ts, "You", rec.text)
    if t is AssistantRecord:
        assert isinstance(rec, AssistantRecord)
        meta = {"provider": rec.provider, "model": rec.model or "",
                "latency": f"{rec.duration:.2f} s",
                "ttft": "-" if rec.ttft is None else f"{rec.ttft:.2f} s",
                "finish": rec.finish_reason or rec.stop}
        if rec.cached:
            meta["cached"] = "yes"
        if rec.status == "interrupted":
            return Entry("partial", turn, seq, ts, "Assistant (interrupted: kept for the "
                         "record, not in the conversation)", rec.text, meta, "warn")
        if not rec.text and rec.stop == "tool_calls":
            return None   # its calls follow
        return Entry("assistant", turn, seq, ts, "Assistant", rec.text or "(no text)", meta)
    if t is ReasoningRecord:
        assert isinstance(rec, ReasoningRecord)
        return Entry("reasoning", turn, seq, ts, f"Reasoning ({rec.kind})", rec.text)
    if t is ToolCallRecord:
        assert isinstance(rec, ToolCallRecord)
        return Entry("tool_call", turn, seq, ts, f"Tool call: {rec.name}",
                     _arguments(rec.arguments), {"call": rec.call_id})
    if t is ToolResultRecord:
        assert isinstance(rec, ToolResultRecord)
        state = ("interrupted" if rec.interrupted else "rejected" if rec.rejected
                 else "ok" if rec.ok else "error")
        return Entry("tool_result", turn, seq, ts, f"Tool result: {rec.name} ({state})",
                     _text(rec.content), {"call": rec.call_id,
                                          "duration": f"{rec.duration:.2f} s"},
                     "ok" if rec.ok else "error")
    if t is ToolRejected:
        assert isinstance(rec, ToolRejected)
        return Entry("rejected", turn, seq, ts, f"Tool call rejected: {rec.name}",
                     "\n".join(rec.errors), {"call": rec.call_id}, "error")
    if t is ApprovalRequest:
        assert isinstance(rec, ApprovalRequest)
        return Entry("approval", turn, seq, ts, f"Approval asked: {rec.name}", "",
                     {"call": rec.call_id})
    if t is ApprovalDecision:
        assert isinstance(rec, ApprovalDecision)
        verdict = "allowed" if rec.allow else "denied"
        return Entry("approval", turn, seq, ts, f"Approval: {verdict}", rec.reason or "",
                     {"call": rec.call_id, "by": rec.by or "-"}, "ok" if rec.allow else "warn")
    if t is ProviderErrorRecord:
        return _error_entry(_fields(rec), turn, seq, ts)
    if t is WarningRecord:
        assert isinstance(rec, WarningRecord)
        return Entry("warning", turn, seq, ts, f"Warning: {rec.code}", rec.message,
                     {"provider": rec.provider or ""}, "warn")
    if t is ContextCompacted:
        assert isinstance(rec, ContextCompacted)
        meta = {"strategy": rec.strategy,
                "tokens": f"{rec.tokens_before:,} -> {rec.tokens_after:,}",
                "elided": str(len(rec.elided))}
        if rec.summarized:
            meta["summarized"] = f"messages {rec.summarized[0]}-{rec.summarized[-1]}"
        if rec.reason:
            meta["reason"] = rec.reason
        return Entry("compaction", turn, seq, ts, "Context compacted", rec.summary or "", meta)
    if t is SessionEnd:
        assert isinstance(rec, SessionEnd)
        level = "ok" if rec.status == "finished" else "error"
        return Entry("end", turn, seq, ts, f"Session ended: {rec.status} (exit "
                     f"{rec.exit_code})", rec.message or "", {}, level)
    return None


def _fields(rec: RecordBase) -> dict[str, Any]:
    import msgspec

    out: dict[str, Any] = msgspec.to_builtins(rec)
    return out


def _stats(records: Sequence[RecordBase]) -> list[TurnStats]:
    turns: dict[int, TurnStats] = {}

    def of(n: int) -> TurnStats:
        return turns.setdefault(n, TurnStats(n))

    for rec in records:
        t = type(rec)
        if rec.turn < 1:
            continue
        if t is RequestRecord:
            assert isinstance(rec, RequestRecord)
            s = of(rec.turn)
            s.requests += 1
            s.provider, s.model = rec.provider, rec.model
        elif t is AssistantRecord:
            assert isinstance(rec, AssistantRecord)
            s = of(rec.turn)
            s.latency, s.ttft, s.status = rec.duration, rec.ttft, rec.status
            s.provider, s.model = rec.provider, rec.model or s.model
        elif t is UsageRecord:
            assert isinstance(rec, UsageRecord)
            s = of(rec.turn)
            s.input_tokens += rec.input_tokens
            s.output_tokens += rec.output_tokens
            s.cache_read_tokens += rec.cache_read_tokens
            s.estimated = s.estimated or rec.estimated
            if rec.cost_usd is None or s.cost_usd is None:
                s.cost_usd = None
            elif not rec.cached:
                s.cost_usd += rec.cost_usd
        elif t is ProviderErrorRecord:
            s = of(rec.turn)
            s.errors += 1
            s.status = s.status or "failed"
    return [turns[n] for n in sorted(turns)]


def _missing_errors(records: Sequence[RecordBase], errors: Mapping[int, list[dict[str, Any]]]
                    ) -> list[Entry]:
    """Failures in ``errors/turn_<n>.json`` that the transcript lacks (a torn journal)."""
    seen = {(r.request_id, r.attempt) for r in records if isinstance(r, ProviderErrorRecord)}
    out = []
    for turn, items in sorted(errors.items()):
        for item in items:
            if (item.get("request_id"), item.get("attempt")) not in seen:
                out.append(_error_entry(item, turn, 0, 0.0, f"errors/turn_{turn}.json"))
    return out


def build_report(run_id: str, records: Sequence[RecordBase], summary: Mapping[str, Any] | None,
                 errors: Mapping[int, list[dict[str, Any]]], alive: bool | None = None
                 ) -> Report:
    """The report of one run (see the module docstring)."""
    entries: list[Entry] = []
    for rec in records:
        e = _entry(rec)
        if e is not None:
            entries.append(e)
        if isinstance(rec, SessionStart) and rec.task:
            entries.append(Entry("user", rec.turn, rec.seq, rec.ts, "You", rec.task))
    entries.extend(_missing_errors(records, errors))
    acc = Accounts()
    for rec in records:
        acc.apply(rec)
    end = next((r for r in reversed(records) if isinstance(r, SessionEnd)), None)
    closed = bool(records) and isinstance(records[-1], SessionEnd)
    if closed and end is not None:
        status, code, message = end.status, end.exit_code, end.message or ""
    elif not records:
        status, code, message = "empty", None, "the transcript is empty"
    else:
        status = "running" if alive else "crashed"
        code = None
        message = ("the run is still going in another process" if alive else
                   "the journal ends without session_end: the process was killed or "
                   "crashed (resume it with --resume)")
    s = summary if closed and summary and summary.get("status") == status else {}
    started = s.get("started_at", records[0].ts if records else None)
    ended = s.get("ended_at", records[-1].ts if records else None)
    return Report(
        run_id=run_id, status=status, exit_code=code, message=message,
        started_at=started, ended_at=ended,
        turns=max((r.turn for r in records), default=0), totals=acc.totals(),
        providers={k: v.to_dict() for k, v in acc.providers.items()},
        entries=entries, stats=_stats(records),
        compactions=sum(isinstance(r, ContextCompacted) for r in records),
        retries=sum(isinstance(r, RequestRecord) and r.attempt > 1 for r in records))
