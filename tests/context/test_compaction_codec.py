"""Vendor compaction items (strategy: provider): decoded from JSON bodies and streams in
the documented shapes, kept as parts, sent back as each vendor requires; the ledger counts
the conversation from the latest one; the request options."""

from __future__ import annotations

import json
from typing import Any

from runtime.context import ContextManager, ContextPolicy, vendor_options
from runtime.context.vendor import ANTHROPIC_COMPACTION_BETA, ANTHROPIC_CONTEXT_BETA
from runtime.events import assemble
from runtime.model import BuiltinToolPart, Message, Params, Request
from runtime.wire import codec_for, decode_all

# Shapes as the vendors document them (anthropic-sdk-python BetaCompactionBlock /
# BetaCompactionContentBlockDelta; openai-python ResponseCompactionItem).
ANTHROPIC_BODY = {
    "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-opus-4-6",
    "content": [
        {"type": "compaction", "content": "Summary: the agent fixed tests 1-3.",
         "encrypted_content": "EncOpaque=="},
        {"type": "text", "text": "Continuing with test 4."}],
    "stop_reason": "end_turn",
    "usage": {"input_tokens": 900, "output_tokens": 40}}


def sse(events: list[dict[str, Any]]) -> bytes:
    return b"".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events)


ANTHROPIC_STREAM = sse([
    {"type": "message_start", "message": {"id": "msg_2", "model": "claude-opus-4-6",
                                          "usage": {"input_tokens": 900, "output_tokens": 1}}},
    {"type": "content_block_start", "index": 0, "content_block": {
        "type": "compaction", "content": None, "encrypted_content": None}},
    {"type": "content_block_delta", "index": 0, "delta": {
        "type": "compaction_delta", "content": "Summary: the agent fixed ",
        "encrypted_content": None}},
    {"type": "content_block_delta", "index": 0, "delta": {
        "type": "compaction_delta", "content": "tests 1-3.", "encrypted_content": "EncOpaque=="}},
    {"type": "content_block_stop", "index": 0},
    {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}},
    {"type": "content_block_delta", "index": 1, "delta": {
        "type": "text_delta", "text": "Continuing with test 4."}},
    {"type": "content_block_stop", "index": 1},
    {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
     "usage": {"output_tokens": 40}},
    {"type": "message_stop"}])

COMPACTION_ITEM = {"type": "compaction", "id": "cmp_1", "encrypted_content": "gAAAAOpaque",
                   "created_by": "server"}
RESPONSES_BODY = {
    "id": "resp_1", "object": "response", "status": "completed", "model": "gpt-5",
    "output": [COMPACTION_ITEM, {"type": "message", "id": "msg_1", "role": "assistant",
                                 "content": [{"type": "output_text", "text": "Continuing."}]}],
    "usage": {"input_tokens": 1000, "output_tokens": 10}}
RESPONSES_STREAM = sse([
    {"type": "response.created", "response": {**RESPONSES_BODY, "status": "in_progress",
                                              "output": []}},
    {"type": "response.output_item.added", "output_index": 0, "item": COMPACTION_ITEM},
    {"type": "response.output_item.done", "output_index": 0, "item": COMPACTION_ITEM},
    {"type": "response.output_item.added", "output_index": 1, "item": {
        "type": "message", "id": "msg_1", "role": "assistant", "content": []}},
    {"type": "response.output_item.done", "output_index": 1,
     "item": RESPONSES_BODY["output"][1]},
    {"type": "response.completed", "response": RESPONSES_BODY}])


def decoded(protocol: str, body: bytes, stream: bool) -> Message:
    events, _, error = decode_all(protocol, body, stream=stream)
    assert error is None, error
    return assemble(events, protocol).message()


def compaction(m: Message) -> BuiltinToolPart:
    parts = [p for p in m.parts if isinstance(p, BuiltinToolPart) and p.item_type == "compaction"]
    assert len(parts) == 1
    return parts[0]


