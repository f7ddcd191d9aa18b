"""Tool output as text (pure): capped, and always valid for a UTF-8 encoder.

Capping keeps the head and the tail and says how much was cut. Bytes that are not UTF-8 are
decided here, once, for every tool: an undecodable byte is shown as a visible ``\\xNN``
escape (``caf\\xe9``), never dropped and never a lone surrogate that would break a JSON
encoder later. Python hands such bytes over as surrogate escapes (U+DC80..U+DCFF) in file
names and the environment; :func:`clean_text` renders those the same way, and any other lone
surrogate (from a model's JSON ``"\\ud800"``) becomes U+FFFD.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["OutputCapture", "cap_outputs", "cap_text", "clean_text", "clean_value", "cut_note",
           "replace_surrogates", "to_text"]

_SURROGATE = re.compile("[\ud800-\udfff]")


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else "\ufffd"


def clean_text(text: str) -> str:
    """``text`` with surrogate-escaped bytes as ``\\xNN`` and other lone surrogates as
    U+FFFD: always encodable as UTF-8."""
    return _SURROGATE.sub(_visible, text) if _SURROGATE.search(text) else text


def replace_surrogates(text: str) -> str:
    """``text`` with every lone surrogate replaced by U+FFFD (text to be written)."""
    return _SURROGATE.sub("\ufffd", text) if _SURROGATE.search(text) else text


def to_text(data: bytes) -> str:
    """Bytes as text, undecodable bytes as ``\\xNN`` (the same rendering as clean_text)."""
    return data.decode("utf-8", "backslashreplace")


def clean_value(value: Any) -> Any:
    """A JSON-like value with every string (keys too) passed through :func:`clean_text`."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, Mapping):
        return {clean_value(k): clean_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean_value(v) for v in value]
    return value


def cut_note(cut: int, total: int) -> str:
    return f"\n[... {cut} of {total} characters cut ...]\n"


_NOTE = re.compile(r"\n\[\.\.\. (\d+) of (\d+) characters cut \.\.\.\]\n")


def cap_text(text: str, max_chars: int) -> str:
    """``text`` if it fits in ``max_chars``, else its head and tail around a note saying
    how many characters were cut. Text that was capped already (it has such a note) is cut
    further around that note, so there is only ever one note, and it counts every character
    cut: capping twice is capping once at the smaller limit."""
    if len(text) <= max_chars:
        return text
    max_chars = max(0, max_chars)
    note = _NOTE.search(text)
    if note is None:
        total = len(text)
        head = max_chars // 2
        kept_head, kept_tail = text[:head], text[len(text) - (max_chars - head):]
    else:
        before, after = text[:note.start()], text[note.end():]
        total = len(before) + len(after) + int(note.group(1))
        tail = min(len(after), max_chars - min(len(before), max_chars // 2))
        kept_head, kept_tail = before[:max_chars - tail], after[len(after) - tail:]
    return kept_head + cut_note(total - len(kept_head) - len(kept_tail), total) + kept_tail


class OutputCapture:
    """Collects a byte stream as text in bounded memory: the first and last characters up
    to ``max_chars`` in all, and the exact total count."""

    def __init__(self, max_chars: int) -> None:
        self.max_chars = max(0, max_chars)
        self._head_limit = self.max_chars // 2
        self._tail_limit = self.max_chars - self._head_limit
        self._decoder = codecs.getincrementaldecoder("utf-8")("backslashreplace")
        self._head: list[str] = []
        self._head_len = 0
        self._tail = ""
        self.total_chars = 0

    def feed(self, data: bytes | bytearray, final: bool = False) -> None:
        self._add(self._decoder.decode(data, final))

    def _add(self, text: str) -> None:
        if not text:
            return
        self.total_chars += len(text)
        room = self.max_chars - self._head_len
        if not self._tail and room >= len(text):
            self._head.append(text)
            self._head_len += len(text)
            return
        if not self._tail and self._head_len < self._head_limit:
            take = self._head_limit - self._head_len
            self._head.append(text[:take])
            self._head_len += take
            text = text[take:]
        if self._head_len > self._head_limit:
            # the head was allowed to grow while everything fitted: move its end to the tail
            joined = "".join(self._head)
            self._head = [joined[: self._head_limit]]
            text = joined[self._head_limit:] + text
            self._head_len = self._head_limit
        self._tail = (self._tail + text)[-self._tail_limit:] if self._tail_limit else ""

    def text(self) -> str:
        self.feed(b"", final=True)
        head = "".join(self._head)
        kept = len(head) + len(self._tail)
        if kept >= self.total_chars:
            return head + self._tail
        return head + cut_note(self.total_chars - kept, self.total_chars) + self._tail


def cap_outputs(outputs: list[dict[str, Any]], max_chars: int) -> list[dict[str, Any]]:
    """Shell ``outputs`` (``stdout``/``stderr`` per command) capped so that all their text
    together stays within ``max_chars`` (besides the cut notes): each stream gets an equal
    share, and what a short stream leaves over goes to the longer ones."""
    sizes = [len(o.get(k) or "") for o in outputs for k in ("stdout", "stderr")]
    if sum(sizes) <= max_chars:
        return outputs
    budget = max_chars
    shares = [0] * len(sizes)
    order = sorted(range(len(sizes)), key=lambda i: sizes[i])
    for n, i in enumerate(order):
        shares[i] = min(sizes[i], budget // (len(order) - n))
        budget -= shares[i]
    capped = []
    for j, o in enumerate(outputs):
        c = dict(o)
        for m, k in enumerate(("stdout", "stderr")):
            if isinstance(c.get(k), str):
                c[k] = cap_text(c[k], shares[2 * j + m])
        capped.append(c)
    return capped
