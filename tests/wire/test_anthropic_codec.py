"""The Anthropic codec's response side: the stream state machine, malformed input, and the
fake server's encode -> client decode invariant."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.errors import ErrorKind, ProviderError
from runtime.events import ErrorEvent, Event, Finish, assemble
from runtime.model import (
    BuiltinToolPart,
    Message,
    ReasoningPart,
    Request,
    Response,
    TextPart,
    ToolCallPart,
    Usage,
)
from runtime.testing.wire import anthropic as server
from runtime.wire import anthropic
from runtime.wire.sse import SSEEvent
from tests.wire.streams import decode_chunks

A = anthropic.PROTOCOL


def _stream(chunks: list[bytes]) -> list[Event]:
    return decode_chunks(anthropic, chunks)


def _sse(event: str, data: dict[str, Any] | str, named: bool = True) -> bytes:
    text = data if isinstance(data, str) else json.dumps(data)
    head = f"event: {event}\n" if named else ""
    return f"{head}data: {text}\n\n".encode()


START = {"type": "message_start", "message": {
    "id": "msg_1", "model": "claude-x", "content": [],
    "usage": {"input_tokens": 10, "cache_read_input_tokens": 5,
              "cache_creation_input_tokens": 2, "output_tokens": 1}}}


def _text_block(i: int, text: str) -> list[bytes]:
    return [
        _sse("content_block_start", {"type": "content_block_start", "index": i,
                                     "content_block": {"type": "text", "text": ""}}),
        _sse("content_block_delta", {"type": "content_block_delta", "index": i,
                                     "delta": {"type": "text_delta", "text": text}}),
        _sse("content_block_stop", {"type": "content_block_stop", "index": i}),
    ]


END = [
    _sse("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                           "usage": {"output_tokens": 7, "input_tokens": None}}),
    _sse("message_stop", {"type": "message_stop"}),
]


def _req(messages: list[Message], **kw: Any) -> Request:
    return Request(model="claude-x", messages=messages, **kw)

# ---------------------------------------------------------------- stream decoding


def test_stream_usage_merge_ping_and_unknown_events() -> None:
    """message_delta usage wins field by field; ping and unknown events change nothing."""
    chunks = [_sse("message_start", START), _sse("ping", {"type": "ping"}),
              *_text_block(0, "hello"),
              _sse("future_event", {"type": "future_event", "x": 1}), *END]
    events = _stream(chunks)
    resp = assemble(events, protocol=A)
    assert resp.text == "hello" and resp.id == "msg_1" and resp.model == "claude-x"
    assert resp.usage == Usage(input_tokens=17, output_tokens=7, cache_read_tokens=5,
                               cache_write_tokens=2)
    assert resp.usage_raw is not None and resp.usage_raw["input_tokens"] == 10
    assert isinstance(events[-1], Finish) and events[-1].normalized == "stop"


def test_thinking_stream_and_unknown_delta_types() -> None:
    """thinking/signature deltas concatenate into one part; a citations_delta is ignored."""
    chunks = [
        _sse("message_start", START),
        _sse("content_block_start", {"type": "content_block_start", "index": 0,
                                     "content_block": {"type": "thinking", "thinking": "",
                                                       "signature": ""}}),
        _delta(0, {"type": "thinking_delta", "thinking": "Let me "}),
        _delta(0, {"type": "thinking_delta", "thinking": "think."}),
        _delta(0, {"type": "signature_delta", "signature": "SIG1"}),
        _delta(0, {"type": "signature_delta", "signature": "SIG2"}),
        _sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
        *_text_block(1, "answer")[:2],
        _delta(1, {"type": "citations_delta", "citation": {"type": "char_location"}}),
        _sse("content_block_stop", {"type": "content_block_stop", "index": 1}),
        *END,
    ]
    resp = assemble(_stream(chunks), protocol=A)
    [r] = resp.reasoning
    assert (r.kind, r.text, r.signature, r.protocol) == ("thinking", "Let me think.", "SIG1SIG2", A)
    assert r.raw == {"type": "thinking", "thinking": "Let me think.", "signature": "SIG1SIG2"}
    assert resp.text_parts == ["answer"]


def test_stream_without_event_lines_uses_data_type() -> None:
    """A server that omits `event:` lines is decoded from each data's own type."""
    named = [_sse("message_start", START), *_text_block(0, "hi"), *END]
    bare = [re.sub(rb"^event: [a-z_]+\n", b"", c) for c in named]
    assert assemble(_stream(bare)) == assemble(_stream(named))
    assert assemble(_stream(bare)).text == "hi"


