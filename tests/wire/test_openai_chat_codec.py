"""The openai-chat codec on constructed input: malformed bodies and streams, the fake
server's encode/decode invariant, and the details of encode_request."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runtime.errors import ErrorKind, ProviderError
from runtime.events import (
    ErrorEvent,
    Event,
    Finish,
    TextDelta,
    ToolCallDelta,
    UsageEvent,
    assemble,
)
from runtime.model import (
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
)
from runtime.testing.wire.openai_chat import (
    decode_request,
    encode_json,
    encode_stream,
    error_body,
)
from runtime.wire import openai_chat as oc
from runtime.wire.sse import SSEDecoder, SSEEvent


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None,
          **top: Any) -> SSEEvent:
    obj: dict[str, Any] = {"id": "c1", "model": "m", "choices": [
        {"index": 0, "delta": delta or {}, "finish_reason": finish}]}
    obj.update(top)
    return SSEEvent(json.dumps(obj))


DONE = SSEEvent("[DONE]")


def run(events: list[SSEEvent]) -> list[Event]:
    dec = oc.StreamDecoder()
    out: list[Event] = []
    for ev in events:
        out.extend(dec.feed(ev))
    out.extend(dec.close())
    return out


def stream_of(resp: Response, chunk_chars: int = 8) -> tuple[list[Event], int]:
    sse = SSEDecoder()
    dec = oc.StreamDecoder()
    out: list[Event] = []
    for piece in encode_stream(resp, chunk_chars=chunk_chars):
        for ev in sse.feed(piece):
            out.extend(dec.feed(ev))
    for ev in sse.close():
        out.extend(dec.feed(ev))
    out.extend(dec.close())
    return out, dec.sse_events


def kind_of(fn: Any, *args: Any) -> ErrorKind:
    with pytest.raises(ProviderError) as info:
        fn(*args)
    return info.value.kind


# --- malformed input ---------------------------------------------------------------------

GOOD_BODY = json.dumps({
    "id": "x", "model": "m", "choices": [{"index": 0, "finish_reason": "stop",
                                          "message": {"role": "assistant", "content": "hi"}}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 1}}).encode()


@pytest.mark.parametrize("body", [
    GOOD_BODY[: len(GOOD_BODY) // 2],  # truncated JSON
    b"<!DOCTYPE html><html><title>502 Bad Gateway</title></html>",  # a proxy page
    b"[]",
    b'{"choices": []}',
    b'{"choices": [{"index": 0, "message": {"content": 5}}]}',  # content of a wrong type
    b'{"choices": [{"index": 0, "message": {"tool_calls": [{"function": {}}]}}]}',
    b'{"choices": [{"index": 0, "message": {"content": "x"}}], "usage": {"prompt_tokens": "3"}}',
    b'{"choices": [{"index": 0, "message": {"reasoning_details": [{"type": "t", "text": 1}]}}]}',
    b"",
])
def test_malformed_body_is_malformed_response(body: bytes) -> None:
    """Bad bodies become malformed_response, never a bare KeyError / TypeError."""
    assert kind_of(oc.decode_body, body) is ErrorKind.MALFORMED_RESPONSE


def test_good_body_decodes() -> None:
    """The reference body of the malformed cases is itself fine."""
    resp = assemble(oc.decode_body(GOOD_BODY))
    assert (resp.text, resp.finish_reason, resp.usage) == ("hi", "stop", Usage(3, 1))


def test_error_object_in_200_body_is_an_error_event() -> None:
    """A JSON error object in a 200 body becomes one ErrorEvent with the mapped kind."""
    events = oc.decode_body(json.dumps({"error": {"message": "slow down", "code": 429}}).encode())
    assert len(events) == 1 and isinstance(events[0], ErrorEvent)
    assert events[0].kind == "rate_limited" and events[0].code == 429
    assert events[0].in_stream is False


@pytest.mark.parametrize(("events", "state"), [
    ([SSEEvent('{"id": "c1", "choices": [{"index": 0, "delta": {"content": "a"')], "start"),
    ([chunk({"content": "a"}), SSEEvent("{not json}")], "streaming"),
    ([chunk({"tool_calls": [{"index": "zero", "function": {"name": "f"}}]})], "start"),
    ([chunk({"content": 3})], "start"),
    ([DONE], "start"),
    ([chunk({"content": "a"}), DONE, chunk({"content": "b"})], "done"),
    ([chunk({"content": "a"}), DONE, DONE], "done"),
    ([chunk({"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]})], "start"),
])
def test_malformed_stream_names_the_state(events: list[SSEEvent], state: str) -> None:
    """A bad chunk or a surprising event order is malformed_response naming the state."""
    dec = oc.StreamDecoder()
    with pytest.raises(ProviderError) as info:
        for ev in events:
            dec.feed(ev)
    assert info.value.kind is ErrorKind.MALFORMED_RESPONSE
    assert repr(state) in info.value.message


@pytest.mark.parametrize("cut", [0, 1, 2, 3])
def test_cut_stream_is_stream_interrupted(cut: int) -> None:
    """A stream that ends before data: [DONE] raises stream_interrupted at close()."""
    full = [chunk({"role": "assistant", "content": ""}), chunk({"content": "hi"}),
            chunk({}, "stop"), DONE]
    dec = oc.StreamDecoder()
    for ev in full[:cut]:
        dec.feed(ev)
    with pytest.raises(ProviderError) as info:
        dec.close()
    assert info.value.kind is ErrorKind.STREAM_INTERRUPTED
    assert info.value.retryable


def test_error_in_200_stream_then_end_without_done() -> None:
    """Groq's ``event: error`` and OpenRouter's error chunk end the stream without [DONE]."""
    groq = SSEEvent(json.dumps({"error": {"message": "bad tool", "type": "invalid_request_error",
                                          "code": "tool_use_failed"}}), "error")
    events = run([chunk({"content": "partial"}), groq])
    errors = [e for e in events if isinstance(e, ErrorEvent)]
    assert [(e.kind, e.code) for e in errors] == [("bad_request", "tool_use_failed")]
    assert not any(isinstance(e, Finish) for e in events)
    router = chunk({"content": ""}, "error", error={"code": 502, "message": "upstream"})
    events = run([chunk({"content": "a"}), router, chunk({"content": "late"}), DONE])
    assert [(e.kind, e.status) for e in events if isinstance(e, ErrorEvent)] == [("server", 502)]
    assert assemble(events).text == "a"


def test_lenient_stream_quirks() -> None:
    """Unknown event names, empty keep-alive data, repeated finish_reason, usage null,
    obfuscation and content-less chunks after the finish are all accepted; n>1 keeps choice 0
    only."""
    events = run([
        SSEEvent("{}", "ping"),
        SSEEvent(""),
        chunk({"role": "assistant", "content": None}, usage=None, obfuscation="xx"),
        SSEEvent(json.dumps({"id": "c1", "choices": [
            {"index": 1, "delta": {"content": "other"}},
            {"index": 0, "delta": {"content": "mine"}}]})),
        chunk({"content": ""}, "stop"),
        chunk({"content": ""}, "stop", usage={"prompt_tokens": 5, "completion_tokens": 2}),
        DONE,
    ])
    resp = assemble(events)
    assert resp.text == "mine" and resp.finish_reason == "stop"
    assert resp.usage == Usage(5, 2)
    assert isinstance(events[-1], Finish)


def test_llama_cpp_style_tool_stream() -> None:
    """Ids without call_, content "" next to tool_calls, arguments a few characters a chunk."""
    args = '{"timezone": "UTC"}'
    evs = [chunk({"role": "assistant", "content": None}),
           chunk({"content": "", "tool_calls": [{"index": 0, "id": "a" * 32, "type": "function",
                                                 "function": {"name": "get_time"}}]})]
    evs += [chunk({"tool_calls": [{"index": 0, "function": {"arguments": args[i:i + 3]}}]})
            for i in range(0, len(args), 3)]
    evs += [chunk({}, "tool_calls", timings={"n": 1}), DONE]
    events = run(evs)
    resp = assemble(events)
    assert resp.text_parts == []
    assert [(c.id, c.name, c.arguments) for c in resp.tool_calls] == [("a" * 32, "get_time", args)]
    assert sum(isinstance(e, ToolCallDelta) for e in events) == len(range(0, len(args), 3))
    assert resp.stop == "tool_calls"


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["choices", "delta", "message", "content", "index", "tool_calls",
                         "function", "arguments", "name", "id", "usage", "error", "type",
                         "reasoning_details", "finish_reason", "prompt_tokens", "text"]),
        inner, max_size=4),
    max_leaves=12)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(JSON, min_size=1, max_size=4))
def test_arbitrary_json_never_raises_a_foreign_exception(values: list[Any]) -> None:
    """Whatever JSON arrives, the decoders return events or raise ProviderError."""
    for v in values:
        data = json.dumps(v)
        try:
            oc.decode_body(data.encode())
        except ProviderError:
            pass
    dec = oc.StreamDecoder()
    try:
        for v in values:
            dec.feed(SSEEvent(json.dumps(v)))
        dec.feed(DONE)
        dec.close()
    except ProviderError:
        pass


# --- the fake server's invariant ----------------------------------------------------------

RESPONSES = {
    "text": Response(id="r1", model="m", parts=[TextPart("Hello there, world!")],
                     finish_reason="stop", usage=Usage(10, 4)),
    "parallel_calls": Response(id="r2", model="m", parts=[
        ToolCallPart("call_1", "get_weather", '{"city": "Mexico City", "unit": "C"}'),
        ToolCallPart("call_2", "get_time", '{"timezone": "America/Mexico_City"}')],
        finish_reason="tool_calls", usage=Usage(50, 20)),
    "opaque_reasoning": Response(id="r3", model="m", parts=[
        ReasoningPart(text="I think, therefore...", kind="reasoning_details:reasoning.text",
                      signature="EugCCkgIDRABGAIqQPO/3ufZ=="),
        ReasoningPart(kind="reasoning_details:reasoning.encrypted", id="rs_1",
                      encrypted="gAAAAABqIyQ7ILg5uoZ"),
        TextPart("Done.")], finish_reason="stop", usage=Usage(30, 40, reasoning_tokens=25)),
    "cache_usage": Response(id="r4", model="m", parts=[TextPart("cached")],
                            finish_reason="length",
                            usage=Usage(2168, 100, cache_read_tokens=2161,
                                        cache_write_tokens=7, reasoning_tokens=3)),
    "deepseek": Response(id="r5", model="m", parts=[
        ReasoningPart(text="Load the capability first.", kind="reasoning_content"),
        TextPart("Loading."), ToolCallPart("call_00_x", "load", '{"name": "dice"}')],
        finish_reason="tool_calls", usage=Usage(5, 5)),
    "mistral_thinking": Response(id="r6", model="m", parts=[
        ReasoningPart(text="Look both ways.", kind="thinking_chunk"), TextPart("Cross.")],
        finish_reason="stop"),
    "refusal": Response(id="r7", model="m", parts=[], refusal="I can't help with that.",
                        finish_reason="stop", usage=Usage(1, 1)),
}


def reasoning_fields(r: Response) -> list[tuple[Any, ...]]:
    return [(p.kind, p.text, p.id, p.signature, p.encrypted) for p in r.reasoning]


def same_content(got: Response, want: Response) -> None:
    assert got.text == want.text
    assert [(c.id, c.name, c.arguments) for c in got.tool_calls] == \
        [(c.id, c.name, c.arguments) for c in want.tool_calls]
    assert reasoning_fields(got) == reasoning_fields(want)
    assert got.usage == want.usage
    assert got.finish_reason == want.finish_reason
    assert got.refusal == want.refusal
    assert (got.id, got.model) == (want.id, want.model)


@pytest.mark.parametrize("name", list(RESPONSES))
def test_encode_json_decodes_back(name: str) -> None:
    """decode_body(encode_json(r)) assembles back to r."""
    r = RESPONSES[name]
    got = assemble(oc.decode_body(json.dumps(encode_json(r)).encode()), protocol=oc.PROTOCOL)
    same_content(got, r)


@pytest.mark.parametrize("chunk_chars", [1, 3, 8, 1000])
@pytest.mark.parametrize("name", list(RESPONSES))
def test_encode_stream_decodes_back(name: str, chunk_chars: int) -> None:
    """The streamed form decodes back to r, whatever the piece size, ending with [DONE]."""
    r = RESPONSES[name]
    pieces = encode_stream(r, chunk_chars=chunk_chars)
    assert pieces[-1] == b"data: [DONE]\n\n"
    assert all(p.endswith(b"\n\n") for p in pieces)
    events, count = stream_of(r, chunk_chars)
    assert count == len(pieces)
    same_content(assemble(events, protocol=oc.PROTOCOL), r)


def test_encode_stream_splits_text_and_arguments() -> None:
    """Text and each parallel call's arguments arrive in ~chunk_chars pieces, per index."""
    r = RESPONSES["parallel_calls"]
    events, _ = stream_of(r, 4)
    per_index: dict[int, list[str]] = {}
    for e in events:
        if isinstance(e, ToolCallDelta):
            per_index.setdefault(e.index, []).append(e.arguments)
    assert sorted(per_index) == [0, 1]
    for i, call in enumerate(r.tool_calls):
        pieces = [p for p in per_index[i] if p]
        assert "".join(pieces) == call.arguments
        assert max(len(p) for p in pieces) <= 4 and len(pieces) > 1
    text_events, _ = stream_of(RESPONSES["text"], 4)
    assert len([e for e in text_events if isinstance(e, TextDelta)]) == 5


