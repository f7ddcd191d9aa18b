"""Rebuilding a session from its run folder (pure: records and traces in, state out).

The journal is the truth: :func:`fold` replays the records of ``transcript.jsonl`` in order
and rebuilds the conversation, the turn, the accounts and the calls left open:

* ``session_start`` with a task and ``user`` add user messages; a complete ``assistant``
  adds its parts (opaque reasoning restored from ``reasoning.enc`` by request id and part
  index; an opaque part whose frame is missing is dropped whole, never sent half);
  ``tool_result`` records make the tool message that answers the assistant's calls;
  ``context_compacted`` replays the compaction;
* a call of the last assistant message without a result is *pending*: ``started`` says
  whether its ``tool_start`` was written (it may have taken effect).

Runs written before the journal format (no ``parts`` in ``assistant`` records) resume from
their ``state.json``, which then held the whole conversation after every turn.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs
import msgspec

from ..accounting import Accounts
from ..model import Message, Part, ReasoningPart, ToolCallPart, ToolResultPart
from .records import (
    AssistantRecord,
    ContextCompacted,
    RecordBase,
    SessionEnd,
    SessionStart,
    ToolResultRecord,
    ToolStart,
    TurnEnd,
    UserMessage,
)

__all__ = ["Restored", "elision_marker", "fold", "restore_legacy"]


@attrs.define
class Restored:
    messages: list[Message] = attrs.field(factory=list)
    turn: int = 0                 # the last turn that has a complete assistant answer
    seq: int = 0                  # the last record's position
    accounts: Accounts = attrs.field(factory=Accounts)
    pending: list[ToolCallPart] = attrs.field(factory=list)
    started: set[str] = attrs.field(factory=set)
    turn_closed: bool = True      # the last turn has its turn_end
    last_status: str | None = None
    answer: str = ""
    legacy: bool = False
    started_at: float | None = None   # the first record's time


def elision_marker(name: str | None, call_id: str, size: int) -> str:
    """What an elided tool result becomes (the model can call the tool again)."""
    return (f"[result of {name or 'tool'} call {call_id} elided to fit the context window: "
            f"{size} characters; call the tool again if you need it]")


def _with_traces(parts: list[Part], traces: Mapping[tuple[str, int], dict[str, Any]],
                 request_id: str) -> list[Part]:
    out: list[Part] = []
    for i, p in enumerate(parts):
        if isinstance(p, ReasoningPart):
            trace = traces.get((request_id, i))
            if trace is not None:
                p = msgspec.convert(trace, ReasoningPart)
            elif p.signature == "" or p.encrypted == "":
                continue  # its signed payload is lost: drop the block whole
        out.append(p)
    return out


def _size(content: Any) -> int:
    return len(content) if isinstance(content, str) else len(msgspec.json.encode(content))


def fold(records: Iterable[RecordBase], traces: Iterable[Mapping[str, Any]] = ()) -> Restored:
    """Replay a journal (see the module docstring)."""
    by_request = {(t["request_id"], t["part"]): t["reasoning"] for t in traces
                  if "request_id" in t}
    r = Restored()
    calls: list[ToolCallPart] = []          # the open calls of the last assistant message
    results: dict[str, ToolResultPart] = {}
    results_at: int | None = None           # index of the tool message being built
    for rec in records:
        r.seq = max(r.seq, rec.seq)
        if r.started_at is None and rec.ts:
            r.started_at = rec.ts
        r.accounts.apply(rec)
        t = type(rec)
        if t is SessionStart:
            assert isinstance(rec, SessionStart)
            if rec.task:
                r.messages.append(Message.user(rec.task))
                calls, results, results_at = [], {}, None
        elif t is UserMessage:
            assert isinstance(rec, UserMessage)
            r.messages.append(Message.user(rec.text))
            calls, results, results_at = [], {}, None
        elif t is AssistantRecord:
            assert isinstance(rec, AssistantRecord)
            if rec.status != "complete":
                continue
            if rec.parts is None:
                r.legacy = True
                continue
            parts = _with_traces(list(rec.parts), by_request, rec.request_id)
            r.messages.append(Message("assistant", parts))
            r.turn, r.turn_closed, r.answer = rec.turn, False, rec.text
            calls = [p for p in parts if isinstance(p, ToolCallPart)]
            results, results_at = {}, None
        elif t is ToolStart:
            assert isinstance(rec, ToolStart)
            r.started.add(rec.call_id)
        elif t is ToolResultRecord:
            assert isinstance(rec, ToolResultRecord)
            if rec.call_id not in {c.id for c in calls}:
                continue
            results[rec.call_id] = ToolResultPart(
                rec.call_id, rec.content, is_error=not rec.ok, name=rec.name or None,
                kind=rec.kind, meta=rec.meta)  # type: ignore[arg-type]
            ordered = [results[c.id] for c in calls if c.id in results]
            if results_at is None:
                results_at = len(r.messages)
                r.messages.append(Message("tool", list(ordered)))
            else:
                r.messages[results_at] = Message("tool", list(ordered))
        elif t is TurnEnd:
            r.turn_closed = True
        elif t is ContextCompacted:
            assert isinstance(rec, ContextCompacted)
            r.messages = compact_replay(r.messages, rec)
            if results_at is not None:
                results_at = next((i for i in range(len(r.messages) - 1, -1, -1)
                                   if r.messages[i].role == "tool"), None)
        elif t is SessionEnd:
            assert isinstance(rec, SessionEnd)
            r.last_status = rec.status
    r.pending = [c for c in calls if c.id not in results]
    return r


def compact_replay(messages: list[Message], rec: ContextCompacted) -> list[Message]:
    """Apply a ``context_compacted`` record to a conversation: elide the named results,
    then replace the summarized range by the summary."""
    out = messages
    if rec.elided:
        elided = set(rec.elided)
        out = []
        for m in messages:
            if m.role == "tool" and any(isinstance(p, ToolResultPart) and p.call_id in elided
                                        for p in m.parts):
                parts: list[Part] = []
                for p in m.parts:
                    if isinstance(p, ToolResultPart) and p.call_id in elided:
                        p = msgspec.structs.replace(
                            p, content=elision_marker(p.name, p.call_id, _size(p.content)))
                    parts.append(p)
                m = Message(m.role, parts)
            out.append(m)
    if rec.summarized is not None and rec.summary is not None and len(rec.summarized) == 2:
        start, end = rec.summarized
        out = [*out[:start], Message.user(rec.summary), *out[end:]]
    return out


def restore_legacy(state: Mapping[str, Any], traces: Iterable[Mapping[str, Any]]
                   ) -> list[Message]:
    """The conversation of a run written before the journal format: ``state.json`` held it
    whole, and trace frames were keyed by message index."""
    messages = msgspec.convert(state["messages"], list[Message])
    for t in traces:
        m, p = t.get("message"), t.get("part")
        if isinstance(m, int) and isinstance(p, int) and m < len(messages) \
                and p < len(messages[m].parts):
            messages[m].parts[p] = msgspec.convert(t["reasoning"], ReasoningPart)
    return messages