def test_llama_cpp_interleaved_blocks() -> None:
    """llama.cpp: chatcmpl id, no ping, tool start without input, both blocks stopped late."""
    start = {"type": "message_start", "message": {"id": "chatcmpl-abc", "model": "local",
                                                  "usage": {"input_tokens": 3}}}
    chunks = [
        _sse("message_start", start),
        _sse("content_block_start", {"type": "content_block_start", "index": 0,
                                     "content_block": {"type": "text", "text": ""}}),
        _sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                     "delta": {"type": "text_delta", "text": "ok"}}),
        _sse("content_block_start", {"type": "content_block_start", "index": 1,
                                     "content_block": {"type": "tool_use", "id": "X9k2",
                                                       "name": "read_file"}}),
        _sse("content_block_delta", {"type": "content_block_delta", "index": 1,
                                     "delta": {"type": "input_json_delta",
                                               "partial_json": '{"path": "a'}}),
        _sse("content_block_delta", {"type": "content_block_delta", "index": 1,
                                     "delta": {"type": "input_json_delta",
                                               "partial_json": '.txt"}'}}),
        _sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
        _sse("content_block_stop", {"type": "content_block_stop", "index": 1}),
        _sse("message_delta", {"type": "message_delta", "delta": {"stop_reason": "tool_use"},
                               "usage": {"output_tokens": 4}}),
        _sse("message_stop", {"type": "message_stop"}),
    ]
    resp = assemble(_stream(chunks), protocol=A)
    assert resp.id == "chatcmpl-abc" and resp.text == "ok"
    assert [(c.id, c.name, json.loads(c.arguments)) for c in resp.tool_calls] == [
        ("X9k2", "read_file", {"path": "a.txt"})]
    assert resp.stop == "tool_calls"
    assert resp.usage == Usage(input_tokens=3, output_tokens=4)


@pytest.mark.parametrize(("start_input", "want"), [(None, {}), ({}, {}), ({"k": 1}, {"k": 1})])
def test_tool_use_without_deltas_takes_start_input(start_input: dict[str, Any] | None,
                                                   want: dict[str, Any]) -> None:
    """A tool_use block with no input_json_delta has the input of its start block."""
    block: dict[str, Any] = {"type": "tool_use", "id": "t1", "name": "f"}
    if start_input is not None:
        block["input"] = start_input
    chunks = [_sse("message_start", START),
              _sse("content_block_start", {"type": "content_block_start", "index": 0,
                                           "content_block": block}),
              _sse("content_block_stop", {"type": "content_block_stop", "index": 0}), *END]
    resp = assemble(_stream(chunks))
    assert [json.loads(c.arguments) for c in resp.tool_calls] == [want]


def test_error_inside_200_stream() -> None:
    """An `event: error` becomes an ErrorEvent; the stream may then end without message_stop."""
    err = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    events = _stream([_sse("message_start", START), *_text_block(0, "par"),
                      _sse("error", err)])
    errors = [e for e in events if isinstance(e, ErrorEvent)]
    assert len(errors) == 1
    assert errors[0].kind == ErrorKind.OVERLOADED and errors[0].type == "overloaded_error"
    assert errors[0].message == "Overloaded" and errors[0].in_stream
    assert not any(isinstance(e, Finish) for e in events)


@pytest.mark.parametrize("cut", [0, 1, 3, 4, 5])
def test_cut_stream_is_interrupted(cut: int) -> None:
    """A stream that ends before message_stop is stream_interrupted, retryable."""
    chunks = [_sse("message_start", START), *_text_block(0, "abc"), END[0]][:cut]
    with pytest.raises(ProviderError) as info:
        _stream(chunks)
    assert info.value.kind == ErrorKind.STREAM_INTERRUPTED
    assert info.value.retryable


