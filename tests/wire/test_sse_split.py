"""EventSplitter: the codecs' fast path gives exactly the events the standard decoder gives."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.wire.sse_split import EventSplitter, Pair
from tests.wire.streams import cut
from tests.wire.test_sse import _PIECES, _streams, reference


def split_all(chunks: list[bytes]) -> list[Pair]:
    sp = EventSplitter()
    out: list[Pair] = []
    for c in chunks:
        out += sp.feed(c)
    return out + sp.close()


def as_text(pairs: list[Pair]) -> list[tuple[str, str]]:
    """What a consumer reads: bytes data decoded as the standard decoder would."""
    return [(name, data if isinstance(data, str) else data.decode("utf-8", "replace"))
            for name, data in pairs]


def test_the_common_shapes_keep_their_data_as_bytes() -> None:
    """``data:`` alone and ``event:`` + ``data:`` blocks come out as bytes, untouched."""
    body = b'data: {"a": 1}\n\nevent: delta\ndata: {"t": "\xc3\xa9"}\n\ndata: [DONE]\n\n'
    assert split_all([body]) == [("message", b'{"a": 1}'), ("delta", b'{"t": "\xc3\xa9"}'),
                                 ("message", b"[DONE]")]


def test_other_shapes_follow_the_standard() -> None:
    """Comments, several data lines, CR line ends, a BOM and a cut-off last event read as
    the standard says."""
    assert as_text(split_all([b": hi\ndata: a\ndata:b\n\n"])) == [("message", "a\nb")]
    assert as_text(split_all([b"data: a\r\n\r\ndata: b\r\n\r\n"])) == [("message", "a"),
                                                                      ("message", "b")]
    assert as_text(split_all([b"\xef\xbb", b"\xbfdata: a\n\n"])) == [("message", "a")]
    assert as_text(split_all([b"data: a\n\ndata: la", b"st"])) == [("message", "a"),
                                                                   ("message", "last")]


# the standard pieces, and pieces at the edges of the fast path's shapes (spaces at the ends
# of data and types, an event type alone, a data line after an event type, bare LFs)
_MORE = [*_PIECES, b" ", b"data:  a \n\n", b"event:  x \ndata: y\n\n", b"event: x\n",
         b"data: \xc3\xa9\n", b"\n\n\n", b"data: {}\n\ndata: [DONE]\n\n"]


def expected(body: bytes) -> list[tuple[str, str]]:
    return [(ev.event, ev.data) for ev in reference(body)]


@settings(max_examples=600, deadline=None)
@given(st.lists(st.sampled_from(_MORE), max_size=30).map(b"".join),
       st.lists(st.integers(min_value=0), max_size=12))
def test_any_split_gives_what_the_line_rules_say(body: bytes, cuts: list[int]) -> None:
    """Any body of event-stream pieces, split anywhere, gives the events (type and data) a
    plain reading of the line rules gives."""
    assert as_text(split_all(cut(body, cuts))) == expected(body)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=64), max_size=20))
def test_random_bytes_give_what_the_line_rules_say(chunks: list[bytes]) -> None:
    """Random bytes in random chunks: the same events as the line rules, never an error."""
    assert as_text(split_all(chunks)) == expected(b"".join(chunks))


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(_streams), st.lists(st.integers(min_value=0), max_size=40))
def test_any_split_of_a_recorded_stream_gives_the_standard_events(body: bytes,
                                                                  cuts: list[int]) -> None:
    """Every recorded provider stream, split anywhere: the same events as the line rules."""
    assert as_text(split_all(cut(body, cuts))) == expected(body)
