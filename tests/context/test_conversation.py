"""The conductor's conversation and the context manager share one ledger: its size is
the manager's, its per-provider views follow every compaction, and the per-turn work stays
flat over 1,000 turns."""

from __future__ import annotations

from runtime.context import ContextManager, ContextPolicy
from runtime.model import Message, ReasoningPart, ToolCallPart
from runtime.session.conversation import Conversation

from .conversations import SYSTEM, TOOLS, turn


def test_views_follow_elisions_and_spans() -> None:
    """A view taken before a compaction shows the compacted messages afterwards."""
    chat = Conversation([Message.user("task")])
    for n in range(12):
        for m in turn("openai-chat", n, 1, [4_000], False, ""):
            chat.append(m)
    before, _ = chat.view("main")
    m = ContextManager(ContextPolicy("elide", 500, 1), 6_000, ledger=chat.ledger)
    fit = m.fit(chat.messages, system=SYSTEM, tools=TOOLS)
    assert fit.elided
    after, dropped = chat.view("main")
    assert dropped == 0 and after == chat.messages and after != before
    trimmed = m.trim(chat.messages, system=SYSTEM, tools=TOOLS)
    assert trimmed.span is not None
    assert chat.view("main")[0] == chat.messages
    assert chat.estimate == chat.ledger.live_total == m.ledger.live_total


def test_a_foreign_reasoning_drop_takes_the_item_ids_that_ask_for_it() -> None:
    """Failover to another Responses entry: the reasoning items of the first are not sent,
    and neither are the ids of its function calls, which would ask for them."""
    msgs = turn("openai-responses", 1, 1, [10], True, "")
    parts = [msgspec_replace(p, source="a") if isinstance(p, ReasoningPart) else p
             for p in msgs[0].parts]
    chat = Conversation([Message.user("task"), Message("assistant", parts), msgs[1]])
    mine, dropped = chat.view("a")
    assert dropped == 0 and mine[1] is chat.messages[1]
    theirs, dropped = chat.view("b")
    assert dropped == 1
    assert not any(isinstance(p, ReasoningPart) for p in theirs[1].parts)
    assert all(p.item_id is None for p in theirs[1].parts if isinstance(p, ToolCallPart))


def msgspec_replace(p: ReasoningPart, **changes: object) -> ReasoningPart:
    import msgspec

    return msgspec.structs.replace(p, **changes)


def test_per_turn_work_is_flat_over_1000_turns_through_the_conversation() -> None:
    """Appending, viewing and fitting a turn costs the same at turn 1,000 as at turn 100:
    each message is estimated once, each compaction re-estimates what it changed."""
    chat = Conversation([Message.user("task")])
    m = ContextManager(ContextPolicy("elide", 1_000, 2), 30_000, ledger=chat.ledger)
    work: list[int] = []
    lengths: list[int] = []
    for n in range(1_000):
        before = chat.ledger.work
        for msg in turn("anthropic", n, 1, [8_000], n % 3 == 0, ""):
            chat.append(msg)
        fit = m.fit(chat.messages, system=SYSTEM, tools=TOOLS)
        if fit.status == "over":
            fit = fit.then(m.trim(chat.messages, system=SYSTEM, tools=TOOLS))
        assert fit.ok
        chat.view("main")
        work.append(chat.ledger.work - before)
        lengths.append(len(chat.messages))
        assert work[-1] <= 6, (n, work[-1])
    assert sum(work[-100:]) / 100 <= sum(work[100:200]) / 100 + 0.5  # flat, not growing
    assert max(lengths[-300:]) <= max(lengths[300:700])  # removals bound the list too
    assert m.estimate(chat.messages, system=SYSTEM, tools=TOOLS) <= m.budget