def _delta(i: int, delta: dict[str, Any]) -> bytes:
    return _sse("content_block_delta", {"type": "content_block_delta", "index": i,
                                        "delta": delta})


BAD_STREAMS = {
    "delta before message_start": [_delta(0, {"type": "text_delta", "text": "x"})],
    "delta for a block never started": [_sse("message_start", START),
                                        _delta(3, {"type": "text_delta", "text": "x"})],
    "another message_start": [_sse("message_start", START), _sse("message_start", {
        **START, "message": {**START["message"], "id": "msg_2"}})],
    "content after message_stop": [_sse("message_start", START), *END, *_text_block(0, "x")],
    "block started twice": [_sse("message_start", START), *_text_block(0, "a"),
                            *_text_block(0, "b")],
    "block after message_delta": [_sse("message_start", START), END[0], *_text_block(0, "a")],
    "delta after message_delta, block still open": [
        _sse("message_start", START), *_text_block(0, "a")[:2], END[0],
        _delta(0, {"type": "text_delta", "text": "late"})],
    "text delta on a tool block": [
        _sse("message_start", START),
        _sse("content_block_start", {"type": "content_block_start", "index": 0,
                                     "content_block": {"type": "tool_use", "id": "t",
                                                       "name": "f", "input": {}}}),
        _delta(0, {"type": "text_delta", "text": "x"})],
    "truncated json": [_sse("message_start", START),
                       _sse("content_block_start", '{"type":"content_block_start","index":0,')],
    "wrong types": [_sse("message_start", START),
                    _sse("content_block_start", {"type": "content_block_start", "index": "0",
                                                 "content_block": {"type": "text"}})],
    "text delta without text": [_sse("message_start", START),
                                *_text_block(0, "a")[:1], _delta(0, {"type": "text_delta"})],
    "html in data lines": [b"data: <html><body>502 Bad Gateway</body></html>\n\n"],
    "bad usage type": [_sse("message_start", START),
                       _sse("message_delta", {"type": "message_delta", "delta": {},
                                              "usage": {"output_tokens": "many"}})],
    "bad server tool input": [
        _sse("message_start", START),
        _sse("content_block_start", {"type": "content_block_start", "index": 0,
                                     "content_block": {"type": "server_tool_use", "id": "s",
                                                       "name": "web_search", "input": {}}}),
        _delta(0, {"type": "input_json_delta", "partial_json": '{"q": '}),
        _sse("content_block_stop", {"type": "content_block_stop", "index": 0})],
}


@pytest.mark.parametrize("name", list(BAD_STREAMS))
def test_bad_stream_is_malformed(name: str) -> None:
    """Surprising stream input is malformed_response (naming the state), never a crash."""
    with pytest.raises(ProviderError) as info:
        _stream(BAD_STREAMS[name])
    assert info.value.kind == ErrorKind.MALFORMED_RESPONSE, info.value
    assert "state" in info.value.message


def test_state_machine_names_the_state() -> None:
    """The error for an illegal move says which event came in which state."""
    dec = anthropic.StreamDecoder()
    dec.feed(SSEEvent(json.dumps(START), "message_start"))
    dec.feed(SSEEvent('{"type":"message_delta","delta":{"stop_reason":"end_turn"}}',
                      "message_delta"))
    dec.feed(SSEEvent('{"type":"message_stop"}', "message_stop"))
    with pytest.raises(ProviderError, match="content_block_stop event in stream state 'done'"):
        dec.feed(SSEEvent('{"type":"content_block_stop","index":0}', "content_block_stop"))
    assert dec.sse_events == 4
    assert isinstance(dec.close()[-1], Finish)
    with pytest.raises(ProviderError, match="state 'closed'"):
        dec.feed(SSEEvent('{"type":"ping"}', "ping"))


# ---------------------------------------------------------------- decode_body


BAD_BODIES = {
    "truncated": b'{"id": "msg_1", "content": [{"type": "text", "te',
    "html": b"<!DOCTYPE html><html><title>502 Bad Gateway</title></html>",
    "a list": b"[1, 2]",
    "content not a list": b'{"id": "m", "content": "hello"}',
    "text not a string": b'{"id": "m", "content": [{"type": "text", "text": 5}]}',
    "block without type": b'{"id": "m", "content": [{"text": "x"}]}',
    "tool_use without id": b'{"content": [{"type": "tool_use", "name": "f", "input": {}}]}',
    "input not an object": b'{"content": [{"type": "tool_use", "id": "t", "name": "f", '
                           b'"input": [1]}]}',
    "usage wrong type": b'{"content": [], "usage": {"input_tokens": "ten"}}',
    "stop_reason wrong type": b'{"content": [], "stop_reason": 3}',
}


