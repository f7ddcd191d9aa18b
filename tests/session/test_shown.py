"""What watchers see of a turn across attempts: each piece of text once."""

from __future__ import annotations

from runtime.session.turn import Shown


def feed(shown: Shown, *pieces: str) -> str:
    return "".join(shown.feed(p) for p in pieces)


def test_a_retry_shows_only_what_was_not_shown_yet() -> None:
    """A second attempt repeating the first one's prefix yields only the new tail."""
    s = Shown()
    first = feed(s, "Hel", "lo, wo")
    s.new_attempt()
    second = feed(s, "H", "ello,", " wor", "ld!")
    assert first + second == "Hello, world!"


def test_a_diverging_retry_is_marked_and_shown_whole() -> None:
    """A retry that says something else is announced, then shown from its start."""
    s = Shown()
    out = feed(s, "Paris is")
    s.new_attempt()
    out += feed(s, "Lyon", " is not")
    assert out == "Paris is\n[response restarted]\nLyon is not"
    assert s.shown_len == len("Lyon is not")


def test_a_shorter_retry_shows_nothing_until_it_passes_what_was_shown() -> None:
    """While the new attempt is within what was shown, nothing new is shown."""
    s = Shown()
    feed(s, "abcdef")
    s.new_attempt()
    assert feed(s, "abc") == ""
    assert feed(s, "defg") == "g"
