"""Server-Sent Events framing (pure): records in, bytes out.

A record is one event: ``id: <seq>``, ``event: <record type>``, ``data: <the record's
JSON line>``; a live ``text_delta`` has no ``id`` (it is never replayed, so a reconnecting
client's ``Last-Event-ID`` stays on the last record). A heartbeat is a comment line, which
every client ignores. ``stream_end`` tells a watcher why its stream ended early (it was too
slow, or the server is shutting down) and where to resume.
"""

from __future__ import annotations

import msgspec

__all__ = ["HEARTBEAT", "RETRY", "comment", "frame", "parse_last_event_id", "stream_end"]

HEARTBEAT = b": keep-alive\n\n"
RETRY = b"retry: 2000\n\n"        # how long an EventSource waits before it reconnects


def _clean(text: str) -> str:
    return text.replace("\r", " ").replace("\n", " ")


def frame(event: str, data: bytes, seq: int | None = None) -> bytes:
    """One event; ``data`` is a single JSON line (JSON never holds a raw newline)."""
    head = f"id: {seq}\n" if seq is not None else ""
    body = data.replace(b"\r", b"").replace(b"\n", b"\ndata: ")
    return f"{head}event: {_clean(event)}\n".encode() + b"data: " + body + b"\n\n"


def comment(text: str) -> bytes:
    return f": {_clean(text)}\n\n".encode()


def stream_end(reason: str, last_event_id: int, message: str) -> bytes:
    """The last event of a stream that ends before ``session_end``: ``reason`` is
    ``dropped`` (the watcher fell behind) or ``shutdown``; reconnect with ``Last-Event-ID:
    <last_event_id>`` to get the rest."""
    data = msgspec.json.encode({"reason": reason, "last_event_id": last_event_id,
                                "message": message})
    return frame("stream_end", data)


def parse_last_event_id(value: str | None) -> int | None:
    """The record position a client resumes after; None when absent; ValueError when it
    is not a non-negative integer."""
    if value is None:
        return None
    text = value.strip()
    if not text.isdigit() or len(text) > 15:
        raise ValueError(f"not a record position: {value[:40]!r}")
    return int(text)