def test_stream_reasoning_raw_is_the_merged_detail() -> None:
    """A streamed reasoning detail's raw is the whole detail (text pieces joined), ready to
    be passed back verbatim."""
    raw = {"type": "reasoning.text", "text": "abcdefghij", "signature": "SIG", "index": 0,
           "format": "anthropic-claude-v1"}
    r = Response(parts=[ReasoningPart(text="abcdefghij", kind="reasoning_details:reasoning.text",
                                      signature="SIG", raw=raw)], finish_reason="stop")
    events, _ = stream_of(r, 3)
    got = assemble(events, protocol=oc.PROTOCOL).reasoning
    assert [p.raw for p in got] == [raw]
    assert got[0].protocol == oc.PROTOCOL


def test_usage_event_is_canonical() -> None:
    """OpenAI prompt_tokens already include cached tokens: input_tokens is prompt_tokens."""
    body = encode_json(RESPONSES["cache_usage"])
    ev = [e for e in oc.decode_body(json.dumps(body).encode()) if isinstance(e, UsageEvent)]
    assert ev[0].usage == Usage(2168, 100, 2161, 7, 3)
    assert ev[0].raw == body["usage"]


@pytest.mark.parametrize(("status", "kind"), [
    (400, ErrorKind.BAD_REQUEST), (401, ErrorKind.AUTH), (404, ErrorKind.NOT_FOUND),
    (429, ErrorKind.RATE_LIMITED), (500, ErrorKind.SERVER), (503, ErrorKind.SERVER)])
