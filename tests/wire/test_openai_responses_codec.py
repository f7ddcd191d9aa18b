"""The OpenAI Responses codec: request encoding, stream specifics and the fake-server
encode/decode invariant."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.errors import ErrorKind, ProviderError, error_from_response
from runtime.events import (
    ErrorEvent,
    Event,
    Finish,
    ReasoningDelta,
    RefusalDelta,
    ResponseStart,
    TextDelta,
    ToolCallEnd,
    UsageEvent,
    assemble,
)
from runtime.model import (
    BuiltinToolPart,
    ImagePart,
    Message,
    Params,
    ReasoningPart,
    Request,
    Response,
    TextPart,
    ToolCallPart,
    ToolResultPart,
    ToolSpec,
    Usage,
    normalize_finish,
)
from runtime.testing.wire import openai_responses as fake
from runtime.wire import openai_responses as codec
from runtime.wire.sse import SSEEvent
from tests.wire import streams

P = codec.PROTOCOL


def decode_chunks(chunks: list[bytes]) -> list[Event]:
    return streams.decode_chunks(codec, chunks)


def feed_all(items: list[dict[str, Any]]) -> list[Event]:
    dec = codec.StreamDecoder()
    events: list[Event] = []
    for data in items:
        events.extend(dec.feed(SSEEvent(json.dumps(data), data["type"])))
    events.extend(dec.close())
    return events


# -- request encoding ------------------------------------------------------------------


def _conversation() -> list[Message]:
    foreign = ReasoningPart(text="thinking", signature="sig", kind="thinking",
                            protocol="anthropic")
    own_raw = {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "E1"}
    own = ReasoningPart(id="rs_1", encrypted="E1", protocol=P, raw=own_raw)
    builtin = BuiltinToolPart("web_search_call", "ws_1", protocol=P,
                              raw={"type": "web_search_call", "id": "ws_1",
                                   "status": "completed"})
    foreign_builtin = BuiltinToolPart("server_tool_use", "st_1", protocol="anthropic",
                                      raw={"type": "server_tool_use"})
    return [
        Message("user", [TextPart("look"), ImagePart(data="QUJD", media_type="image/png"),
                         ImagePart(url="https://x/y.png")]),
        Message("assistant", [foreign, own, builtin, foreign_builtin, TextPart("calling"),
                              ToolCallPart("call_a", "fa", '{"a":1}', item_id="fc_a"),
                              ToolCallPart("call_b", "fb", "{}")]),
        # results given out of call order
        Message("tool", [ToolResultPart("call_b", "B"), ToolResultPart("call_a", "A")]),
        Message("user", [TextPart("thanks")]),
    ]


def test_encode_request_input_items() -> None:
    """Messages become Responses input items; reasoning and builtins of this protocol go
    back verbatim, foreign ones are dropped, tool results follow the call order."""
    body = codec.encode_request(Request("gpt-5", _conversation(), system="be brief"),
                                stream=True)
    assert body["instructions"] == "be brief"
    assert body["stream"] is True
    items = body["input"]
    assert [i["type"] for i in items] == [
        "message", "reasoning", "web_search_call", "message", "function_call",
        "function_call", "function_call_output", "function_call_output", "message"]
    assert items[0]["content"] == [
        {"type": "input_text", "text": "look"},
        {"type": "input_image", "image_url": "data:image/png;base64,QUJD"},
        {"type": "input_image", "image_url": "https://x/y.png"}]
    assert items[1] == {"type": "reasoning", "id": "rs_1", "summary": [],
                        "encrypted_content": "E1"}
    assert items[2] == {"type": "web_search_call", "id": "ws_1", "status": "completed"}
    assert items[3] == {"type": "message", "role": "assistant", "content": "calling"}
    assert items[4] == {"type": "function_call", "call_id": "call_a", "name": "fa",
                        "arguments": '{"a":1}', "id": "fc_a"}
    assert "id" not in items[5]
    assert [i["call_id"] for i in items[6:8]] == ["call_a", "call_b"]
    assert [i["output"] for i in items[6:8]] == ["A", "B"]
    assert "thinking" not in json.dumps(body) and "sig" not in json.dumps(body)


def test_reasoning_without_raw_is_rebuilt() -> None:
    """A Responses reasoning part without ``raw`` is rebuilt from its fields."""
    part = ReasoningPart(text="s1", id="rs_9", encrypted="ENC", summary=["s1"], protocol=P)
    body = codec.encode_request(Request("m", [Message("assistant", [part])]), stream=False)
    assert body["input"] == [{"type": "reasoning", "id": "rs_9", "encrypted_content": "ENC",
                              "summary": [{"type": "summary_text", "text": "s1"}]}]


def test_encode_request_params_mapping() -> None:
    """Params map to their Responses names; extra is merged last."""
    params = Params(temperature=0.2, top_p=0.9, max_tokens=64, stop=["x"], seed=3,
                    tool_choice="get_time", parallel_tool_calls=False,
                    response_format={"type": "json_schema",
                                     "json_schema": {"name": "N", "schema": {"type": "object"},
                                                     "strict": True}},
                    reasoning_effort="low", reasoning_summary="auto",
                    extra={"tools": [{"type": "web_search"}], "include": ["x.y"],
                           "reasoning": {"effort": "high"}, "service_tier": "flex"})
    req = Request("gpt-5", [Message.user("hi")], tools=[ToolSpec("get_time", "now", {
        "type": "object", "properties": {"tz": {"type": "string"}}})], params=params,
        store=False, previous_response_id="resp_0")
    body = codec.encode_request(req, stream=False)
    assert body["temperature"] == 0.2 and body["top_p"] == 0.9
    assert body["max_output_tokens"] == 64
    assert "stop" not in body and "seed" not in body
    assert body["tool_choice"] == {"type": "function", "name": "get_time"}
    assert body["parallel_tool_calls"] is False
    assert body["text"] == {"format": {"type": "json_schema", "name": "N",
                                       "schema": {"type": "object"}, "strict": True}}
    assert body["reasoning"] == {"effort": "high", "summary": "auto"}
    assert body["store"] is False
    assert body["include"] == ["reasoning.encrypted_content", "x.y"]
    assert body["previous_response_id"] == "resp_0"
    assert body["service_tier"] == "flex"
    assert body["tools"] == [
        {"type": "function", "name": "get_time", "description": "now",
         "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}},
         "strict": False},
        {"type": "web_search"}]
    local = codec.encode_request(req, stream=False, dialect="local")
    assert local["stop"] == ["x"] and local["seed"] == 3


@pytest.mark.parametrize(("choice", "wire"), [
    ("auto", "auto"), ("none", "none"), ("required", "required"), ("any", "required")])
def test_tool_choice_keywords(choice: str, wire: str) -> None:
    body = codec.encode_request(Request("m", params=Params(tool_choice=choice)), stream=False)
    assert body["tool_choice"] == wire


def test_store_default_and_true() -> None:
    """No store/include unless asked; store true is sent without include."""
    assert "store" not in codec.encode_request(Request("m"), stream=False)
    body = codec.encode_request(Request("m", store=True), stream=False)
    assert body["store"] is True and "include" not in body


def test_url_and_headers() -> None:
    assert codec.url("https://api.openai.com/v1/") == "https://api.openai.com/v1/responses"
    assert codec.headers("sk-1")["authorization"] == "Bearer sk-1"
    assert "authorization" not in codec.headers(None)


def test_encoded_request_decodes_back() -> None:
    """The fake server reads back what the client encodes."""
    req = Request("gpt-5", _conversation(), system="sys", tools=[ToolSpec("fa")],
                  params=Params(temperature=0.5, max_tokens=9, reasoning_effort="low",
                                tool_choice="required"), stream=True)
    back = fake.decode_request(codec.encode_request(req, stream=True))
    assert back.system == "sys" and back.stream is True
    assert [m.role for m in back.messages] == ["user", "assistant", "tool", "user"]
    assert back.tools == req.tools
    assert back.params.temperature == 0.5 and back.params.max_tokens == 9
    assert back.params.reasoning_effort == "low" and back.params.tool_choice == "required"
    calls = back.messages[1].tool_calls
    assert [(c.id, c.item_id) for c in calls] == [("call_a", "fc_a"), ("call_b", None)]
    assert [p.call_id for p in back.messages[2].parts
            if isinstance(p, ToolResultPart)] == ["call_a", "call_b"]
    images = [p for p in back.messages[0].parts if isinstance(p, ImagePart)]
    assert images == [ImagePart(data="QUJD", media_type="image/png"),
                      ImagePart(url="https://x/y.png")]


# -- stream specifics ------------------------------------------------------------------

_CREATED = {"type": "response.created", "response": {"id": "resp_1", "model": "m"}}


def _completed(output: list[dict[str, Any]], status: str = "completed",
               **extra: Any) -> dict[str, Any]:
    return {"type": f"response.{status}" if status != "incomplete" else "response.incomplete",
            "response": {"id": "resp_1", "model": "m", "status": status, "output": output,
                         "usage": {"input_tokens": 5, "output_tokens": 2}, **extra}}


def test_llama_cpp_stream_without_output_index() -> None:
    """llama.cpp's stream (items found by item_id / call_id, reasoning open across the
    message) assembles like the terminal object says."""
    msg = {"type": "message", "id": "msg_x", "role": "assistant", "status": "completed",
           "content": [{"type": "output_text", "text": "Hi there", "annotations": []}]}
    rs = {"type": "reasoning", "id": "rs_x", "summary": [], "encrypted_content": "",
          "content": [{"type": "reasoning_text", "text": "hmm"}]}
    fc = {"type": "function_call", "status": "completed", "arguments": '{"a": 1}',
          "call_id": "fc_abc", "name": "f"}
    events = feed_all([
        {"type": "response.created", "response": {"id": "resp_l", "status": "in_progress"}},
        {"type": "response.in_progress", "response": {"id": "resp_l"}},
        {"type": "response.output_item.added", "item": {**rs, "content": []}},
        {"type": "response.reasoning_text.delta", "delta": "hm", "item_id": "rs_x"},
        {"type": "response.reasoning_text.delta", "delta": "m", "item_id": "rs_x"},
        {"type": "response.output_item.added", "item": {**msg, "content": []}},
        {"type": "response.content_part.added", "item_id": "msg_x",
         "part": {"type": "output_text", "text": ""}},
        {"type": "response.output_text.delta", "item_id": "msg_x", "delta": "Hi "},
        {"type": "response.output_text.delta", "item_id": "msg_x", "delta": "there"},
        {"type": "response.output_item.added", "item": {**fc, "arguments": ""}},
        {"type": "response.function_call_arguments.delta", "delta": '{"a"', "item_id": "fc_abc"},
        {"type": "response.function_call_arguments.delta", "delta": ': 1}', "item_id": "fc_abc"},
        {"type": "response.output_item.done", "item": rs},
        {"type": "response.output_text.done", "item_id": "msg_x", "text": "Hi there"},
        {"type": "response.content_part.done", "item_id": "msg_x", "part": msg["content"][0]},
        {"type": "response.output_item.done", "item": msg},
        {"type": "response.output_item.done", "item": fc},
        {"type": "response.completed", "response": {
            "id": "resp_l", "model": "gemma", "status": "completed", "output": [rs, msg, fc],
            "usage": {"input_tokens": 10, "output_tokens": 4, "total_tokens": 14}}},
    ])
    r = assemble(events, protocol=P)
    assert (r.id, r.model) == ("resp_l", "gemma")
    assert r.text_parts == ["Hi there"]
    assert [(c.id, c.name, c.arguments, c.item_id) for c in r.tool_calls] == [
        ("fc_abc", "f", '{"a": 1}', None)]
    assert [(p.id, p.text, p.encrypted) for p in r.reasoning] == [("rs_x", "hmm", None)]
    assert r.usage == Usage(10, 4)
    assert r.finish_reason == "completed" and r.stop == "tool_calls"


def test_terminal_object_fills_items_the_stream_skipped() -> None:
    """Items and text parts only present in response.completed are decoded once; streamed
    ones are not counted twice."""
    msg = {"type": "message", "id": "msg_1", "content": [
        {"type": "output_text", "text": "Hello"}, {"type": "output_text", "text": " world"}]}
    extra = {"type": "web_search_call", "id": "ws_1", "status": "completed"}
    late = {"type": "message", "id": "msg_2", "content": [
        {"type": "output_text", "text": "Late"}]}
    events = feed_all([
        _CREATED,
        {"type": "response.output_item.added", "output_index": 0,
         "item": {**msg, "content": []}},
        {"type": "response.output_text.delta", "output_index": 0, "content_index": 0,
         "delta": "Hel"},
        {"type": "response.output_text.delta", "output_index": 0, "content_index": 0,
         "delta": "lo"},
        _completed([msg, extra, late]),
    ])
    r = assemble(events, protocol=P)
    assert r.text_parts == ["Hello", " world", "Late"]
    assert [(p.item_type, p.id) for p in r.parts if isinstance(p, BuiltinToolPart)] == [
        ("web_search_call", "ws_1")]
    assert sum(1 for e in events if isinstance(e, UsageEvent)) == 1


def test_reasoning_summary_stream_and_refusal() -> None:
    """Summary parts stream as reasoning text joined by blank lines; refusals stream as
    RefusalDelta; the done item brings the encrypted payload once."""
    rs = {"type": "reasoning", "id": "rs_1", "encrypted_content": "ENC",
          "summary": [{"type": "summary_text", "text": "one"},
                      {"type": "summary_text", "text": "two"}]}
    msg = {"type": "message", "id": "msg_1", "content": [
        {"type": "refusal", "refusal": "I can't help with that."}]}
    events = feed_all([
        _CREATED,
        {"type": "response.output_item.added", "output_index": 0,
         "item": {"type": "reasoning", "id": "rs_1", "summary": [],
                  "encrypted_content": "EARLY"}},
        {"type": "response.reasoning_summary_part.added", "output_index": 0,
         "summary_index": 0},
        {"type": "response.reasoning_summary_text.delta", "output_index": 0,
         "summary_index": 0, "delta": "one"},
        {"type": "response.reasoning_summary_part.added", "output_index": 0,
         "summary_index": 1},
        {"type": "response.reasoning_summary_text.delta", "output_index": 0,
         "summary_index": 1, "delta": "tw"},
        {"type": "response.reasoning_summary_text.delta", "output_index": 0,
         "summary_index": 1, "delta": "o"},
        {"type": "response.output_item.done", "output_index": 0, "item": rs},
        {"type": "response.output_item.added", "output_index": 1,
         "item": {**msg, "content": []}},
        {"type": "response.refusal.delta", "output_index": 1, "content_index": 0,
         "delta": "I can't "},
        {"type": "response.refusal.delta", "output_index": 1, "content_index": 0,
         "delta": "help with that."},
        {"type": "response.output_item.done", "output_index": 1, "item": msg},
        _completed([rs, msg]),
    ])
    r = assemble(events, protocol=P)
    [part] = r.reasoning
    assert (part.text, part.summary, part.encrypted, part.raw) == (
        "one\n\ntwo", ["one", "two"], "ENC", rs)
    assert r.refusal == "I can't help with that."
    assert sum(1 for e in events if isinstance(e, RefusalDelta)) == 2
    assert [e.encrypted for e in events if isinstance(e, ReasoningDelta) and e.encrypted] == [
        "ENC"]


def test_incomplete_finish_reason() -> None:
    """response.incomplete gives status:reason as the finish reason."""
    events = feed_all([_CREATED, _completed([], "incomplete",
                                            incomplete_details={"reason": "max_output_tokens"})])
    assert isinstance(events[-1], Finish)
    assert events[-1].reason == "incomplete:max_output_tokens"
    assert assemble(events, protocol=P).stop == "length"


def test_error_event_in_stream_then_end() -> None:
    """An ``error`` event becomes an ErrorEvent; the stream may then end without a terminal
    event, and later events are ignored."""
    dec = codec.StreamDecoder()
    events = dec.feed(SSEEvent(json.dumps(_CREATED), "response.created"))
    events += dec.feed(SSEEvent(json.dumps({"type": "error", "code": "rate_limit_exceeded",
                                            "message": "Too many", "param": None}), "error"))
    events += dec.feed(SSEEvent(json.dumps(_completed([], "failed")), "response.failed"))
    events += dec.close()
    errors = [e for e in events if isinstance(e, ErrorEvent)]
    assert [(e.kind, e.message, e.code) for e in errors] == [
        (ErrorKind.RATE_LIMITED.value, "Too many", "rate_limit_exceeded")]
    assert not any(isinstance(e, Finish) for e in events)


def test_response_failed_is_error_event() -> None:
    events = feed_all([_CREATED, _completed([], "failed", error={
        "code": "server_error", "message": "The model crashed"})])
    assert isinstance(events[-1], ErrorEvent)
    assert events[-1].kind == ErrorKind.SERVER.value
    assert events[-1].message == "The model crashed"


def test_unknown_events_and_done_sentinel_are_ignored() -> None:
    """Progress events of builtin tools, unknown types and a stray [DONE] are harmless."""
    dec = codec.StreamDecoder()
    dec.feed(SSEEvent(json.dumps(_CREATED), "response.created"))
    assert dec.feed(SSEEvent(json.dumps({"type": "response.web_search_call.searching",
                                         "output_index": 0}), "x")) == []
    assert dec.feed(SSEEvent(json.dumps({"type": "response.something_new", "delta": 5}),
                             "x")) == []
    dec.feed(SSEEvent(json.dumps(_completed([])), "response.completed"))
    assert dec.feed(SSEEvent("[DONE]")) == []
    assert dec.sse_events == 5
    assert isinstance(dec.close()[-1], Finish)


def test_close_of_empty_stream_is_interrupted() -> None:
    """A stream that ended before any event is stream_interrupted in state start."""
    dec = codec.StreamDecoder()
    with pytest.raises(ProviderError) as info:
        dec.close()
    assert info.value.kind is ErrorKind.STREAM_INTERRUPTED and "state start" in str(info.value)


# -- fake server: encode/decode invariant ----------------------------------------------

_RESPONSES = {
    "text": Response(id="resp_t", model="gpt-x", parts=[TextPart("Hello, wörld! ✓ " * 5)],
                     finish_reason="completed", usage=Usage(12, 7)),
    "parallel_calls": Response(id="resp_c", model="gpt-x", parts=[
        TextPart("Let me check both."),
        ToolCallPart("call_1", "get_weather", '{"city": "Paris", "unit": "c"}', "fc_1"),
        ToolCallPart("call_2", "get_weather", '{"city": "Tokyo", "unit": "c"}', "fc_2"),
        ToolCallPart("call_3", "noop", "{}", "fc_3")],
        finish_reason="completed", usage=Usage(40, 30)),
    "reasoning_opaque": Response(id="resp_r", model="gpt-5", parts=[
        ReasoningPart(text="First.\n\nSecond.", id="rs_1", encrypted="gAAAA" + "x" * 300,
                      summary=["First.", "Second."], protocol=P),
        ReasoningPart(id="rs_2", encrypted="gAAAAzz", protocol=P),
        TextPart("Answer")], finish_reason="completed", usage=Usage(9, 80, 0, 0, 64)),
    "cache_usage": Response(id="resp_u", model="gpt-5", parts=[TextPart("ok")],
                            finish_reason="incomplete:max_output_tokens",
                            usage=Usage(2000, 50, 1536, 64, 10)),
    "builtin_and_refusal": Response(id="resp_b", model="gpt-5", parts=[
        BuiltinToolPart("web_search_call", "ws_1", protocol=P, raw={
            "type": "web_search_call", "id": "ws_1", "status": "completed",
            "action": {"type": "search", "query": "q"}}),
        TextPart("")], finish_reason="completed", refusal="No.", usage=None),
}


def _view(r: Response) -> dict[str, Any]:
    return {
        "id": r.id, "model": r.model, "text_parts": r.text_parts,
        "calls": [(c.id, c.name, json.loads(c.arguments), c.item_id) for c in r.tool_calls],
        "reasoning": [(p.id, p.text, p.summary, p.encrypted) for p in r.reasoning],
        "builtins": [(p.item_type, p.id, p.raw) for p in r.parts
                     if isinstance(p, BuiltinToolPart)],
        "usage": r.usage, "finish_reason": r.finish_reason, "stop": r.stop,
        "refusal": r.refusal,
    }


@pytest.mark.parametrize("name", list(_RESPONSES))
@pytest.mark.parametrize("chunk_chars", [1, 3, 8, 1000])
def test_fake_encode_round_trips(name: str, chunk_chars: int) -> None:
    """encode_json and encode_stream both decode back to the same response."""
    r = _RESPONSES[name]
    from_json = assemble(codec.decode_body(msgspec.json.encode(fake.encode_json(r))),
                         protocol=P)
    chunks = fake.encode_stream(r, chunk_chars=chunk_chars)
    from_stream = assemble(decode_chunks(chunks), protocol=P)
    want = _view(r) | {"stop": normalize_finish(r.finish_reason, bool(r.tool_calls))}
    assert _view(from_json) == want
    assert _view(from_stream) == want
    assert all(c.endswith(b"\n\n") and c.startswith(b"event: ") for c in chunks)
    deltas = [c for c in chunks if b"output_text.delta" in c]
    longest = max((len(t) for t in r.text_parts), default=0)
    assert len(deltas) == sum(-(-len(t) // chunk_chars) for t in r.text_parts)
    assert longest == 0 or deltas


def test_stream_start_and_reasoning_raw() -> None:
    """A streamed response starts with ResponseStart and keeps the reasoning item raw."""
    r = _RESPONSES["reasoning_opaque"]
    events = decode_chunks(fake.encode_stream(r))
    assert isinstance(events[0], ResponseStart)
    part = assemble(events, protocol=P).reasoning[0]
    assert part.raw is not None and part.raw["encrypted_content"] == r.reasoning[0].encrypted
    assert part.protocol == P


@settings(max_examples=40, deadline=None)
@given(cuts=st.lists(st.integers(min_value=0, max_value=5000), max_size=12),
       name=st.sampled_from(sorted(_RESPONSES)))
def test_any_byte_split_decodes_the_same(cuts: list[int], name: str) -> None:
    """However the byte stream is split, the decoded events are the same."""
    body = b"".join(fake.encode_stream(_RESPONSES[name], chunk_chars=4))
    assert decode_chunks(streams.cut(body, cuts)) == decode_chunks([body])


@pytest.mark.parametrize(("status", "kind"), [
    (400, ErrorKind.BAD_REQUEST), (401, ErrorKind.AUTH), (404, ErrorKind.NOT_FOUND),
    (429, ErrorKind.RATE_LIMITED), (500, ErrorKind.SERVER), (503, ErrorKind.SERVER)])
def test_error_body_maps_to_kind(status: int, kind: ErrorKind) -> None:
    """The fake server's error bodies read back as the matching error kind."""
    body = msgspec.json.encode(fake.error_body(status, "nope"))
    err = error_from_response(status, {"content-type": "application/json"}, body)
    assert err.kind is kind and err.message == "nope"


