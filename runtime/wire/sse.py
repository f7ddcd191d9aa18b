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
            lines = buf.split(b"\n")
            rest = lines.pop()
            # A CR at the very end is held back to see whether an LF follows it.
            self._buf = rest + b"\r" if hold_cr else rest
        else:
            lines = buf.split(b"\n")
            self._buf = lines.pop()
        out: list[SSEEvent] = []
        data = self._data
        for line in lines:
            # fast path for the two lines every event has: "data: ..." and the blank line
            if not line:
                if data:
                    out.append(SSEEvent(data[0] if len(data) == 1 else "\n".join(data),
                                        self._event or "message", self._id, self._retry))
                    data = self._data = []
                self._event = ""
            elif line[:6] == b"data: ":
                data.append(line[6:].decode("utf-8", "replace"))
            elif line[:7] == b"event: ":
                self._event = line[7:].decode("utf-8", "replace")
            else:
                self._line(line, out)
                data = self._data
        return out

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
