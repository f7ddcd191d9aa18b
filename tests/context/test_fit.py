"""Fitting generated conversations: within budget or a typed refusal, pairing and signed
reasoning intact in every protocol's wire form, kept turns untouched, idempotent."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runtime.context import (
    ELIDED_PREFIX,
    SUMMARY_PREFIX,
    ContextManager,
    ContextPolicy,
    request_tokens,
)
from runtime.model import Message, ReasoningPart, ToolCallPart, ToolResultPart
from tests import pairing

from .conversations import SYSTEM, TOOLS, conversations, turn

SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def manager(protocol: str, window: int, strategy: str = "elide", keep: int = 2,
            reserve: int = 500) -> ContextManager:
    policy = ContextPolicy(strategy=strategy, reserve_output=reserve,  # type: ignore[arg-type]
                           keep_recent_turns=keep)
    return ContextManager(policy, window, provider="p", protocol=protocol)


def wire(protocol: str, messages: list[Message]) -> dict[str, Any]:
    return pairing.wire(protocol, messages, system=SYSTEM, tools=TOOLS)


check_pairing = pairing.check_pairing


def check_reasoning(before: list[Message], after: list[Message]) -> None:
    """A message keeps all its reasoning or none; without it, no Responses item id asks
    for it."""
    originals = {id(m): m for m in before}
    for old, new in zip(before, after, strict=False):
        if old.role != "assistant" or id(new) in originals:
            continue
        had = [p for p in old.parts if isinstance(p, ReasoningPart)]
        has = [p for p in new.parts if isinstance(p, ReasoningPart)]
        assert has in ([], had)
        if had and not has:
            assert all(p.item_id is None for p in new.parts if isinstance(p, ToolCallPart))


def last_assistant_thinking(protocol: str, body: dict[str, Any], original: list[Message]
                            ) -> None:
    """Anthropic: the open loop's assistant message still starts with its thinking."""
    if protocol != "anthropic":
        return
    last = next(m for m in reversed(original) if m.role == "assistant")
    if not any(isinstance(p, ReasoningPart) for p in last.parts):
        return
    wire_last = next(m for m in reversed(body["messages"]) if m["role"] == "assistant")
    assert wire_last["content"][0]["type"] == "thinking"


@SETTINGS
@given(conversations(), st.integers(3_000, 40_000), st.integers(1, 4), st.booleans())
def test_fit_is_within_budget_or_says_why(conv: tuple[str, list[Message]], window: int,
                                          keep: int, harder: bool) -> None:
    """After a fit the estimate is within budget, or the result is a typed refusal."""
    protocol, messages = conv
    original = list(messages)
    m = manager(protocol, window, keep=keep)
    fit = m.fit(messages, system=SYSTEM, tools=TOOLS, harder=harder)
    assert fit.tokens_after == m.estimate(messages, system=SYSTEM, tools=TOOLS)
    if fit.ok:
        assert fit.tokens_after <= fit.budget
    else:
        assert fit.status == "over" and fit.reason and fit.hint
        assert "keep_recent_turns" in fit.hint and str(fit.budget) in fit.reason
        assert fit.error("p").kind.value == "context_length"
    body = wire(protocol, messages)
    check_pairing(protocol, body)
    check_reasoning(original, messages)
    last_assistant_thinking(protocol, body, original)
    # the kept turns, the first task and the length are untouched
    keep_from = m.ledger.keep_from(keep)
    assert len(messages) == len(original)
    assert messages[0] is original[0]
    assert all(a is b for a, b in zip(messages[keep_from:], original[keep_from:], strict=True))


@SETTINGS
@given(conversations(), st.integers(3_000, 40_000))
def test_fit_is_idempotent(conv: tuple[str, list[Message]], window: int) -> None:
    """Fitting a fitted conversation changes nothing."""
    protocol, messages = conv
    m = manager(protocol, window)
    m.fit(messages, system=SYSTEM, tools=TOOLS)
    snapshot = list(messages)
    again = m.fit(messages, system=SYSTEM, tools=TOOLS)
    assert not again.changed
    assert all(a is b for a, b in zip(messages, snapshot, strict=True))
    fresh = manager(protocol, window)  # a new manager (a resumed session) agrees
    assert not fresh.fit(messages, system=SYSTEM, tools=TOOLS).changed


