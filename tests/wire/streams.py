"""Decoding an event stream cut into chunks, for the wire tests: the standard path
(``SSEDecoder``, ``StreamDecoder.feed``) and the HTTP provider's fast path (``EventSplitter``,
the data as bytes, ``StreamDecoder.feed_all`` per chunk)."""

from __future__ import annotations

from types import ModuleType

from runtime.errors import ProviderError
from runtime.events import Event, TextDelta
from runtime.wire import codec_for
from runtime.wire.sse import SSEDecoder
from runtime.wire.sse_split import EventSplitter

__all__ = ["cut", "decode_chunks", "fast_chunks", "fast_run", "merge_text", "standard_run"]


def cut(body: bytes, cuts: list[int]) -> list[bytes]:
    """``body`` split at the points ``cuts`` name (each taken modulo ``len(body) + 1``)."""
    points = sorted({c % (len(body) + 1) for c in cuts})
    return [body[a:b] for a, b in zip([0, *points], [*points, len(body)], strict=True)]


def decode_chunks(codec: ModuleType, chunks: list[bytes],
                  out: list[Event] | None = None) -> list[Event]:
    """The events of a stream by the standard path, ``close()``'s included, appended to
    ``out`` (which keeps what came before a ``ProviderError`` that stops the decode)."""
    out = [] if out is None else out
    sse = SSEDecoder()
    dec = codec.StreamDecoder()
    for c in chunks:
        for ev in sse.feed(c):
            out += dec.feed(ev)
    for ev in sse.close():
        out += dec.feed(ev)
    out += dec.close()
    return out


def fast_chunks(codec: ModuleType, chunks: list[bytes],
                out: list[Event] | None = None) -> list[Event]:
    """``decode_chunks`` by the fast path (runs of text deltas may come as one delta)."""
    out = [] if out is None else out
    sse = EventSplitter()
    dec = codec.StreamDecoder()
    for c in chunks:
        dec.feed_all(sse.feed(c), out)
    dec.feed_all(sse.close(), out)
    out += dec.close()
    return out


def standard_run(protocol: str, chunks: list[bytes]
                 ) -> tuple[list[Event], ProviderError | None]:
    """The standard path's events and the error that ended the decode, if any."""
    out: list[Event] = []
    try:
        decode_chunks(codec_for(protocol), chunks, out)
    except ProviderError as exc:
        return out, exc
    return out, None


def fast_run(protocol: str, chunks: list[bytes]) -> tuple[list[Event], ProviderError | None]:
    """The fast path's events, text runs merged (``merge_text``), and the error that ended
    the decode, if any."""
    out: list[Event] = []
    try:
        fast_chunks(codec_for(protocol), chunks, out)
    except ProviderError as exc:
        return merge_text(out), exc
    return merge_text(out), None


def merge_text(events: list[Event]) -> list[Event]:
    """Runs of text deltas of one part as one delta (what ``feed_all`` may give): the
    form in which the fast and the standard path must agree."""
    out: list[Event] = []
    for ev in events:
        last = out[-1] if out else None
        if (isinstance(ev, TextDelta) and isinstance(last, TextDelta) and ev.meta is None
                and ev.index == last.index):
            out[-1] = TextDelta(last.text + ev.text, last.index, last.meta)
        else:
            out.append(ev)
    return out
