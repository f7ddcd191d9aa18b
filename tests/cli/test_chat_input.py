"""What one message is in interactive mode: continuation lines and triple-quoted blocks."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runtime.cli.chat_input import message_of, needs_more
from runtime.cli.interactive import parse_model


@pytest.mark.parametrize(("typed", "more"), [
    ("hello", False),
    ("hello \\", True),
    ("line one\\\nline two", False),
    ('"""', True),
    ('"""\nsome text', True),
    ('"""\nsome text\n"""', False),
    ('  """inline"""', False),
    ('"""\nends with a backslash \\', True),
    ("", False),
])
def test_when_enter_continues(typed: str, more: bool) -> None:
    """Enter continues after a trailing backslash and inside an open block, else sends."""
    assert needs_more(typed) is more


@pytest.mark.parametrize(("typed", "message"), [
    ("hello", "hello"),
    ("line one\\\nline two", "line one\nline two"),
    ("a\\\nb\\\nc", "a\nb\nc"),
    ('"""\nfirst\n  indented\n"""', "first\n  indented"),
    ('"""inline"""', "inline"),
    ('"""\nkeep \\\nthis\n"""', "keep \\\nthis"),
    ('"""\n\nblank lines kept\n\n"""', "\nblank lines kept\n"),
])
def test_message_of_what_was_typed(typed: str, message: str) -> None:
    """Continuation backslashes and block delimiters are dropped; a block is verbatim."""
    assert message_of(typed) == message


@given(st.text().filter(lambda t: not t.lstrip().startswith('"""') and "\\" not in t))
def test_plain_text_is_sent_as_typed(text: str) -> None:
    """Text with no backslash and no opening block is sent as typed, on the first Enter."""
    assert not needs_more(text)
    assert message_of(text) == text


@given(st.lists(st.text(alphabet=st.characters(blacklist_characters='\\"\n')), min_size=1,
                max_size=6))
def test_continued_lines_join_with_line_breaks(lines: list[str]) -> None:
    """Lines typed with trailing backslashes make one message of those lines."""
    typed = "\\\n".join(lines)
    assert message_of(typed) == "\n".join(lines)
    assert needs_more(typed + "\\")


@pytest.mark.parametrize(("arg", "parsed"), [
    ("backup", ("backup", None)),
    ("backup:gpt-5", ("backup", "gpt-5")),
    ("gpt-5", (None, "gpt-5")),
    ("llama3:8b", (None, "llama3:8b")),
    ("main:llama3:8b", ("main", "llama3:8b")),
])
def test_model_argument(arg: str, parsed: tuple[str | None, str | None]) -> None:
    """/model NAME: an entry, ENTRY:MODEL, or a model (which may hold a colon)."""
    assert parse_model(arg, {"main", "backup"}) == parsed
