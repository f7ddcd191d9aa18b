"""The last resort: the oldest turns give way to a note (pairing intact, a model's summary
kept, notes merged), a history given before the task is never touched, the ledger's sizes
stay right around a vendor compaction, and a record replays to the same conversation."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runtime.context import ContextManager, ContextPolicy
from runtime.context.estimate import message_tokens
from runtime.context.ledger import Ledger
from runtime.context.summary import REMOVED_PREFIX, SUMMARY_PREFIX, removed_calls
from runtime.model import BuiltinToolPart, Message, TextPart
from runtime.session.records import ContextCompacted
from runtime.session.restore import compact_replay

from .conversations import SYSTEM, TOOLS, conversations, turn
from .test_fit import check_pairing, wire

SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def manager(window: int, strategy: str = "elide", keep: int = 1, reserve: int = 300,
            protocol: str = "anthropic", pinned: int = 0) -> ContextManager:
    policy = ContextPolicy(strategy, reserve, keep)  # type: ignore[arg-type]
    return ContextManager(policy, window, provider="p", protocol=protocol,
                          ledger=Ledger(pinned=pinned))


def long_session(turns: int, size: int = 2_000) -> list[Message]:
    messages = [Message.user("Fix the failing test.")]
    for n in range(turns):
        messages += turn("openai-chat", n, 1, [size], False, "")
    return messages


def replay(before: list[Message], fit_record: dict[str, object]) -> list[Message]:
    fields = {k: v for k, v in fit_record.items() if k != "turn"}
    rec = ContextCompacted(**fields)  # type: ignore[arg-type]
    out = list(before)
    compact_replay(out, rec)
    return out


@SETTINGS
@given(conversations(max_turns=24, min_turns=6), st.integers(2_500, 6_000),
       st.integers(1, 3))
def test_fit_then_trim_fits_keeps_pairing_and_replays(conv: tuple[str, list[Message]],
                                                      window: int, keep: int) -> None:
    """Elide, then remove the oldest turns: within budget (or a typed refusal about the
    kept turns), every call paired with its result in every protocol, the kept turns and
    the task untouched, and the record replays to exactly the same conversation."""
    protocol, messages = conv
    original = list(messages)
    m = manager(window, keep=keep, protocol=protocol)
    fit = m.fit(messages, system=SYSTEM, tools=TOOLS)
    if fit.status == "over":
        fit = fit.then(m.trim(messages, system=SYSTEM, tools=TOOLS))
    assert fit.tokens_after == m.estimate(messages, system=SYSTEM, tools=TOOLS)
    if fit.ok:
        assert fit.tokens_after <= fit.budget
    else:
        assert "keep_recent_turns" in (fit.hint or "")
    check_pairing(protocol, wire(protocol, messages))
    assert messages[0] is original[0]
    if len(m.ledger.turns) >= keep:  # the kept turns, from their first assistant message on
        kept = m.ledger.turns[-keep]
        tail = len(messages) - kept
        assert all(a is b for a, b in zip(messages[kept:], original[-tail:], strict=True))
    if fit.span is not None:
        assert messages[1].text.startswith(REMOVED_PREFIX)
    assert replay(original, fit.record(1)) == messages


def test_trim_removes_just_enough_and_names_the_calls() -> None:
    """The note says which turns went and which tools they called; only as many turns go
    as bring the request back to 75 % of the budget."""
    messages = long_session(12)
    m = manager(4_000)
    fit = m.fit(messages, system=SYSTEM, tools=TOOLS)
    assert fit.status == "compacted"  # eliding was enough so far
    for n in range(12, 60):
        messages += turn("openai-chat", n, 1, [2_000], False, "")
        fit = m.fit(messages, system=SYSTEM, tools=TOOLS)
        if fit.status == "over":
            break
    else:
        raise AssertionError("eliding never stopped being enough")
    trimmed = m.trim(messages, system=SYSTEM, tools=TOOLS)
    assert trimmed.ok and trimmed.span is not None and trimmed.span[0] == 1
    note = messages[1]
    assert note.text.startswith(REMOVED_PREFIX) and "read_file x" in note.text
    assert removed_calls(note) == {"read_file": trimmed.summarized[1]}  # type: ignore[index]
    assert trimmed.tokens_after <= int(m.budget * 0.75) + message_tokens(note)
    assert len(messages) > 3  # not everything went: just enough
    # a later trim merges its turns into the same note
    for n in range(60, 120):
        messages += turn("openai-chat", n, 1, [2_000], False, "")
        if m.fit(messages, system=SYSTEM, tools=TOOLS).status == "over":
            break
    again = m.trim(messages, system=SYSTEM, tools=TOOLS)
    assert again.summarized is not None and again.summarized[0] == 1
    assert sum(1 for x in messages if x.text.startswith(REMOVED_PREFIX)) == 1


def test_a_model_summary_is_kept_and_the_note_follows_it() -> None:
    """Removing turns after a summary keeps the summary: the note comes after it."""
    messages = long_session(8)
    m = manager(3_000, strategy="summarize")
    fit = m.fit(messages, system=SYSTEM, tools=TOOLS, force=True)
    assert fit.status == "summary_needed" and fit.summary is not None
    m.apply_summary(messages, fit.summary, "The agent read eight files.")
    assert messages[1].text.startswith(SUMMARY_PREFIX)
    for n in range(8, 60):
        messages += turn("openai-chat", n, 1, [2_000], False, "")
        if m.fit(messages, system=SYSTEM, tools=TOOLS, strategy="elide").status == "over":
            break
    trimmed = m.trim(messages, system=SYSTEM, tools=TOOLS)
    assert trimmed.span is not None and trimmed.span[0] == 2
    assert messages[1].text.startswith(SUMMARY_PREFIX)
    assert messages[2].text.startswith(REMOVED_PREFIX)


def test_a_given_history_is_never_shrunk() -> None:
    """The pinned messages (a history before the task) keep their results and reasoning;
    the task after them is the first task."""
    history = long_session(3, size=1_000)
    messages = [*history, Message.user("Now the real task.")]
    for n in range(3, 80):
        messages += turn("openai-chat", n, 1, [2_000], False, "")
    m = manager(4_000, pinned=len(history))
    fit = m.fit(messages, system=SYSTEM, tools=TOOLS)
    if fit.status == "over":
        fit = fit.then(m.trim(messages, system=SYSTEM, tools=TOOLS))
    assert all(a is b for a, b in zip(messages[:len(history) + 1], [*history, messages[
        len(history)]], strict=True))
    assert m.ledger.first_task == len(history)
    assert fit.ok and fit.span is not None and fit.span[0] == len(history) + 1
    record = fit.record(1, offset=len(history))
    assert record["summarized"][0] == 1  # type: ignore[index]


def test_eliding_before_a_vendor_compaction_keeps_the_live_size() -> None:
    """What a vendor compaction stands for is not counted, and shrinking it (an elision, a
    span) does not make the live size drift."""
    led = Ledger()
    messages = long_session(4)
    compaction = Message("assistant", [BuiltinToolPart("compaction", raw={
        "type": "compaction", "content": "summary", "encrypted_content": "x"}),
        TextPart("go on")])
    messages += [compaction, Message.user("next")]
    led.sync(messages)
    live = led.live_total
    assert live == led.sizes[-1] + led.sizes[-2]
    led.elide_results(2)
    assert led.live_total == live
    led.replace_span(1, 5, Message.user("gone"))
    assert led.live_total == live and led.compaction == len(messages) - 2