def test_markers_name_tool_call_and_size() -> None:
    """An elided result names its tool, its call id and its size, so it can be redone."""
    messages = [Message.user("task")]
    for n in range(6):
        messages += turn("anthropic", n, 1, [8000], False, "")
    m = manager("anthropic", 6_000)
    fit = m.fit(messages, system=SYSTEM, tools=TOOLS)
    assert fit.status == "compacted" and fit.elided
    assert fit.elided[0] == "call_0_0"
    result = messages[2].parts[0]
    assert isinstance(result, ToolResultPart) and isinstance(result.content, str)
    assert result.content.startswith(ELIDED_PREFIX)
    assert "read_file" in result.content and "call_0_0" in result.content
    assert "8000 characters" in result.content
    record = fit.record(7)
    assert record["turn"] == 7 and record["elided"] == list(fit.elided)
    assert record["tokens_before"] > record["tokens_after"]


def test_over_budget_kept_part_is_a_clear_refusal() -> None:
    """When the kept turns alone exceed the budget, the fit refuses with the figures."""
    messages = [Message.user("task"), *turn("openai-chat", 0, 1, [40_000], False, "")]
    fit = manager("openai-chat", 4_000).fit(messages, system=SYSTEM, tools=TOOLS)
    assert fit.status == "over"
    assert "3500" in (fit.reason or "") and "4000" in (fit.reason or "")


def test_reserve_larger_than_window_is_refused() -> None:
    """A reserve_output that leaves no room names the keys to change."""
    with pytest.raises(ValueError, match=r"context\.reserve_output"):
        manager("anthropic", 4_000, reserve=4_096)


def test_off_changes_nothing() -> None:
    """strategy: off leaves even an oversized conversation alone."""
    messages = [Message.user("task")]
    for n in range(6):
        messages += turn("anthropic", n, 1, [8000], False, "")
    snapshot = list(messages)
    fit = manager("anthropic", 5_000, strategy="off").fit(messages, system=SYSTEM)
    assert fit.status == "unchanged" and not fit.changed
    assert all(a is b for a, b in zip(messages, snapshot, strict=True))


def test_harder_targets_three_quarters_and_elides_all_but_kept() -> None:
    """harder=True elides every result outside the kept turns, even under budget."""
    messages = [Message.user("task")]
    for n in range(6):
        messages += turn("openai-responses", n, 1, [2000], True, "")
    m = manager("openai-responses", 100_000, keep=2)
    assert m.fit(messages, system=SYSTEM).status == "unchanged"
    fit = m.fit(messages, system=SYSTEM, harder=True)
    assert fit.harder and fit.status == "compacted"
    assert fit.elided == tuple(f"call_{n}_0" for n in range(4))
    assert fit.reasoning_dropped == 4


@SETTINGS
@given(conversations(max_turns=24, min_turns=10), st.integers(1_500, 3_000))
def test_summarize_replaces_a_prefix_and_keeps_pairing(conv: tuple[str, list[Message]],
                                                        window: int) -> None:
    """A summary replaces the turns between the task and the kept turns, pairing intact."""
    protocol, messages = conv
    m = manager(protocol, window, strategy="summarize", keep=1, reserve=300)
    original = list(messages)
    fit = m.fit(messages, system=SYSTEM, tools=TOOLS)
    if fit.status != "summary_needed":
        return
    plan = fit.summary
    assert plan is not None and plan.start == 1 and plan.turns[0] == 1
    request = plan.request("m")
    assert request.system and not request.tools and request.messages[0].role == "user"
    assert request_tokens(request.messages, request.system) <= m.budget
    done = m.apply_summary(messages, plan, "The agent read files and ran commands.")
    assert done.summarized == plan.turns and done.changed
    assert messages[0] is original[0]
    assert messages[1].text.startswith(SUMMARY_PREFIX)
    assert messages[2:] == original[plan.end:]
    check_pairing(protocol, wire(protocol, messages))
    again = m.fit(messages, system=SYSTEM, tools=TOOLS)
    assert again.status != "summary_needed" or again.summary is not None


def test_a_refusal_calibrates_and_narrows_the_window() -> None:
    """A vendor's context-length error teaches the manager the real prompt size and
    window, so the harder fit that follows aims at the truth."""
    messages = [Message.user("task")]
    for n in range(8):
        messages += turn("anthropic", n, 1, [4000], False, "")
    m = manager("anthropic", 200_000)
    fit = m.fit(messages, system=SYSTEM, tools=TOOLS)
    assert fit.status == "unchanged"
    real = m.last_estimate * 2
    assert m.observe_refusal(f"prompt is too long: {real} tokens > 9000 maximum") == (real, 9000)
    assert m.window == 9_000 and m.calibration.ratio("p") == 2.0
    again = m.fit(messages, system=SYSTEM, tools=TOOLS, harder=True)
    assert again.ok and again.tokens_after <= m.budget and len(again.elided) == 6