@pytest.mark.parametrize("name", list(BAD_BODIES))
def test_bad_body_is_malformed(name: str) -> None:
    """A body that is not a Messages object is malformed_response, never another exception."""
    with pytest.raises(ProviderError) as info:
        anthropic.decode_body(BAD_BODIES[name])
    assert info.value.kind == ErrorKind.MALFORMED_RESPONSE


def test_error_object_in_200_body() -> None:
    """An error object in a 200 body is one ErrorEvent with the provider's kind and type."""
    body = json.dumps(server.error_body(529, "Overloaded")).encode()
    [ev] = anthropic.decode_body(body)
    assert isinstance(ev, ErrorEvent)
    assert (ev.kind, ev.type, ev.message) == ("overloaded", "overloaded_error", "Overloaded")


# ---------------------------------------------------------------- server side invariant


def _responses() -> dict[str, Response]:
    return {
        "text": Response(id="msg_t", model="claude-x", parts=[TextPart("Hello, wörld! " * 3)],
                         finish_reason="end_turn", usage=Usage(12, 5)),
        "parallel calls": Response(id="msg_p", model="claude-x", parts=[
            TextPart("Let me look."),
            ToolCallPart("toolu_1", "lookup", json.dumps({"city": "Tokyo", "n": [1, 2]})),
            ToolCallPart("toolu_2", "lookup", json.dumps({"city": "Paris"})),
            ToolCallPart("toolu_3", "ping", "{}"),
        ], finish_reason="tool_use", usage=Usage(40, 30)),
        "reasoning": Response(id="msg_r", model="claude-x", parts=[
            ReasoningPart(text="Thinking about it carefully.", kind="thinking",
                          signature="EqQBCkYIBxgCKkB" * 4),
            ReasoningPart(kind="redacted_thinking", encrypted="EmwKAhgBEgy3va3pzix"),
            TextPart("6"),
        ], finish_reason="end_turn", usage=Usage(20, 90)),
        "cache usage": Response(id="msg_c", model="claude-x", parts=[TextPart("cached")],
                                finish_reason="max_tokens",
                                usage=Usage(input_tokens=1532, output_tokens=33,
                                            cache_read_tokens=1111, cache_write_tokens=418)),
        "server tool": Response(id="msg_s", model="claude-x", parts=[
            BuiltinToolPart("server_tool_use", "srvtoolu_1", "web_search", A,
                            {"type": "server_tool_use", "id": "srvtoolu_1",
                             "name": "web_search", "input": {"query": "weather in Paris"}}),
            BuiltinToolPart("web_search_tool_result", "srvtoolu_1", None, A,
                            {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1",
                             "content": [{"type": "web_search_result", "url": "u"}]}),
            TextPart("Sunny."),
        ], finish_reason="end_turn", usage=Usage(7, 8)),
    }


def _view(r: Response) -> dict[str, Any]:
    return {
        "text_parts": r.text_parts,
        "calls": [(c.id, c.name, json.loads(c.arguments)) for c in r.tool_calls],
        "reasoning": [(p.kind, p.text, p.signature, p.encrypted) for p in r.reasoning],
        "builtin": [(p.item_type, p.id, p.name, p.raw) for p in r.parts
                    if isinstance(p, BuiltinToolPart)],
        "usage": r.usage, "finish_reason": r.finish_reason, "id": r.id,
    }