def test_error_body_maps_back_to_its_kind(status: int, kind: ErrorKind) -> None:
    """error_body(status) is read back by error_from_response as the right kind."""
    from runtime.errors import error_from_response

    body = json.dumps(error_body(status, "nope")).encode()
    err = error_from_response(status, {"content-type": "application/json"}, body)
    assert (err.kind, err.message, err.status) == (kind, "nope", status)
    assert error_body(400, "x", type="custom")["error"]["type"] == "custom"


# --- encode_request ---------------------------------------------------------------------

CALLS = [ToolCallPart("call_a", "f", '{"x": 1}'), ToolCallPart("call_b", "g", "{}")]


def conversation(*extra_parts: Any) -> Request:
    return Request(
        model="m", system="be brief",
        messages=[
            Message.user("go"),
            Message("assistant", [*extra_parts, TextPart("calling"), *CALLS]),
            Message("tool", [ToolResultPart("call_b", "B"), ToolResultPart("call_a", "A")]),
        ],
        tools=[ToolSpec("f", "does f", {"type": "object", "properties": {"x": {}}}),
               ToolSpec("g")],
    )


def test_tool_results_follow_call_order() -> None:
    """One role:tool message per result, in the order of the assistant's calls."""
    body = oc.encode_request(conversation(), stream=False)
    msgs = body["messages"]
    assert [m["role"] for m in msgs] == ["system", "user", "assistant", "tool", "tool"]
    assert [c["id"] for c in msgs[2]["tool_calls"]] == ["call_a", "call_b"]
    assert msgs[2]["tool_calls"][0] == {"id": "call_a", "type": "function",
                                        "function": {"name": "f", "arguments": '{"x": 1}'}}
    assert [(m["tool_call_id"], m["content"]) for m in msgs[3:]] == [("call_a", "A"),
                                                                   ("call_b", "B")]
    assert body["tools"][1] == {"type": "function", "function": {
        "name": "g", "parameters": {"type": "object", "properties": {}}}}


