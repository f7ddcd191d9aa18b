"""The conversation of a session and what each provider entry may see of it (pure).

Opaque reasoning (signed thinking, encrypted reasoning items) and provider-executed tool
items carry the provider entry that produced them (``source``); only that entry gets them
back, so a failover never sends a foreign signature (and a message that loses its reasoning
that way also loses the Responses item ids of its calls, which would ask for it). Each
provider's view is kept up to date as messages are appended — the work per turn is the new
messages, not the history, so turn 1,000 costs what turn 10 does.

The size of the conversation is the context ledger's (``runtime.context.Ledger``): each
message is estimated once, when it joins, and the context manager that fits the
conversation into a window edits the same list through the same ledger. The views follow
its edits: a replaced message is replaced in each view, a replaced span rebuilds them.
"""

from __future__ import annotations

import attrs
import msgspec

from ..context.ledger import Ledger
from ..model import BuiltinToolPart, Message, Part, ReasoningPart, ToolCallPart
from .records import sanitize

__all__ = ["Conversation", "foreign_reasoning_removed"]


def _visible(m: Message, target: str) -> tuple[Message, int]:
    if m.role != "assistant":
        return m, 0
    foreign = [p for p in m.parts if isinstance(p, ReasoningPart | BuiltinToolPart)
               and p.source not in (None, target)]
    if not foreign:
        return m, 0
    parts = [p for p in m.parts if not any(p is f for f in foreign)]
    if any(isinstance(p, ReasoningPart) for p in foreign):  # no call may ask for it
        parts = [msgspec.structs.replace(p, item_id=None)
                 if isinstance(p, ToolCallPart) and p.item_id is not None else p
                 for p in parts]
    return Message(m.role, parts), len(foreign)


def _opaque_of(p: Part, source: str) -> bool:
    return isinstance(p, ReasoningPart | BuiltinToolPart) and p.source == source


def foreign_reasoning_removed(messages: list[Message], target: str) -> tuple[list[Message], int]:
    """The conversation as provider entry ``target`` may see it, and how many parts were
    dropped."""
    out, dropped = [], 0
    for m in messages:
        v, d = _visible(m, target)
        out.append(v)
        dropped += d
    return out, dropped


@attrs.define
class _View:
    messages: list[Message] = attrs.field(factory=list)
    done: int = 0
    dropped: int = 0
    reported: int = 0


@attrs.define
class Conversation:
    """Messages, per-provider views and their size (``ledger``)."""

    messages: list[Message] = attrs.field(factory=list)
    ledger: Ledger = attrs.field(factory=Ledger)
    _views: dict[str, _View] = attrs.field(factory=dict)

    def __attrs_post_init__(self) -> None:
        self.ledger.sync(self.messages)

    def __len__(self) -> int:
        return len(self.messages)

    def append(self, m: Message) -> None:
        """Add a message. Text that is not valid UTF-8 (from a user's tool or provider) is
        made valid here, once, so that no encoder downstream can fail on it (the ledger's
        estimate, which reads every text once, is what finds it)."""
        self.messages.append(m)
        try:
            self.ledger.sync(self.messages)
        except UnicodeEncodeError:
            self.messages[-1] = msgspec.convert(sanitize(msgspec.to_builtins(m)), Message)
            self.ledger.sync(self.messages)

    def replace(self, messages: list[Message]) -> None:
        """A new shape (after a repair): every view starts over."""
        self.messages = list(messages)
        self.ledger.sync(self.messages)
        self._views.clear()

    def retire(self, source: str, retired: str) -> int:
        """Re-label the reasoning and provider-executed items of ``source`` as ``retired``, a
        name no entry has: no view shows them again (a model switch within one entry: a model
        may not read another's signed reasoning). Returns how many parts were re-labelled."""
        count = 0
        messages: list[Message] = []
        for m in self.messages:
            if m.role == "assistant" and any(_opaque_of(p, source) for p in m.parts):
                parts: list[Part] = []
                for p in m.parts:
                    if _opaque_of(p, source):
                        p = msgspec.structs.replace(p, source=retired)  # type: ignore[type-var]
                        count += 1
                    parts.append(p)
                m = Message(m.role, parts)
            messages.append(m)
        if count:
            self.replace(messages)
        return count

    def view(self, target: str) -> tuple[list[Message], int]:
        """A snapshot of what ``target`` may see, and how many parts were newly dropped for
        it since the last call."""
        self._follow_edits()
        v = self._views.get(target)
        if v is None:
            v = self._views[target] = _View()
        for m in self.messages[v.done:]:
            vm, d = _visible(m, target)
            v.messages.append(vm)
            v.dropped += d
        v.done = len(self.messages)
        new = v.dropped - v.reported
        v.reported = v.dropped
        return list(v.messages), new

    def _follow_edits(self) -> None:
        """Bring the views in line with what the context manager changed in place."""
        changed, reshaped = self.ledger.take_changes()
        if reshaped:
            for target in list(self._views):  # rebuilt; what was reported stays so
                fresh = _View()
                for m in self.messages:
                    vm, d = _visible(m, target)
                    fresh.messages.append(vm)
                    fresh.dropped += d
                fresh.done = len(self.messages)
                fresh.reported = fresh.dropped
                self._views[target] = fresh
            return
        for i in changed:
            for target, v in self._views.items():
                if i < v.done:
                    v.messages[i] = _visible(self.messages[i], target)[0]

    def tokens(self, start: int = 0) -> int:
        """The estimated tokens of the messages from ``start`` on."""
        return sum(self.ledger.sizes[start:])

    @property
    def estimate(self) -> int:
        """The estimated tokens of the conversation as a provider reads it (a vendor's
        compaction stands for what came before it)."""
        return self.ledger.live_total