def test_decode_request_is_tolerant() -> None:
    """String input, developer messages, content lists and provider tools are read."""
    req = fake.decode_request({
        "model": "m", "input": "hello", "instructions": "sys",
        "tools": [{"type": "web_search"}, {"type": "function", "name": "f"}],
        "text": {"format": {"type": "json_object"}, "verbosity": "low"},
        "store": False, "moderation": {"model": "x"}})
    assert req.messages == [Message("user", [TextPart("hello")])]
    assert req.system == "sys"
    assert [t.name for t in req.tools] == ["f"]
    assert req.params.response_format == {"type": "json_object"}
    assert req.params.extra == {"moderation": {"model": "x"}, "tools": [{"type": "web_search"}],
                                "text": {"verbosity": "low"}}
    assert req.store is False
    again = codec.encode_request(req, stream=False)
    assert again["text"] == {"format": {"type": "json_object"}, "verbosity": "low"}
    assert again["include"] == ["reasoning.encrypted_content"]
    dev = fake.decode_request({"model": "m", "input": [
        {"type": "message", "role": "developer", "content": [{"type": "input_text",
                                                              "text": "rules"}]},
        {"role": "user", "content": [{"type": "input_text", "text": "q"}]}]})
    assert dev.system == "rules" and [m.role for m in dev.messages] == ["user"]


def test_events_are_plain_lists_of_known_types() -> None:
    """decode_body of a body ends with Finish and starts with ResponseStart."""
    events = codec.decode_body(msgspec.json.encode(fake.encode_json(_RESPONSES["text"])))
    assert isinstance(events[0], ResponseStart) and isinstance(events[-1], Finish)
    assert [type(e) for e in events[1:-1]] == [TextDelta, UsageEvent]


def test_item_done_twice_is_counted_once() -> None:
    """A repeated output_item.done for the same item adds nothing."""
    fc = {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "f",
          "arguments": "{}"}
    done = {"type": "response.output_item.done", "output_index": 0, "item": fc}
    events = feed_all([_CREATED, {"type": "response.output_item.added", "output_index": 0,
                                  "item": {**fc, "arguments": ""}}, done, done,
                       _completed([fc])])
    assert [(c.id, c.arguments) for c in assemble(events, protocol=P).tool_calls] == [
        ("call_1", "{}")]
    assert sum(1 for e in events if isinstance(e, ToolCallEnd)) == 1