@pytest.mark.parametrize("name", list(_responses()))
@pytest.mark.parametrize("chunk_chars", [1, 8, 1000])
def test_server_encoding_decodes_back(name: str, chunk_chars: int) -> None:
    """encode_json and encode_stream both decode and assemble back to the response."""
    r = _responses()[name]
    want = _view(r)
    from_json = assemble(anthropic.decode_body(json.dumps(server.encode_json(r)).encode()), A)
    assert _view(from_json) == want
    chunks = server.encode_stream(r, chunk_chars=chunk_chars)
    assert all(c.startswith(b"event: ") and c.endswith(b"\n\n") for c in chunks)
    assert b"message_stop" in chunks[-1]
    from_stream = assemble(_stream(chunks), A)
    assert _view(from_stream) == want
    # and the decoded parts can be sent back to Anthropic as they came
    for p in from_stream.reasoning:
        assert p.protocol == A and p.raw is not None


def test_stream_splits_text_and_arguments() -> None:
    """Text and tool input arrive in pieces of chunk_chars, parallel calls at own indexes."""
    r = _responses()["parallel calls"]
    chunks = server.encode_stream(r, chunk_chars=4)
    deltas = [json.loads(c.split(b"data: ", 1)[1]) for c in chunks
              if c.startswith(b"event: content_block_delta")]
    texts = [d["delta"]["text"] for d in deltas if d["delta"]["type"] == "text_delta"]
    assert "".join(texts) == "Let me look." and max(map(len, texts)) == 4
    by_index: dict[int, str] = {}
    for d in deltas:
        if d["delta"]["type"] == "input_json_delta":
            by_index[d["index"]] = by_index.get(d["index"], "") + d["delta"]["partial_json"]
    assert sorted(by_index) == [1, 2, 3]
    assert json.loads(by_index[1]) == {"city": "Tokyo", "n": [1, 2]}


_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)


@settings(max_examples=40, deadline=None)
@given(texts=st.lists(_text, min_size=1, max_size=3),
       args=st.lists(st.dictionaries(st.text(max_size=5), st.integers() | _text, max_size=3),
                     max_size=3),
       chunk=st.integers(1, 12), split=st.integers(1, 50))
def test_any_response_any_split_round_trips(texts: list[str], args: list[dict[str, Any]],
                                            chunk: int, split: int) -> None:
    """Whatever the text and arguments and however the bytes are cut, decoding is exact."""
    parts: list[Any] = [TextPart(t) for t in texts]
    parts += [ToolCallPart(f"toolu_{i}", "f", json.dumps(a)) for i, a in enumerate(args)]
    r = Response(id="msg_h", model="m", parts=parts, usage=Usage(3, 4))
    data = b"".join(server.encode_stream(r, chunk_chars=chunk))
    pieces = [data[i:i + split] for i in range(0, len(data), split)]
    got = assemble(_stream(pieces), A)
    assert got.text_parts == texts
    assert [json.loads(c.arguments) for c in got.tool_calls] == args
    assert got.finish_reason == ("tool_use" if args else "end_turn")


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.sampled_from(["type", "index", "delta", "text", "content",
                                       "content_block", "usage", "id", "name", "input",
                                       "message", "partial_json", "stop_reason", "error"]),
                      inner, max_size=5),
    max_leaves=12)
_names = st.sampled_from(["message_start", "content_block_start", "content_block_delta",
                          "content_block_stop", "message_delta", "message_stop", "ping",
                          "error", "message", "junk"])


@settings(max_examples=60, deadline=None)
@given(st.booleans(), st.lists(st.tuples(_names, _json), max_size=8))
def test_fuzzed_streams_raise_only_provider_errors(opened: bool,
                                                   events: list[tuple[str, Any]]) -> None:
    """Any sequence of events with any JSON decodes or raises ProviderError, nothing else."""
    dec = anthropic.StreamDecoder()
    if opened:  # start inside a message with a text and a tool block open
        events = [("message_start", START),
                  ("content_block_start", {"index": 0, "content_block": {"type": "text"}}),
                  ("content_block_start", {"index": 1, "content_block": {
                      "type": "tool_use", "id": "t", "name": "f"}}), *events]
    try:
        for name, data in events:
            dec.feed(SSEEvent(json.dumps(data), name))
        dec.close()
    except ProviderError:
        pass


@settings(max_examples=60, deadline=None)
@given(_json)
def test_fuzzed_bodies_raise_only_provider_errors(data: Any) -> None:
    """Any JSON body decodes to events or raises ProviderError, nothing else."""
    try:
        anthropic.decode_body(json.dumps(data).encode())
    except ProviderError:
        pass