def test_anthropic_compaction_block_round_trips() -> None:
    """A compaction block, whole or streamed in pieces, goes back exactly as it came."""
    expected = ANTHROPIC_BODY["content"][0]
    for body, stream in ((json.dumps(ANTHROPIC_BODY).encode(), False), (ANTHROPIC_STREAM, True)):
        msg = decoded("anthropic", body, stream)
        part = compaction(msg)
        assert part.raw == expected and part.protocol == "anthropic"
        assert msg.text == "Continuing with test 4."
        req = Request("claude-opus-4-6", [Message.user("task"), msg, Message.user("go on")])
        wire = codec_for("anthropic").encode_request(req, stream=False)
        assert wire["messages"][1]["content"][0] == expected


def test_responses_compaction_item_round_trips() -> None:
    """A Responses compaction item goes back as an input item: id and encrypted content."""
    for body, stream in ((json.dumps(RESPONSES_BODY).encode(), False), (RESPONSES_STREAM, True)):
        msg = decoded("openai-responses", body, stream)
        part = compaction(msg)
        assert part.raw is not None and part.raw["encrypted_content"] == "gAAAAOpaque"
        req = Request("gpt-5", [Message.user("task"), msg, Message.user("go on")])
        items = codec_for("openai-responses").encode_request(req, stream=False)["input"]
        assert items[1] == {"type": "compaction", "id": "cmp_1",
                            "encrypted_content": "gAAAAOpaque"}


def test_foreign_compaction_is_not_sent_to_another_protocol() -> None:
    """A compaction item is opaque to every protocol but its producer's."""
    msg = decoded("anthropic", json.dumps(ANTHROPIC_BODY).encode(), False)
    req = Request("gpt-5", [Message.user("task"), msg, Message.user("go on")])
    items = codec_for("openai-responses").encode_request(req, stream=False)["input"]
    assert all(i.get("type") != "compaction" for i in items)


def test_ledger_counts_from_the_latest_compaction() -> None:
    """What a vendor compaction stands for no longer counts against the window."""
    big = [Message.user("task")] + [Message.assistant("x" * 8_000) for _ in range(5)]
    msg = decoded("anthropic", json.dumps(ANTHROPIC_BODY).encode(), False)
    m = ContextManager(ContextPolicy("provider", 1_000, 2), 6_000, protocol="anthropic")
    conversation = [*big, Message.user("go on")]
    before = m.estimate(conversation)
    conversation += [msg, Message.user("next")]
    after = m.estimate(conversation)
    assert before > 9_000 and after < 400
    assert m.fit(conversation).status == "unchanged"


def test_vendor_options() -> None:
    """strategy: provider asks each vendor for its own context management."""
    policy = ContextPolicy("provider", 4_096, 3)
    oai = vendor_options("openai-responses", "gpt-5", policy, 400_000)
    assert oai.extra == {"context_management": [
        {"type": "compaction", "compact_threshold": 316_723}]} and not oai.betas
    ant = vendor_options("anthropic", "claude-opus-4-6", policy, 1_000_000, thinking=True)
    edits = ant.extra["context_management"]["edits"]
    assert [e["type"] for e in edits] == ["clear_thinking_20251015", "compact_20260112"]
    assert ant.betas == (ANTHROPIC_CONTEXT_BETA, ANTHROPIC_COMPACTION_BETA)
    assert ant.headers({"anthropic-beta": "x-1"}) == {
        "anthropic-beta": f"x-1,{ANTHROPIC_CONTEXT_BETA},{ANTHROPIC_COMPACTION_BETA}"}
    old = vendor_options("anthropic", "claude-sonnet-4-5", policy, 200_000)
    assert old.extra["context_management"]["edits"] == [{
        "type": "clear_tool_uses_20250919", "trigger": {"type": "input_tokens",
                                                        "value": 156_723},
        "keep": {"type": "tool_uses", "value": 3}}]
    assert old.betas == (ANTHROPIC_CONTEXT_BETA,)
    assert not vendor_options("openai-chat", "gpt-4o", policy, 128_000).active
    assert not vendor_options("anthropic", "claude-opus-4-6",
                              ContextPolicy("elide"), 200_000).active
    given = Params(extra={"store": False})
    params = oai.params(given)
    assert params.extra == {"store": False, **oai.extra} and given.extra == {"store": False}
    body = codec_for("openai-responses").encode_request(
        Request("gpt-5", [Message.user("hi")], params=params), stream=False)
    assert body["context_management"] == oai.extra["context_management"]
