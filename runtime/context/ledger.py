"""The conversation's token ledger (pure): one estimate per message, kept up to date.

The conductor's conversation only grows at its end between two requests, so the ledger
estimates each message once, when it first sees it, and keeps a running total; what can
be shrunk (messages holding tool results, assistant messages holding reasoning) waits in
queues, oldest first. A fit at turn 1,000 therefore costs the messages added since the
last one plus the compactions it makes, never a walk of the history. ``work`` counts the
messages estimated, for the tests that prove it.

The ledger edits the conversation list in place (it is the conductor's own list, handed to
``sync``): an elided result or dropped reasoning replaces that one message by a new
``Message``; a summary replaces a slice. ``take_changes`` tells the owner of the list which
messages were replaced since it last asked (the conductor's per-provider views follow them).
If the list it is given is not the one it last saw grown at its end, it starts over (a
resumed or replaced conversation). The first ``pinned`` messages (a history given to the
session before its task) are counted but never shrunk.

The edits are plain functions too (``elided_result``, ``without_reasoning``), so that a
resumed session replays a ``context_compacted`` record with exactly the same result.
"""

from __future__ import annotations

import collections
from typing import Any

import msgspec

from ..model import (
    BuiltinToolPart,
    Message,
    Part,
    ReasoningPart,
    TextPart,
    ToolCallPart,
    ToolResultPart,
)
from .estimate import Counter, message_tokens

__all__ = ["ELIDED_PREFIX", "SUMMARY_META", "Ledger", "elided_result", "elision_marker",
           "is_elided", "is_plain_user", "is_vendor_compaction", "summarized_turns",
           "without_reasoning"]

ELIDED_PREFIX = "[elided to save context: "
SUMMARY_META = "context_summary"


def elision_marker(name: str, call_id: str, chars: int) -> str:
    """What an elided tool result says instead of its content (it depends on the result
    alone, so a resumed session writes the same marker)."""
    return (f"{ELIDED_PREFIX}the result of {name} (call {call_id}), {chars} characters. "
            f"Call {name} again if you need it.]")


def is_elided(r: ToolResultPart) -> bool:
    """The result's content is an elision marker."""
    return isinstance(r.content, str) and r.content.startswith(ELIDED_PREFIX)


def _chars(r: ToolResultPart) -> int:
    if isinstance(r.content, str):
        return len(r.content)
    return sum(len(c.text) if isinstance(c, TextPart) else 0 for c in r.content)


def elided_result(p: ToolResultPart, name: str | None) -> ToolResultPart:
    """``p`` with its content replaced by the marker (``name``: the tool's, when the result
    does not carry it)."""
    tool = p.name or name or "the tool"
    return msgspec.structs.replace(p, content=elision_marker(tool, p.call_id, _chars(p)))


def without_reasoning(m: Message) -> tuple[Message, int]:
    """``m`` without its reasoning parts (whole, never part of one) and without the
    Responses item ids of its calls, which would otherwise ask for the dropped reasoning
    items; and how many parts were dropped (0: ``m`` itself is returned)."""
    parts: list[Part] = []
    dropped = 0
    for p in m.parts:
        if isinstance(p, ReasoningPart):
            dropped += 1
        elif isinstance(p, ToolCallPart) and p.item_id is not None:
            parts.append(msgspec.structs.replace(p, item_id=None))
        else:
            parts.append(p)
    return (Message(m.role, parts) if dropped else m), dropped


def is_plain_user(m: Message) -> bool:
    """A user message that answers no tool call (a task, a question, a summary)."""
    return m.role == "user" and not any(isinstance(p, ToolResultPart) for p in m.parts)


def is_vendor_compaction(p: Part) -> bool:
    """A compaction item a vendor returned (Responses ``compaction`` item, Anthropic
    ``compaction`` block): everything before it is summarized by the vendor."""
    return isinstance(p, BuiltinToolPart) and p.item_type == "compaction"


