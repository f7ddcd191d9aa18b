"""The conversation of a session and what each provider entry may see of it (pure).

Opaque reasoning (signed thinking, encrypted reasoning items) and provider-executed tool
items carry the provider entry that produced them (``source``); only that entry gets them
back, so a failover never sends a foreign signature. Each provider's view is kept up to
date as messages are appended — the work per turn is the new messages, not the history,
so turn 1,000 costs what turn 10 does.
"""

from __future__ import annotations

import attrs
import msgspec

from ..model import BuiltinToolPart, Message, Part, ReasoningPart
from ..pricing import estimate_tokens
from .records import sanitize

__all__ = ["Conversation", "foreign_reasoning_removed"]


def _visible(m: Message, target: str) -> tuple[Message, int]:
    if m.role != "assistant":
        return m, 0
    dropped = 0
    keep = []
    for p in m.parts:
        if isinstance(p, ReasoningPart | BuiltinToolPart) and p.source not in (None, target):
            dropped += 1
            continue
        keep.append(p)
    return (m if not dropped else Message(m.role, keep)), dropped


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
    """Messages, per-provider views and a running size estimate."""

    messages: list[Message] = attrs.field(factory=list)
    _views: dict[str, _View] = attrs.field(factory=dict)
    # running estimate: _before[i] = estimated tokens of messages[:i] (one entry more than
    # messages), so the size of any tail is one subtraction, whatever the history's length
    _before: list[int] = attrs.field(factory=lambda: [0])

    def __attrs_post_init__(self) -> None:
        self._recount()

    def _recount(self) -> None:
        total = 0
        self._before = [0]
        for m in self.messages:
            total += estimate_tokens([m])
            self._before.append(total)

    def __len__(self) -> int:
        return len(self.messages)

    def append(self, m: Message) -> None:
        """Add a message. Text that is not valid UTF-8 (from a user's tool or provider) is
        made valid here, once, so that no encoder downstream can fail on it."""
        try:
            tokens = estimate_tokens([m])
        except UnicodeEncodeError:
            m = msgspec.convert(sanitize(msgspec.to_builtins(m)), Message)
            tokens = estimate_tokens([m])
        self.messages.append(m)
        self._before.append(self._before[-1] + tokens)

    def replace(self, messages: list[Message]) -> None:
        """A new shape (after a compaction or a repair): every view starts over."""
        self.messages = list(messages)
        self._recount()
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

    def tokens(self, start: int = 0) -> int:
        """The estimated tokens of the messages from ``start`` on."""
        start = max(0, min(start, len(self.messages)))
        return self._before[-1] - self._before[start]

    @property
    def estimate(self) -> int:
        return self._before[-1]