def test_reasoning_passback_is_verbatim_for_this_protocol_only() -> None:
    """Own reasoning goes back verbatim (raw first); another protocol's is dropped."""
    raw = {"type": "reasoning.encrypted", "data": "ENC", "id": "rs_9", "format": "x", "index": 0}
    own = [
        ReasoningPart(text="why", kind="reasoning_content", protocol=oc.PROTOCOL),
        ReasoningPart(kind="reasoning_details:reasoning.encrypted", encrypted="other",
                      protocol=oc.PROTOCOL, raw=raw),
        ReasoningPart(text="t", kind="reasoning_details:reasoning.text", signature="S",
                      protocol=oc.PROTOCOL),
    ]
    msg = oc.encode_request(conversation(*own), stream=False,
                            dialect="openrouter")["messages"][2]
    assert msg["reasoning_content"] == "why"
    assert msg["reasoning_details"] == [raw, {"type": "reasoning.text", "text": "t",
                                              "signature": "S"}]
    foreign = [ReasoningPart(text="hmm", kind="thinking", signature="S", protocol="anthropic"),
               ReasoningPart(text="x", kind="reasoning_content", protocol=None),
               ReasoningPart(kind="reasoning", encrypted="E", protocol="openai-responses")]
    msg = oc.encode_request(conversation(*foreign), stream=False)["messages"][2]
    assert set(msg) == {"role", "content", "tool_calls"}