class Ledger:
    """Per-message token estimates of one conversation, and what may still shrink."""

    def __init__(self, counter: Counter | None = None, *, pinned: int = 0) -> None:
        self.counter = counter
        self.pinned = pinned          # leading messages never shrunk (a given history)
        self.work = 0
        self.changed: list[int] = []  # messages replaced since ``take_changes``
        self.reshaped = False         # a span was replaced (indexes moved)
        self._clear()

    def _clear(self) -> None:
        self.messages: list[Message] = []
        self.sizes: list[int] = []
        self.total = 0
        self.turns: list[int] = []                       # index of each assistant message
        self.results: collections.deque[int] = collections.deque()   # un-elided results
        self.thoughts: collections.deque[int] = collections.deque()  # reasoning holders
        self.names: dict[str, str] = {}                  # call id -> tool name
        self.first_task: int | None = None
        self.turn_offset = 0          # assistant messages summarized away before this list
        self.compaction: int | None = None    # index of the latest vendor compaction
        self.before_compaction = 0            # estimated tokens the vendor compacted
        self._last: Message | None = None
        self.changed = []
        self.reshaped = True

    def take_changes(self) -> tuple[list[int], bool]:
        """The indexes of the messages replaced since the last call, and whether the list
        was reshaped (a span replaced, or a restart): then every index may have moved."""
        changed, reshaped = self.changed, self.reshaped
        self.changed, self.reshaped = [], False
        return changed, reshaped

    # ---- following the conversation ----------------------------------------------------

    def sync(self, messages: list[Message]) -> None:
        """Estimate the messages added since the last call (all of them when ``messages``
        is not the conversation last seen, grown at its end)."""
        n = len(self.sizes)
        grown = len(messages) >= n and (n == 0 or messages[n - 1] is self._last)
        if not grown:
            self._clear()
            n = 0
        self.messages = messages
        for i in range(n, len(messages)):
            self._add(i, messages[i])
        self._last = messages[-1] if messages else None

    def _add(self, i: int, m: Message) -> None:
        size = message_tokens(m, self.counter)
        self.sizes.append(size)
        self.total += size
        self.work += 1
        if m.role == "assistant":
            self.turns.append(i)
            for p in m.parts:
                if isinstance(p, ToolCallPart):
                    self.names[p.id] = p.name
                elif is_vendor_compaction(p):
                    self.compaction = i
                    self.before_compaction = self.total - size
        if i < self.pinned:
            return
        if m.role == "assistant" and any(isinstance(p, ReasoningPart) for p in m.parts):
            self.thoughts.append(i)
        if any(isinstance(p, ToolResultPart) and not is_elided(p) for p in m.parts):
            self.results.append(i)
        if is_plain_user(m):
            if self.first_task is None:
                self.first_task = i
            # a summary (or a note of removed turns) stands for the turns before the listed ones
            self.turn_offset = max(self.turn_offset, _summary_turns(m) or 0)

    @property
    def live_total(self) -> int:
        """Estimated tokens the provider reads: a vendor compaction stands for what came
        before it."""
        return self.total - self.before_compaction

    def keep_from(self, keep_turns: int) -> int:
        """Index of the first message of the last ``keep_turns`` turns (0: keep all). The
        user message that opened the oldest kept turn stays with it."""
        if len(self.turns) < keep_turns:
            return 0
        start = self.turns[-keep_turns]
        if start > 0 and is_plain_user(self.messages[start - 1]):
            start -= 1
        return start

    def _replace(self, i: int, m: Message) -> int:
        old = self.sizes[i]
        size = message_tokens(m, self.counter)
        self.work += 1
        self.messages[i] = m
        self.sizes[i] = size
        self.total += size - old
        if self.compaction is not None and i < self.compaction:
            self.before_compaction += size - old  # what a vendor compaction stands for
        if i == len(self.messages) - 1:
            self._last = m
        self.changed.append(i)
        return old - size

    # ---- shrinking ----------------------------------------------------------------------

    def elide_results(self, i: int) -> list[str]:
        """Replace the tool results of message ``i`` by markers; returns their call ids."""
        m = self.messages[i]
        ids: list[str] = []
        parts: list[Part] = []
        for p in m.parts:
            if isinstance(p, ToolResultPart) and not is_elided(p):
                parts.append(elided_result(p, self.names.get(p.call_id)))
                ids.append(p.call_id)
            else:
                parts.append(p)
        if ids:
            self._replace(i, Message(m.role, parts))
        return ids

    def drop_reasoning(self, i: int) -> int:
        """Drop every reasoning part of assistant message ``i`` (whole, never part of one),
        and the Responses item ids of its calls, which would otherwise ask for the dropped
        reasoning items. Returns how many parts were dropped."""
        m, dropped = without_reasoning(self.messages[i])
        if dropped:
            self._replace(i, m)
        return dropped

    def replace_span(self, start: int, end: int, m: Message) -> None:
        """Replace messages ``[start, end)`` by ``m`` (a summary), shifting the queues
        without re-estimating anything else."""
        size = message_tokens(m, self.counter)
        self.work += 1
        delta = end - start - 1
        gone = self.turns_in(start, end)
        change = size - sum(self.sizes[start:end])
        self.total += change
        self.messages[start:end] = [m]
        self.sizes[start:end] = [size]

        def shift(xs: Any) -> list[int]:
            return [x if x < start else x - delta for x in xs if not start <= x < end]

        self.turns = shift(self.turns)
        self.results = collections.deque(shift(self.results))
        self.thoughts = collections.deque(shift(self.thoughts))
        if self.compaction is not None:
            self.compaction = None if start <= self.compaction < end else (
                self.compaction if self.compaction < start else self.compaction - delta)
            if self.compaction is None:
                self.before_compaction = 0
            elif self.compaction >= start:  # the span was part of what it stands for
                self.before_compaction += change
        self.turn_offset += len(gone)
        self._last = self.messages[-1] if self.messages else None
        self.reshaped = True

    def turns_in(self, start: int, end: int) -> list[int]:
        """Indexes of the assistant messages in ``[start, end)``."""
        return [t for t in self.turns if start <= t < end]

    def ordinal(self, index: int) -> int:
        """The session-wide turn number (1-based) of the assistant message at ``index``."""
        return self.turn_offset + self.turns.index(index) + 1


def summarized_turns(m: Message) -> tuple[int, int] | None:
    """The turn range a summary message stands for (None for any other message)."""
    if m.role != "user":
        return None
    for p in m.parts:
        if isinstance(p, TextPart) and p.meta and isinstance(p.meta.get(SUMMARY_META), dict):
            turns = p.meta[SUMMARY_META].get("turns")
            if (isinstance(turns, list) and len(turns) == 2
                    and all(isinstance(t, int) for t in turns)):
                return turns[0], turns[1]
    return None


def _summary_turns(m: Message) -> int | None:
    turns = summarized_turns(m)
    return None if turns is None else turns[1]
