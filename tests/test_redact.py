"""Redaction of keys, auth headers and configured patterns."""

from __future__ import annotations

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