def test_mistral_thinking_goes_back_as_a_thinking_chunk() -> None:
    """A thinking_chunk part goes back as Mistral content chunks before the text."""
    part = ReasoningPart(text="hm", kind="thinking_chunk", protocol=oc.PROTOCOL)
    msg = oc.encode_request(conversation(part), stream=False)["messages"][2]
    assert msg["content"] == [{"type": "thinking", "thinking": [{"type": "text", "text": "hm"}]},
                              {"type": "text", "text": "calling"}]


PARAMS = Params(temperature=0.2, top_p=0.9, max_tokens=100, stop=["END"], seed=7,
                tool_choice="f", parallel_tool_calls=False,
                response_format={"type": "json_object"}, reasoning_effort="high",
                extra={"temperature": 0.3, "tools": [{"type": "openrouter:web_search"}]})


@pytest.mark.parametrize(("dialect", "expected"), [
    (None, {"max_completion_tokens": 100, "reasoning_effort": "high", "store": False}),
    ("openai", {"max_completion_tokens": 100, "reasoning_effort": "high", "store": False}),
    ("openrouter", {"max_tokens": 100, "reasoning": {"effort": "high"}}),
    ("local", {"max_tokens": 100, "reasoning_effort": "high"}),
])
def test_params_mapping_per_dialect(dialect: str | None, expected: dict[str, Any]) -> None:
    """Params map to each dialect's fields; extra is merged last and its tools appended."""
    req = conversation()
    req.params = PARAMS
    req.store = False
    body = oc.encode_request(req, stream=True, dialect=dialect)
    common = {"top_p": 0.9, "stop": ["END"], "seed": 7, "parallel_tool_calls": False,
              "tool_choice": {"type": "function", "function": {"name": "f"}},
              "response_format": {"type": "json_object"}, "temperature": 0.3,
              "stream": True, "stream_options": {"include_usage": True}}
    for key, value in (common | expected).items():
        assert body[key] == value, key
    unexpected = {"max_tokens", "max_completion_tokens", "reasoning", "reasoning_effort",
                  "store"} - set(expected)
    assert not unexpected & set(body)
    assert [t.get("function", {}).get("name", t["type"]) for t in body["tools"]] == \
        ["f", "g", "openrouter:web_search"]


