"""SSE decoding per the HTML Living Standard event-stream rules."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.wire.sse import SSEDecoder, SSEEvent
from tests.recordings import interactions
from tests.wire.streams import cut


def decode_all(chunks: list[bytes]) -> list[SSEEvent]:
    dec = SSEDecoder()
    out: list[SSEEvent] = []
    for c in chunks:
        out += dec.feed(c)
    return out + dec.close()


def test_line_endings_cr_lf_crlf_are_equivalent() -> None:
    """CR, LF and CRLF each end a line."""
    body = "event: a\ndata: 1\n\ndata: 2\n\n"
    want = decode_all([body.encode()])
    assert [(e.event, e.data) for e in want] == [("a", "1"), ("message", "2")]
    for eol in ("\r", "\r\n"):
        assert decode_all([body.replace("\n", eol).encode()]) == want


def test_multiline_data_joined_with_newline() -> None:
    """Several data lines form one payload joined by LF."""
    assert [e.data for e in decode_all([b"data: a\ndata:b\ndata\n\n"])] == ["a\nb\n"]


def test_comments_and_unknown_fields_are_ignored() -> None:
    """Lines starting with a colon and unknown field names do not dispatch."""
    dec = SSEDecoder()
    events = dec.feed(b": OPENROUTER PROCESSING\n\nfoo: bar\ndata: x\n\n")
    assert [e.data for e in events] == ["x"]
    assert dec.comments == 1


def test_only_one_leading_space_is_removed() -> None:
    """Exactly one space after the colon belongs to the syntax."""
    assert decode_all([b"data:  two\n\n"])[0].data == " two"


def test_id_persists_and_ignores_nul_retry_needs_digits() -> None:
    """The last event id carries over; a NUL in an id and a non-numeric retry are ignored."""
    events = decode_all([b"id: 1\nretry: 50\ndata: a\n\ndata: b\n\nid: x\x00y\nretry: 5s\ndata: c\n\n"])
    assert [(e.id, e.retry) for e in events] == [("1", 50), ("1", 50), ("1", 50)]


def test_event_without_data_is_not_dispatched_and_type_resets() -> None:
    """A blank line after only an event: field dispatches nothing and resets the type."""
    events = decode_all([b"event: ping\n\ndata: a\n\n"])
    assert [(e.event, e.data) for e in events] == [("message", "a")]


def test_leading_bom_dropped_even_when_split() -> None:
    """A UTF-8 BOM at the start of the stream is not part of the first field name."""
    raw = b"\xef\xbb\xbfdata: a\n\n"
    for i in range(len(raw)):
        assert [e.data for e in decode_all([raw[:i], raw[i:]])] == ["a"]


def test_final_event_without_blank_line_dispatched_on_close() -> None:
    """close() dispatches an event whose terminating blank line never came."""
    dec = SSEDecoder()
    assert dec.feed(b"data: a\n\ndata: last") == [SSEEvent("a")]
    assert dec.close() == [SSEEvent("last")]


def test_cr_at_chunk_end_then_lf_is_one_line_end() -> None:
    """A CRLF split between chunks is one line ending, not two (which would dispatch)."""
    assert decode_all([b"data: a\r", b"\ndata: b\r\n\r\n"]) == [SSEEvent("a\nb")]


def test_invalid_utf8_becomes_replacement_char() -> None:
    """Invalid UTF-8 decodes with U+FFFD instead of raising."""
    assert decode_all([b"data: \xff\xfe\n\n"])[0].data == "\ufffd\ufffd"


_streams = [
    inter["response"]["body"].encode()
    for _, _, inter, exp in interactions()
    if exp["stream"]
]


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(_streams), st.lists(st.integers(min_value=0), max_size=40))
def test_any_split_of_a_recorded_stream_gives_the_same_events(body: bytes, cuts: list[int]) -> None:
    """Splitting recorded bytes at arbitrary points never changes the decoded events."""
    chunks = cut(body, cuts)
    assert decode_all(chunks) == decode_all([body])


@given(st.lists(st.binary(max_size=64), max_size=20))
def test_random_bytes_never_raise(chunks: list[bytes]) -> None:
    """Any byte sequence decodes to some events; the decoder itself never raises."""
    for ev in decode_all(chunks):
        assert isinstance(ev.data, str)


def test_recorded_event_counts_match_expect() -> None:
    """Every recorded stream dispatches exactly the number of events the reference parser saw."""
    checked = 0
    for _, _, inter, exp in interactions():
        if exp["stream"]:
            assert len(decode_all([inter["response"]["body"].encode()])) == exp["sse_event_count"]
            checked += 1
    assert checked == len(_streams) > 0


def reference(body: bytes) -> list[SSEEvent]:
    """The event-stream rules applied line by line to a whole body (the spec, plainly)."""
    if body.startswith(b"\xef\xbb\xbf"):
        body = body[3:]
    text = body.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    out: list[SSEEvent] = []
    data: list[str] = []
    event, last_id, retry = "", None, None
    for line in [*text.split(b"\n"), b""]:
        if not line:
            if data:
                out.append(SSEEvent("\n".join(data), event or "message", last_id, retry))
            data, event = [], ""
            continue
        if line.startswith(b":"):
            continue
        name, colon, value = line.partition(b":")
        if colon and value.startswith(b" "):
            value = value[1:]
        v = value.decode("utf-8", "replace")
        if name == b"data":
            data.append(v)
        elif name == b"event":
            event = v
        elif name == b"id" and b"\x00" not in value:
            last_id = v
        elif name == b"retry" and value.isdigit() and value.isascii():
            retry = int(value)
    return out


_PIECES = [b"data: ", b"data:", b"event: ", b"event: ping", b"id: 7", b"retry: 10", b": hi",
           b'{"a": 1}', b"x", b"\n", b"\n\n", b"\r\n", b"\r", b"\xff", b"\xef\xbb\xbf",
           b"data: [DONE]\n\n", b'event: delta\ndata: {"t": "w"}\n\n']


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(_PIECES), max_size=30).map(b"".join),
       st.lists(st.integers(min_value=0), max_size=12))
def test_any_split_decodes_as_the_line_rules_say(body: bytes, cuts: list[int]) -> None:
    """Any body of event-stream pieces, split anywhere, decodes exactly as a plain reading
    of the line rules says (the decoder's fast paths change nothing but the speed)."""
    chunks = cut(body, cuts)
    assert decode_all(chunks) == reference(body)
