"""Rebuilding a session from its run folder (pure: records and traces in, state out).

The journal is the truth: :func:`fold` replays the records of ``transcript.jsonl`` in order
and rebuilds the conversation, the turn, the accounts and the calls left open:

* ``session_start`` with a task and ``user`` add user messages; a complete ``assistant``
  adds its parts (opaque reasoning and a vendor's compaction item restored from
  ``reasoning.enc`` by request id and part index; an opaque part whose frame is missing is
  dropped whole, never sent half); ``tool_result`` records make the tool message that
  answers the assistant's calls; ``context_compacted`` replays the compaction exactly as
  the session made it (``compact_replay``, with the context package's own edits);
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
from ..context.ledger import elided_result, is_elided, without_reasoning
from ..model import (
    BuiltinToolPart,
    Message,
    Part,
    ReasoningPart,
    TextPart,
    ToolCallPart,
    ToolResultPart,
)
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

__all__ = ["Restored", "compact_replay", "fold", "restore_legacy"]


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


def _with_traces(parts: list[Part], traces: Mapping[tuple[str, int], Mapping[str, Any]],
                 request_id: str) -> list[Part]:
    out: list[Part] = []
    for i, p in enumerate(parts):
        if isinstance(p, ReasoningPart):
            trace = traces.get((request_id, i))
            if trace is not None and "reasoning" in trace:
                p = msgspec.convert(trace["reasoning"], ReasoningPart)
            elif p.signature == "" or p.encrypted == "":
                continue  # its signed payload is lost: drop the block whole
        elif isinstance(p, BuiltinToolPart) and p.raw is not None \
                and p.raw.get("encrypted_content") == "":
            trace = traces.get((request_id, i))
            if trace is None or "builtin" not in trace:
                continue  # a compaction item without its payload cannot go back
            p = msgspec.convert(trace["builtin"], BuiltinToolPart)
        out.append(p)
    return out


def fold(records: Iterable[RecordBase], traces: Iterable[Mapping[str, Any]] = ()) -> Restored:
    """Replay a journal (see the module docstring)."""
    by_request = {(t["request_id"], t["part"]): t for t in traces if "request_id" in t}
    r = Restored()
    calls: list[ToolCallPart] = []          # the open calls of the last assistant message
    results: dict[str, ToolResultPart] = {}
    results_at: int | None = None           # index of the tool message being built
    where: dict[str, int] = {}              # call id -> index of the message with its result
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
            where[rec.call_id] = results_at
        elif t is TurnEnd:
            r.turn_closed = True
        elif t is ContextCompacted:
            assert isinstance(rec, ContextCompacted)
            if compact_replay(r.messages, rec, where):  # indexes moved
                where = _results_index(r.messages)
                if results_at is not None:
                    results_at = next((i for i in range(len(r.messages) - 1, -1, -1)
                                       if r.messages[i].role == "tool"), None)
        elif t is SessionEnd:
            assert isinstance(rec, SessionEnd)
            r.last_status = rec.status
    r.pending = [c for c in calls if c.id not in results]
    return r


def _results_index(messages: list[Message]) -> dict[str, int]:
    return {p.call_id: i for i, m in enumerate(messages) for p in m.parts
            if isinstance(p, ToolResultPart)}


def compact_replay(messages: list[Message], rec: ContextCompacted,
                   where: Mapping[str, int] | None = None) -> bool:
    """Apply a ``context_compacted`` record to a conversation, in place, with the edits the
    session made (``runtime.context.ledger``): elide the named results, drop the reasoning
    of the named assistant messages, replace the summarized span by the message recorded.
    ``where`` maps call ids to the index of the message holding their result (found by a
    scan without it). A span that does not fall on turn boundaries of this conversation is
    not replaced (no call is ever parted from its result). Returns whether a span was
    replaced (indexes moved)."""
    if rec.elided:
        index = where if where is not None else _results_index(messages)
        names = {p.id: p.name for m in messages if m.role == "assistant" for p in m.parts
                 if isinstance(p, ToolCallPart)}
        elided = set(rec.elided)
        for i in sorted({index[c] for c in elided if c in index}):
            m = messages[i]
            messages[i] = Message(m.role, [
                elided_result(p, names.get(p.call_id))
                if isinstance(p, ToolResultPart) and p.call_id in elided and not is_elided(p)
                else p for p in m.parts])
    for i in rec.reasoning_dropped:
        if 0 <= i < len(messages) and messages[i].role == "assistant":
            messages[i] = without_reasoning(messages[i])[0]
    if rec.summarized is None or rec.summary is None or len(rec.summarized) != 2:
        return False
    start, end = rec.summarized
    if not 0 <= start < end <= len(messages) or messages[start].role == "tool" or (
            end < len(messages) and messages[end].role == "tool"):
        return False
    messages[start:end] = [Message("user", [TextPart(rec.summary, meta=rec.summary_meta)])]
    return True


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
