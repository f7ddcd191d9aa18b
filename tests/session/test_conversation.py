"""The conversation's running size estimate: what a sum over the history would say, kept
without summing the history on every turn."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.context.estimate import message_tokens
from runtime.model import Message
from runtime.session.conversation import Conversation

_steps = st.lists(st.one_of(
    st.tuples(st.just("append"), st.text(max_size=40)),
    st.tuples(st.just("replace"), st.integers(min_value=0, max_value=6)),
), max_size=25)


@settings(max_examples=150, deadline=None)
@given(first=st.lists(st.text(max_size=20), max_size=4), steps=_steps,
       start=st.integers(min_value=0, max_value=40))
def test_running_estimate_matches_the_sum_over_the_history(first: list[str],
                                                           steps: list[tuple[str, object]],
                                                           start: int) -> None:
    """After any appends and replacements, ``estimate`` and ``tokens(start)`` equal the
    per-message estimates summed over the messages."""
    chat = Conversation([Message.user(t) for t in first])
    for op, arg in steps:
        if op == "append":
            chat.append(Message.user(str(arg)))
        else:
            chat.replace(chat.messages[:int(str(arg))])
    each = [message_tokens(m) for m in chat.messages]
    assert chat.estimate == sum(each)
    assert chat.tokens(start) == sum(each[start:])
