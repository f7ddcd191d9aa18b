"""Incremental Server-Sent Events decoder (HTML Living Standard, "event stream
interpretation"), sans I/O: ``feed(bytes)`` returns the events completed so far,
``close()`` returns the last one when the stream ended without a blank line.

Rules followed: lines end with CR, LF or CRLF (a CR at the end of a chunk waits to see
whether an LF follows); a leading UTF-8 BOM is dropped; ``:`` starts a comment; a field
without ``:`` has an empty value; one space after the colon is removed; several ``data``
lines are joined with ``\\n``; ``event`` names the type (``message`` by default); ``id`` sets
the last event id (ignored when it contains NUL) and persists; ``retry`` takes ASCII digits
only; a blank line dispatches, and an event with no ``data`` line is not dispatched.
Invalid UTF-8 becomes U+FFFD, as the standard says: this decoder never raises.

Unlike a browser, ``close()`` dispatches a final event that lacks its blank line: providers
and proxies do cut the last terminator, and losing the final usage chunk would be worse.
"""

from __future__ import annotations

import msgspec

__all__ = ["SSEDecoder", "SSEEvent"]

_BOM = b"\xef\xbb\xbf"
_HOLD = 1 << 16  # bytes of an unfinished event kept raw before its lines are applied


class SSEEvent(msgspec.Struct, frozen=True):
    """One dispatched event. ``id`` is the last event id in force when it was dispatched."""

    data: str
    event: str = "message"
    id: str | None = None
    retry: int | None = None


class SSEDecoder:
    __slots__ = ("_buf", "_data", "_event", "_id", "_retry", "_started", "comments")

    def __init__(self) -> None:
        self._buf = b""
        self._started = False
        self._data: list[str] = []
        self._event = ""
        self._id: str | None = None
        self._retry: int | None = None
        self.comments = 0

    @property
    def last_event_id(self) -> str | None:
        return self._id

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        buf = self._buf + chunk if self._buf else chunk
        if not self._started:
            if len(buf) < 3 and _BOM.startswith(buf):
                self._buf = buf
                return []
            self._started = True
            if buf.startswith(_BOM):
                buf = buf[3:]
        if b"\r" in buf:
            hold_cr = buf.endswith(b"\r")
            if hold_cr:
                buf = buf[:-1]
            buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
            # A CR at the very end is held back to see whether an LF follows it.
            tail = b"\r" if hold_cr else b""
        else:
            tail = b""
        out: list[SSEEvent] = []
        # HOT PATH: whole events at once. An event is the text up to a blank line; one made
        # of a single "data: " line (and an "event: " line before it) becomes an SSEEvent
        # directly, anything else goes through the line rules. What follows the last blank
        # line stays buffered until its event is complete.
        blocks = buf.split(b"\n\n")
        rest = blocks.pop()
        if self._data or self._event:  # an event begun in an earlier chunk
            first = blocks[0] if blocks else None
            if first is not None:
                self._lines(first.split(b"\n"), out)
                self._line(b"", out)
                blocks = blocks[1:]
        for block in blocks:
            if block[:6] == b"data: " and b"\n" not in block:
                out.append(SSEEvent(block[6:].decode("utf-8", "replace"), "message",
                                    self._id, self._retry))
                continue
            if block[:7] == b"event: ":
                nl = block.find(b"\n")
                if (nl > 0 and block[nl + 1:nl + 7] == b"data: "
                        and block.find(b"\n", nl + 1) < 0):
                    name = block[7:nl].decode("utf-8", "replace")
                    out.append(SSEEvent(block[nl + 7:].decode("utf-8", "replace"),
                                        name or "message", self._id, self._retry))
                    continue
            if block:
                self._lines(block.split(b"\n"), out)
            self._line(b"", out)
        if len(rest) > _HOLD and b"\n" in rest:
            # a long event still open: apply its complete lines now, keep the last one
            lines = rest.split(b"\n")
            rest = lines.pop()
            self._lines(lines, out)
        self._buf = rest + tail
        return out

    def _lines(self, lines: list[bytes], out: list[SSEEvent]) -> None:
        for line in lines:
            self._line(line, out)

    def close(self) -> list[SSEEvent]:
        """End of stream: process what is buffered and dispatch a pending event."""
        out: list[SSEEvent] = []
        buf, self._buf = self._buf, b""
        if not self._started and buf.startswith(_BOM):
            buf = buf[3:]
        self._started = True
        if buf:
            for line in buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n"):
                self._line(line, out)
        self._line(b"", out)
        return out

    def _line(self, line: bytes, out: list[SSEEvent]) -> None:
        if not line:
            if self._data:
                out.append(SSEEvent("\n".join(self._data), self._event or "message",
                                    self._id, self._retry))
                self._data = []
            self._event = ""
            return
        if line[0] == 58:  # b":" comment
            self.comments += 1
            return
        colon = line.find(b":")
        if colon < 0:
            name, value = line, b""
        else:
            name = line[:colon]
            value = line[colon + 1:]
            if value[:1] == b" ":
                value = value[1:]
        if name == b"data":
            self._data.append(value.decode("utf-8", "replace"))
        elif name == b"event":
            self._event = value.decode("utf-8", "replace")
        elif name == b"id":
            if b"\x00" not in value:
                self._id = value.decode("utf-8", "replace")
        elif name == b"retry":
            if value and value.isdigit() and value.isascii():
                self._retry = int(value)
