"""Redaction of keys, auth headers and configured patterns."""

from __future__ import annotations

from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from runtime.redact import MARK, Redactor


def test_literal_secrets_and_patterns() -> None:
    """Configured keys and regexes are replaced; the surrounding text stays."""
    r = Redactor(["canary-key-0001"], [r"(?i)password=\S+"])
    out = r.text("use canary-key-0001 with password=hunter2 please")
    assert out == f"use {MARK} with {MARK} please"


def test_builtin_header_and_key_shapes() -> None:
    """Authorization values, x-api-key values and sk- keys are always redacted."""
    r = Redactor()
    text = "Authorization: Bearer abc.def.ghijkl x-api-key: zzz123 sk-ant-api03-ABCDEFGHIJKLMNOP"
    out = r.text(text)
    assert "abc.def" not in out and "zzz123" not in out and "ABCDEFGHIJ" not in out
    assert out.count(MARK) == 3


def test_nested_values_and_secret_header_names() -> None:
    """Dicts and lists are redacted recursively; secret header names lose their value."""
    r = Redactor(["s3cr3t-value"])
    data = {"headers": {"Authorization": "anything", "x-other": "ok"},
            "items": ["s3cr3t-value here", 3]}
    assert r.value(data) == {"headers": {"Authorization": MARK, "x-other": "ok"},
                             "items": [f"{MARK} here", 3]}


def test_longest_secret_wins_and_short_ones_ignored() -> None:
    """Overlapping secrets are fully covered; strings under 4 chars are never treated as keys."""
    r = Redactor(["abcd", "abcdefgh", "ab"])
    assert r.text("abcdefgh ab") == f"{MARK} ab"


def test_structlog_processor() -> None:
    """The redactor is a structlog processor: a plain call on an event dict."""
    r = Redactor(["tok-123456"])
    assert r(None, "info", {"event": "sent tok-123456"}) == {"event": f"sent {MARK}"}


_PIECES = ["sk-proj-ABCDEFGHIJKL", "abcd1234", "Authorization: ", "Bearer abcdefghij",
           "x-api-key=", "api_key", "\n", " ", "\x00", "é", "canary-key-0001", "password=",
           "hunter2", ",", "\"", "token:", "x"]


def _texts() -> Any:
    return st.lists(st.sampled_from(_PIECES), max_size=8).map("".join)


_VALUES = st.recursive(
    _texts() | st.integers() | st.none() | st.booleans(),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.sampled_from(["text", "Authorization", "x-other", "cookie", "n"]),
                      inner, max_size=4),
    max_leaves=12)


@settings(max_examples=500, deadline=None)
@given(value=st.lists(_VALUES, min_size=1, max_size=5))
@example(value=["abcd1234", "sk-proj-ABCDEFGHIJKL"])
def test_changes_of_a_whole_value_never_misses_what_value_would_redact(value: Any) -> None:
    """The one-pass check over a value's joined strings says True whenever redacting the
    value changes it (built-in rules, literal keys and a configured pattern)."""
    r = Redactor(["canary-key-0001"], [r"(?i)password=\S+", r"token:\s*\w+"])
    if r.value(value) != value:
        assert r.changes(value)


@settings(max_examples=200, deadline=None)
@given(value=_VALUES)
def test_rules_with_anchors_are_checked_string_by_string(value: Any) -> None:
    """A rule that looks at the edges of a string (an anchor, a lookahead) is never
    searched in the joined text, so the check stays exact."""
    r = Redactor([], [r"^hunter2$", r"abcd1234(?!\w)"])
    assert not r._joinable
    assert r.changes(value) == (r.value(value) != value)


def test_changes_walks_records_and_their_parts() -> None:
    """A secret in a nested part of a transcript record is found without converting it."""
    from runtime.model import TextPart, ToolCallPart
    from runtime.session.records import AssistantRecord

    r = Redactor(["canary-key-0001"])
    clean = AssistantRecord(text="hello", parts=[TextPart("hello")])
    dirty = AssistantRecord(text="hello", parts=[ToolCallPart("c1", "f", '{"k": "canary-key-0001"}')])
    assert not r.changes(clean)
    assert r.changes(dirty)


_CASED = st.lists(st.sampled_from(["Authorİzation", "AUTHORIZATION", "authorıza", "tion",
                                   "x-API-KEY", "Api_Key", "ApI", "-", "kEy", "BEARER ",
                                   "bearer", "Bearer\t", "sk-", "SK-", "ABCDEFGHIJKLMN", ":",
                                   "=", " ", "K", "é", "\u212a"]),
                   max_size=8).map("".join)


@settings(max_examples=500, deadline=None)
@given(text=_CASED | st.text(max_size=40))
@example(text="Authorİzation: token123")
@example(text="X-APİ-KEY=abc")
def test_the_built_in_prefilter_never_skips_a_match(text: str) -> None:
    """The cheap word test in front of the built-in rules is True whenever one of those
    rules matches (case-insensitively, dotted and dotless i included)."""
    from runtime.redact import _BUILTIN_ANY, _may_hold_builtin

    if _BUILTIN_ANY.search(text):
        assert _may_hold_builtin(text)
