"""Anthropic streams that carry the answer whole in ``message_start`` (programmatic tool
calling), repeated and spliced ``message_start`` events, and the ``caller`` of a tool_use
block going back on the next turn."""

from __future__ import annotations

import json
from typing import Any

import pytest

from runtime.errors import ErrorKind, ProviderError
from runtime.events import Event, Finish, ToolCallEnd, ToolCallStart, assemble
from runtime.model import BuiltinToolPart, Message, Request, ToolResultPart
from runtime.wire import anthropic
from tests.wire.streams import decode_chunks

A = anthropic.PROTOCOL
CALLER = {"type": "code_execution_20250825", "tool_id": "srvtoolu_01"}
BLOCKS: list[dict[str, Any]] = [
    {"type": "text", "text": "Let me check both files."},
    {"type": "server_tool_use", "id": "srvtoolu_01", "name": "code_execution",
     "input": {"code": "await read_file('a.txt')"}},
    {"type": "tool_use", "id": "toolu_01", "name": "read_file",
     "input": {"path": "a.txt"}, "caller": CALLER},
]
USAGE = {"input_tokens": 20, "output_tokens": 9, "cache_read_input_tokens": 0,
         "cache_creation_input_tokens": 0}


def _sse(data: dict[str, Any]) -> bytes:
    return f"event: {data['type']}\ndata: {json.dumps(data)}\n\n".encode()


def _start(content: list[dict[str, Any]], stop: str | None, mid: str = "msg_whole") -> bytes:
    return _sse({"type": "message_start", "message": {
        "id": mid, "type": "message", "role": "assistant", "model": "claude-x",
        "content": content, "stop_reason": stop, "stop_sequence": None, "usage": USAGE}})


DELTA = _sse({"type": "message_delta", "delta": {"stop_reason": "tool_use"},
              "usage": {"output_tokens": 9}})
STOP = _sse({"type": "message_stop"})


def _decode(chunks: list[bytes]) -> list[Event]:
    return decode_chunks(anthropic, chunks)


def _streamed() -> list[bytes]:
    """The same answer sent the ordinary way: one content block event triple each."""
    out = [_start([], None)]
    for i, block in enumerate(BLOCKS):
        start = {**block, "input": {}} if "input" in block else {**block, "text": ""}
        out.append(_sse({"type": "content_block_start", "index": i, "content_block": start}))
        if block["type"] == "text":
            delta: dict[str, Any] = {"type": "text_delta", "text": block["text"]}
        else:
            delta = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
        out.append(_sse({"type": "content_block_delta", "index": i, "delta": delta}))
        out.append(_sse({"type": "content_block_stop", "index": i}))
    return [*out, DELTA, STOP]


@pytest.mark.parametrize("tail", [[DELTA, STOP], [STOP], []], ids=["delta", "stop", "none"])
def test_answer_whole_in_message_start_decodes_like_a_streamed_one(tail: list[bytes]) -> None:
    """Blocks and stop_reason inside message_start give the events of the same answer
    streamed block by block (also when message_delta, or everything after it, is absent)."""
    events = _decode([_start(BLOCKS, "tool_use"), *tail])
    resp = assemble(events, A)
    want = assemble(_decode(_streamed()), A)
    assert resp.text == want.text == "Let me check both files."
    assert [(c.id, c.name, json.loads(c.arguments)) for c in resp.tool_calls] == [
        ("toolu_01", "read_file", {"path": "a.txt"})]
    assert [(c.id, c.name, json.loads(c.arguments)) for c in resp.tool_calls] == [
        (c.id, c.name, json.loads(c.arguments)) for c in want.tool_calls]
    assert [type(p) for p in resp.parts] == [type(p) for p in want.parts]
    assert [p.raw for p in resp.parts if isinstance(p, BuiltinToolPart)] == [BLOCKS[1]]
    assert resp.finish_reason == "tool_use" and resp.stop == "tool_calls"
    assert isinstance(events[-1], Finish) and events[-1].normalized == "tool_calls"
    assert resp.usage is not None and resp.usage.output_tokens == 9


def test_tool_call_caller_goes_back_on_the_next_turn() -> None:
    """A programmatic tool_use keeps its `caller` (streamed or whole), and the next request
    sends it back with the block, so the code execution that made the call can resume."""
    for chunks in (_streamed(), [_start(BLOCKS, "tool_use"), STOP]):
        resp = assemble(_decode(chunks), A)
        [call] = resp.tool_calls
        assert call.raw is not None and call.raw["caller"] == CALLER
        body = anthropic.encode_request(Request("claude-x", [
            Message.user("q"), resp.message(),
            Message("tool", [ToolResultPart("toolu_01", "hello")])]), stream=True)
        [tool_use] = [b for b in body["messages"][1]["content"] if b["type"] == "tool_use"]
        assert tool_use == {"type": "tool_use", "id": "toolu_01", "name": "read_file",
                            "input": {"path": "a.txt"}, "caller": CALLER}


def test_identical_repeated_message_start_is_tolerated() -> None:
    """A proxy that repeats message_start verbatim (same id, same content) changes nothing."""
    once = _decode([_start(BLOCKS, "tool_use"), DELTA, STOP])
    twice = _decode([_start(BLOCKS, "tool_use"), _start(BLOCKS, "tool_use"), DELTA, STOP])
    assert twice == once
    plain = _streamed()
    again = [plain[0], plain[0], *plain[1:]]
    assert _decode(again) == _decode(plain)


@pytest.mark.parametrize("second", [
    _start([], None, mid="msg_other"),
    _start(BLOCKS[:1], "end_turn"),
    _start([{"type": "text", "text": "something else"}], None),
], ids=["other-id", "other-content", "same-id-new-block"])
def test_a_different_message_spliced_in_is_malformed(second: bytes) -> None:
    """A second message_start that is not a verbatim repeat is malformed_response, whether
    it arrives right after the first or after content was streamed."""
    for head in ([_start(BLOCKS, "tool_use")], _streamed()[:4]):
        with pytest.raises(ProviderError) as info:
            _decode([*head, second, DELTA, STOP])
        assert info.value.kind is ErrorKind.MALFORMED_RESPONSE
        assert "message_start" in info.value.message


def test_streamed_block_at_an_index_message_start_delivered_is_malformed() -> None:
    """A content_block_start for an index that message_start already delivered whole would
    count the block twice: malformed_response naming the block."""
    dup = _sse({"type": "content_block_start", "index": 0,
                "content_block": {"type": "text", "text": ""}})
    with pytest.raises(ProviderError) as info:
        _decode([_start(BLOCKS, None), dup, DELTA, STOP])
    assert info.value.kind is ErrorKind.MALFORMED_RESPONSE and "0" in info.value.message


def test_whole_start_blocks_come_before_streamed_ones_in_index_order() -> None:
    """Blocks delivered in message_start keep their positions; streamed blocks follow."""
    more = [_sse({"type": "content_block_start", "index": 1,
                  "content_block": {"type": "tool_use", "id": "toolu_02", "name": "f",
                                    "input": {}}}),
            _sse({"type": "content_block_stop", "index": 1})]
    events = _decode([_start(BLOCKS[:1], None), *more, DELTA, STOP])
    starts = [e for e in events if isinstance(e, ToolCallStart)]
    ends = [e for e in events if isinstance(e, ToolCallEnd)]
    assert [(s.index, s.id) for s in starts] == [(1, "toolu_02")] and len(ends) == 1
    resp = assemble(events, A)
    assert resp.text == "Let me check both files." and resp.finish_reason == "tool_use"
