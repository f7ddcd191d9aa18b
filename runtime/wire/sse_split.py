"""The codecs' fast path through an event stream: ``(event type, data)`` per event, the data
as the bytes that arrived.

``EventSplitter`` gives exactly the events ``SSEDecoder`` dispatches (same types, same
data), without what the codecs do not need: the data stays ``bytes`` (msgspec decodes bytes
and checks their UTF-8 itself; a consumer falls back to ``data.decode("utf-8", "replace")``,
what ``SSEDecoder`` gives, only when that refuses them), and no per-event object is made
besides the pair. Lines are read by the standard's rules (``data``, ``event``, comments and
other fields; ``id`` and ``retry`` change nothing a pair holds). Line ends other than LF or
a byte order mark at the start hand the rest of the stream to an ``SSEDecoder``, from the
start of the event being read, so conformance never depends on the shape: pairs whose data
is then ``str``.

Pure: no I/O. Property tests check it against a plain reading of the line rules for any
bytes and any split.
"""

from __future__ import annotations

from .sse import SSEDecoder, SSEEvent

__all__ = ["EventSplitter", "Pair"]

Pair = tuple[str, bytes | str]  # (event type, data)

_BOM = b"\xef\xbb\xbf"


class EventSplitter:
    __slots__ = ("_buf", "_data", "_event", "_names", "_slow", "_started")

    def __init__(self) -> None:
        self._buf = b""
        self._started = False
        self._slow: SSEDecoder | None = None
        self._data: list[bytes] = []  # the data lines of the event being read
        self._event = b""             # its type, as sent
        self._names: dict[bytes, str] = {}  # event types seen, decoded once

    def feed(self, chunk: bytes) -> list[Pair]:
        slow = self._slow
        if slow is not None:
            return _pairs(slow.feed(chunk))
        buf = self._buf + chunk if self._buf else chunk
        if not self._started:
            if len(buf) < 3 and _BOM.startswith(buf):
                self._buf = buf
                return []
            self._started = True
            if buf.startswith(_BOM):
                return self._hand_over(buf, at_start=True)
        if b"\r" in buf:
            return self._hand_over(buf, at_start=False)
        lines = buf.split(b"\n")
        self._buf = lines.pop()
        out: list[Pair] = []
        append = out.append
        # HOT PATH: per line. The event being read lives in locals (written back at the end
        # and around the rare other fields): no attribute store or method call per event.
        data, event, names = self._data, self._event, self._names
        for line in lines:
            if not line:  # the blank line that ends an event
                if data:
                    if event:
                        name = names.get(event)
                        if name is None:
                            name = self._name(event)
                    else:
                        name = "message"
                    append((name, data[0] if len(data) == 1 else b"\n".join(data)))
                    data = []
                event = b""
            elif line[:6] == b"data: ":
                data.append(line[6:])
            elif line[:7] == b"event: ":
                event = line[7:]
            else:
                self._data, self._event = data, event
                self._field(line)
                data, event = self._data, self._event
        self._data, self._event = data, event
        return out

    def close(self) -> list[Pair]:
        """End of stream: the event whose blank line never came, if it has data."""
        if self._slow is not None:
            return _pairs(self._slow.close())
        tail, self._buf = self._buf, b""
        if not self._started:  # fewer than 3 bytes, a BOM's start
            slow = SSEDecoder()
            return _pairs(slow.feed(tail)) + _pairs(slow.close())
        if not tail and not self._data:
            return []
        return self.feed(tail + b"\n\n")  # the tail has no CR: it stays on this path

    def _name(self, raw: bytes) -> str:
        name = self._names.get(raw)
        if name is None:
            name = raw.decode("utf-8", "replace") or "message"
            if len(self._names) < 64:  # a protocol has a handful of types
                self._names[raw] = name
        return name

    def _field(self, line: bytes) -> None:
        """Any other line, by the standard's rules (only ``data`` and ``event`` matter for
        the pairs: comments, ``id``, ``retry`` and unknown fields change nothing here)."""
        if line[0] == 58:  # b":" comment
            return
        name, colon, value = line.partition(b":")
        if colon and value[:1] == b" ":
            value = value[1:]
        if name == b"data":
            self._data.append(value)
        elif name == b"event":
            self._event = value

    def _hand_over(self, buf: bytes, *, at_start: bool) -> list[Pair]:
        """The rest of the stream goes to the standard decoder, starting with ``buf``: the
        stream from its very beginning (``at_start``), or what follows the lines already
        read (the decoder gets the event being read, with its lines so far)."""
        self._buf = b""
        slow = self._slow = SSEDecoder()
        if not at_start:
            slow.feed(_BOM)  # past the start: a BOM here is data, not dropped
            pending = b"".join(b"data: " + d + b"\n" for d in self._data)
            if self._event:
                pending = b"event: " + self._event + b"\n" + pending
            buf = pending + buf
        self._data, self._event = [], b""
        return _pairs(slow.feed(buf))


def _pairs(events: list[SSEEvent]) -> list[Pair]:
    return [(ev.event, ev.data) for ev in events]
