"""Capping tool output (pure): keep the head and the tail, say how much was cut."""

from __future__ import annotations

import codecs

__all__ = ["OutputCapture", "cap_text", "cut_note"]


def cut_note(cut: int, total: int) -> str:
    return f"\n[... {cut} of {total} characters cut ...]\n"


def cap_text(text: str, max_chars: int) -> str:
    """``text`` if it fits in ``max_chars``, else its head and tail around a note saying
    how many characters were cut."""
    if len(text) <= max_chars:
        return text
    head = max_chars // 2
    tail = max_chars - head
    return text[:head] + cut_note(len(text) - max_chars, len(text)) + \
        (text[-tail:] if tail else "")


class OutputCapture:
    """Collects a byte stream as text in bounded memory: the first and last characters up
    to ``max_chars`` in all, and the exact total count."""

    def __init__(self, max_chars: int) -> None:
        self.max_chars = max(0, max_chars)
        self._head_limit = self.max_chars // 2
        self._tail_limit = self.max_chars - self._head_limit
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
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
