"""What the user sees of a turn across attempts: each piece of text once."""

from __future__ import annotations

import io

from runtime.console import Console, Display
from runtime.redact import Redactor


def display(stream: bool = True) -> tuple[Display, io.StringIO]:
    out = io.StringIO()
    return Display(Console(out, io.StringIO(), Redactor(), stream_answer=stream)), out


def test_a_retry_shows_only_what_was_not_shown_yet() -> None:
    """A second attempt repeating the first one's prefix prints only the new tail."""
    d, out = display()
    for piece in ("Hel", "lo, wo"):
        d.text(piece)
    d.new_attempt()
    for piece in ("H", "ello,", " wor", "ld!"):
        d.text(piece)
    d.end_turn()
    assert out.getvalue() == "Hello, world!\n"


def test_a_diverging_retry_is_marked_and_shown_whole() -> None:
    """A retry that says something else is announced, then shown from its start."""
    d, out = display()
    d.text("Paris is")
    d.new_attempt()
    d.text("Lyon")
    d.text(" is not")
    assert out.getvalue() == "Paris is\n[response restarted]\nLyon is not"
    assert d.shown == "Lyon is not" and d.shown_len == len("Lyon is not")


def test_not_a_terminal_prints_nothing_but_keeps_count() -> None:
    """Without a terminal the answer is printed once at the end, by the caller."""
    d, out = display(stream=False)
    d.text("abc")
    d.new_attempt()
    d.text("abcdef")
    assert out.getvalue() == "" and d.shown == "abcdef"