def test_defaults_send_no_params_and_no_parallel_flag_without_tools() -> None:
    """Unset params are not sent; parallel_tool_calls needs tools; stream false has no
    stream_options."""
    req = Request(model="m", messages=[Message.user("hi")],
                  params=Params(parallel_tool_calls=True, tool_choice="auto"))
    body = oc.encode_request(req, stream=False)
    assert body == {"model": "m", "messages": [{"role": "user", "content": "hi"}],
                    "tool_choice": "auto", "stream": False}


def test_images_and_cache_marks() -> None:
    """Images become image_url chunks (data: URLs for inline data); OpenRouter gets
    cache_control on marked text and on a cached system prompt."""
    req = Request(model="m", system="sys", cache_system=True, messages=[Message("user", [
        TextPart("look", cache=True), ImagePart(data="AAAA", media_type="image/jpeg"),
        ImagePart(url="https://x/y.png")])])
    router = oc.encode_request(req, stream=False, dialect="openrouter")["messages"]
    assert router[0]["content"][0]["cache_control"] == {"type": "ephemeral"}
    assert router[1]["content"] == [
        {"type": "text", "text": "look", "cache_control": {"type": "ephemeral"}},
        {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,AAAA"}},
        {"type": "image_url", "image_url": {"url": "https://x/y.png"}}]
    plain = oc.encode_request(req, stream=False)["messages"]
    assert plain[0] == {"role": "system", "content": "sys"}
    assert "cache_control" not in json.dumps(plain)


def test_tool_result_images_follow_in_a_user_message() -> None:
    """Tool messages carry text only; images returned by a tool follow as a user message."""
    req = Request(model="m", messages=[
        Message("assistant", [ToolCallPart("c1", "img")]),
        Message("tool", [ToolResultPart("c1", [TextPart("here"), ImagePart(url="u")])])])
    msgs = oc.encode_request(req, stream=False)["messages"]
    assert [m["role"] for m in msgs] == ["assistant", "tool", "user"]
    assert msgs[1]["content"] == "here"
    assert msgs[2]["content"] == [{"type": "image_url", "image_url": {"url": "u"}}]


def test_unknown_dialect_and_headers_and_url() -> None:
    """An unknown dialect is a ValueError; keyless servers get no Authorization."""
    with pytest.raises(ValueError, match="dialect"):
        oc.encode_request(Request(model="m"), stream=False, dialect="bogus")
    assert "authorization" not in oc.headers(None)
    assert oc.headers("k")["authorization"] == "Bearer k"
    assert oc.url("http://127.0.0.1:8080/v1/") == "http://127.0.0.1:8080/v1/chat/completions"


def test_decode_request_round_trips_a_canonical_request() -> None:
    """decode_request(encode_request(r)) gives r back (reasoning stamped with the protocol)."""
    part = ReasoningPart(text="why", kind="reasoning_content", protocol=oc.PROTOCOL)
    req = conversation(part)
    req.params = Params(temperature=0.5, max_tokens=9, tool_choice="required", seed=1)
    back = decode_request(msgspec.json.decode(msgspec.json.encode(
        oc.encode_request(req, stream=True))))
    assert back.system == req.system and back.tools == req.tools
    assert back.params == req.params
    want = [Message(m.role, sorted(m.parts, key=lambda p: getattr(p, "call_id", "")))
            if m.role == "tool" else m for m in req.messages]
    assert back.messages == want
    assert back.stream is True


def test_decode_request_rejects_bad_shapes() -> None:
    """The fake server answers 400 to bodies that are not chat requests."""
    for body in ({}, {"model": "m"}, {"model": "m", "messages": [{"role": "robot"}]},
                 {"model": "m", "messages": [{"role": "tool"}]}):
        with pytest.raises(ValueError):
            decode_request(body)
