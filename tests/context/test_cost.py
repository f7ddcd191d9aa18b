"""The per-turn cost of fitting stays flat: a fit at turn 1,000 estimates only what is new."""

from __future__ import annotations

from runtime.context import ContextManager, ContextPolicy
from runtime.model import Message

from .conversations import SYSTEM, TOOLS, turn


def test_fit_at_turn_1000_estimates_only_new_messages() -> None:
    """Over 1,000 turns of 8 KB results each fit estimates the new messages and the one
    it elides, whatever the length of the history."""
    m = ContextManager(ContextPolicy(reserve_output=1_000, keep_recent_turns=4), 200_000,
                       protocol="anthropic")
    messages = [Message.user("task")]
    per_turn: list[int] = []
    elided = 0
    for n in range(1_000):
        new = turn("anthropic", n, 1, [8_000], n % 3 == 0, "")
        messages.extend(new)
        before = m.ledger.work
        fit = m.fit(messages, system=SYSTEM, tools=TOOLS)
        assert fit.ok
        elided += len(fit.elided)
        per_turn.append(m.ledger.work - before)
        # the changed messages are the new ones plus at most one elided result and one
        # reasoning drop
        assert per_turn[-1] <= len(new) + 2, (n, per_turn[-1])
    assert elided > 850
    assert sum(per_turn[-100:]) <= sum(per_turn[200:300])  # flat, not growing
    assert m.estimate(messages, system=SYSTEM, tools=TOOLS) <= m.budget
