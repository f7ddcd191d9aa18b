"""Totality of the three decoders: every decode, streamed or whole-body, ends in content, a
finish reason or a typed error, never silently empty.

The inputs are recorded streams and bodies cut, reordered, repeated and pruned, and event
sequences and bodies generated from each protocol's vocabulary (including the shapes that
used to be dropped: whole answers in ``message_start``, usage-only streams, ``[DONE]`` alone,
``response.incomplete`` / ``failed`` / ``cancelled`` variants, tool-call fragments without
ids, client-run Responses items)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runtime.errors import ErrorKind, ProviderError
from runtime.events import ErrorEvent, Event, Finish, assemble
from runtime.model import ReasoningPart, TextPart
from runtime.wire import codec_for
from tests.recordings import CODEC_OF, interactions
from tests.wire.streams import fast_run, merge_text, standard_run

TYPED = (ErrorKind.MALFORMED_RESPONSE, ErrorKind.STREAM_INTERRUPTED)
SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def has_outcome(events: list[Event]) -> bool:
    """Content, a finish reason or an error: what a decode must end in."""
    if any(isinstance(e, ErrorEvent) for e in events):
        return True
    resp = assemble(events)
    if resp.finish_reason is not None or resp.refusal:
        return True
    for p in resp.parts:
        if isinstance(p, TextPart):
            if p.text:
                return True
        elif isinstance(p, ReasoningPart):
            if p.text or p.opaque or p.raw:
                return True
        else:
            return True
    return False


def check_total(decode: Any) -> None:
    """Run a decode: a typed ProviderError, or events with an outcome and a proper end."""
    try:
        events: list[Event] = decode()
    except ProviderError as exc:
        assert exc.kind in TYPED, exc
        return
    assert has_outcome(events), f"silently empty decode: {events}"
    assert any(isinstance(e, (Finish, ErrorEvent)) for e in events), events


def stream_of(protocol: str, blocks: list[bytes]) -> list[Event]:
    """The events of a stream; the HTTP provider's fast path (``EventSplitter``, bytes data,
    ``feed_all``) is checked to end exactly the same way (text runs merged)."""
    fast, fast_exc = fast_run(protocol, blocks)
    out, exc = standard_run(protocol, blocks)
    if exc is not None:
        assert fast_exc is not None, (exc, fast)
        assert (fast_exc.kind, fast_exc.message) == (exc.kind, exc.message)
        raise exc
    assert fast_exc is None, fast_exc
    assert fast == merge_text(out)
    return out


# -- recorded material, cut and shuffled ---------------------------------------------------

def _blocks(body: str) -> list[bytes]:
    return [b.encode() + b"\n\n" for b in body.replace("\r\n", "\n").split("\n\n") if b.strip()]


RECORDED_STREAMS = [(CODEC_OF[rec["protocol"]], _blocks(inter["response"]["body"]))
                    for _, rec, inter, exp in interactions() if exp["stream"]]
RECORDED_BODIES = [(CODEC_OF[rec["protocol"]], json.loads(inter["response"]["body"]))
                   for _, rec, inter, exp in interactions()
                   if not exp["stream"] and exp["status"] == 200]


@st.composite
def recorded_stream(draw: st.DrawFn) -> tuple[str, list[bytes]]:
    protocol, blocks = draw(st.sampled_from(RECORDED_STREAMS))
    n = len(blocks)
    order = draw(st.one_of(
        st.integers(0, n).map(lambda k: list(range(k))),  # cut
        st.sets(st.integers(0, n - 1)).map(sorted),  # pruned
        st.lists(st.integers(0, n - 1), max_size=n + 4),  # reordered, repeated
    ))
    return protocol, [blocks[i] for i in order]


@SETTINGS
@given(recorded_stream())
def test_recorded_streams_cut_and_reordered_never_decode_to_nothing(
        case: tuple[str, list[bytes]]) -> None:
    """Recorded streams cut, pruned, reordered or repeated end in an outcome or a typed error."""
    protocol, blocks = case
    check_total(lambda: stream_of(protocol, blocks))


def _paths(doc: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = []
    if isinstance(doc, dict):
        for k, v in doc.items():
            out.append((*path, k))
            out += _paths(v, (*path, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out.append((*path, i))
            out += _paths(v, (*path, i))
    return out


def _mutate(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    doc = json.loads(json.dumps(doc))
    parent = doc
    for k in path[:-1]:
        parent = parent[k]
    if value is _DELETE:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return doc


_DELETE = object()


@st.composite
def recorded_body(draw: st.DrawFn) -> tuple[str, bytes]:
    protocol, doc = draw(st.sampled_from(RECORDED_BODIES))
    for _ in range(draw(st.integers(0, 4))):
        paths = _paths(doc)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        doc = _mutate(doc, path, draw(st.sampled_from([_DELETE, None, [], "", {}])))
    return protocol, json.dumps(doc).encode()


@SETTINGS
@given(recorded_body())
def test_recorded_bodies_pruned_never_decode_to_nothing(case: tuple[str, bytes]) -> None:
    """Recorded JSON bodies with fields removed or emptied end in an outcome or a typed error."""
    protocol, body = case
    check_total(lambda: codec_for(protocol).decode_body(body))


# -- generated events ----------------------------------------------------------------------

def _sse(data: Any, event: str | None = None) -> bytes:
    text = data if isinstance(data, str) else json.dumps(data)
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {text}\n\n".encode()


small_text = st.sampled_from(["", "hi", " "])
maybe = st.none() | st.just(True)

# Anthropic Messages
a_block = st.one_of(
    st.fixed_dictionaries({"type": st.just("text"), "text": small_text}),
    st.fixed_dictionaries({"type": st.just("tool_use"), "id": st.sampled_from(["t1", "t2"]),
                           "name": st.just("f"),
                           "input": st.sampled_from([{}, {"a": 1}])}),
    st.fixed_dictionaries({"type": st.just("thinking"), "thinking": small_text,
                           "signature": st.sampled_from(["", "sig"])}),
    st.fixed_dictionaries({"type": st.just("server_tool_use"), "id": st.just("s1"),
                           "name": st.just("web_search"), "input": st.just({})}),
    st.fixed_dictionaries({"type": st.just("redacted_thinking"), "data": st.just("xx")}),
)
a_stop = st.sampled_from([None, "end_turn", "tool_use", "max_tokens"])
a_index = st.integers(0, 3)
a_delta = st.one_of(
    st.fixed_dictionaries({"type": st.just("text_delta"), "text": small_text}),
    st.fixed_dictionaries({"type": st.just("input_json_delta"),
                           "partial_json": st.sampled_from(["", "{", "}", '{"a": 1}'])}),
    st.fixed_dictionaries({"type": st.just("thinking_delta"), "thinking": small_text}),
    st.fixed_dictionaries({"type": st.just("signature_delta"), "signature": st.just("s")}),
    st.fixed_dictionaries({"type": st.just("citations_delta"), "citation": st.just({})}),
)
a_event = st.one_of(
    st.builds(lambda mid, content, stop: {"type": "message_start", "message": {
        "id": mid, "model": "claude-x", "content": content, "stop_reason": stop,
        "usage": {"input_tokens": 3, "output_tokens": 1}}},
        st.sampled_from(["m1", "m2"]), st.lists(a_block, max_size=3), a_stop),
    st.builds(lambda i, b: {"type": "content_block_start", "index": i, "content_block": b},
              a_index, a_block),
    st.builds(lambda i, d: {"type": "content_block_delta", "index": i, "delta": d},
              a_index, a_delta),
    st.builds(lambda i: {"type": "content_block_stop", "index": i}, a_index),
    st.builds(lambda stop, usage: {"type": "message_delta", "delta": {"stop_reason": stop},
                                   **({"usage": {"output_tokens": 5}} if usage else {})},
              a_stop, st.booleans()),
    st.just({"type": "message_stop"}),
    st.just({"type": "ping"}),
    st.just({"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}),
)
anthropic_stream = st.lists(a_event, max_size=10).map(
    lambda evs: [_sse(e, e["type"]) for e in evs])
anthropic_body = st.fixed_dictionaries(
    {"id": st.just("m1"), "type": st.just("message"), "model": st.just("claude-x")},
    optional={"content": st.lists(a_block, max_size=3), "stop_reason": a_stop,
              "usage": st.just({"input_tokens": 1, "output_tokens": 1})})

# OpenAI Chat Completions
c_fragment = st.fixed_dictionaries({}, optional={
    "index": st.sampled_from([0, 1]), "id": st.sampled_from(["call_a", "call_b"]),
    "type": st.just("function"),
    "function": st.fixed_dictionaries({}, optional={
        "name": st.sampled_from(["f", "g"]),
        "arguments": st.sampled_from(["", "{", '"a": 1}', "{}"])}),
})
c_delta = st.fixed_dictionaries({}, optional={
    "role": st.just("assistant"), "content": st.none() | small_text,
    "tool_calls": st.lists(c_fragment, max_size=2),
    "reasoning_content": small_text, "refusal": small_text,
    "function_call": st.fixed_dictionaries({}, optional={
        "name": st.just("legacy"), "arguments": st.sampled_from(["", "{}", '{"x": 2}'])}),
})
c_finish = st.sampled_from([None, "stop", "tool_calls", "length", "function_call"])
c_choice = st.fixed_dictionaries({"index": st.sampled_from([0, 0, 1]), "delta": c_delta,
                                  "finish_reason": c_finish})
c_chunk = st.one_of(
    st.builds(lambda choices, usage: {
        "id": "c1", "model": "m", "choices": choices,
        "usage": {"prompt_tokens": 2, "completion_tokens": 1} if usage else None},
        st.lists(c_choice, max_size=2), st.booleans()),
    st.just("[DONE]"),
    st.just({"error": {"message": "boom", "type": "server_error"}}),
)
chat_stream = st.lists(c_chunk, max_size=10).map(lambda evs: [_sse(e) for e in evs])
chat_body = st.builds(
    lambda msg, finish, usage: {"id": "c1", "model": "m", "choices": [
        {"index": 0, "message": msg, "finish_reason": finish}],
        **({"usage": {"prompt_tokens": 2, "completion_tokens": 1}} if usage else {})},
    c_delta, c_finish, st.booleans())

# OpenAI Responses
r_item = st.one_of(
    st.fixed_dictionaries({"type": st.just("message"), "id": st.just("msg_1"),
                           "role": st.just("assistant"),
                           "content": st.lists(st.fixed_dictionaries(
                               {"type": st.just("output_text"), "text": small_text}),
                               max_size=2)}),
    st.fixed_dictionaries({"type": st.just("function_call"), "id": st.just("fc_1"),
                           "call_id": st.just("call_1"), "name": st.just("f"),
                           "arguments": st.sampled_from(["", "{}", "{"])}),
    st.fixed_dictionaries({"type": st.just("custom_tool_call"), "id": st.just("ctc_1"),
                           "call_id": st.just("call_2"), "name": st.just("exec"),
                           "input": small_text}),
    st.fixed_dictionaries({"type": st.just("shell_call"), "id": st.just("sh_1"),
                           "call_id": st.just("call_3"),
                           "action": st.just({"commands": ["ls"]})},
                          optional={"environment": st.sampled_from([
                              None, {"type": "local"},
                              {"type": "container_reference", "container_id": "c"}])}),
    st.fixed_dictionaries({"type": st.just("apply_patch_call"), "id": st.just("apc_1"),
                           "call_id": st.just("call_4"), "status": st.just("completed"),
                           "operation": st.just({"type": "delete_file", "path": "a"})}),
    st.fixed_dictionaries({"type": st.just("shell_call_output"), "id": st.just("sho_1"),
                           "call_id": st.just("call_3"), "output": st.just([])}),
    st.fixed_dictionaries({"type": st.just("reasoning"), "id": st.just("rs_1"),
                           "summary": st.just([])},
                          optional={"encrypted_content": st.just("enc")}),
    st.fixed_dictionaries({"type": st.just("web_search_call"), "id": st.just("ws_1"),
                           "status": st.just("completed")}),
)
r_status = st.sampled_from([None, "completed", "incomplete", "failed", "cancelled",
                            "in_progress"])
r_response = st.fixed_dictionaries(
    {"id": st.just("resp_1"), "model": st.just("gpt-x")},
    optional={"status": r_status, "output": st.lists(r_item, max_size=3),
              "incomplete_details": st.sampled_from(
                  [None, {"reason": "max_output_tokens"}, {}]),
              "error": st.sampled_from([None, {"message": "bad", "code": "server_error"}]),
              "usage": st.just({"input_tokens": 3, "output_tokens": 2})})
r_oi = st.integers(0, 2)
r_event = st.one_of(
    st.builds(lambda t, r: {"type": t, "response": r},
              st.sampled_from(["response.created", "response.in_progress"]), r_response),
    st.builds(lambda t, oi, item: {"type": t, "output_index": oi, "item": item},
              st.sampled_from(["response.output_item.added", "response.output_item.done"]),
              r_oi, r_item),
    st.builds(lambda t, oi, d: {"type": t, "output_index": oi, "content_index": 0,
                                "item_id": "x", "delta": d},
              st.sampled_from(["response.output_text.delta",
                               "response.function_call_arguments.delta",
                               "response.custom_tool_call_input.delta",
                               "response.refusal.delta"]), r_oi, small_text),
    st.builds(lambda t, r: {"type": t, "response": r},
              st.sampled_from(["response.completed", "response.incomplete",
                               "response.failed"]), r_response),
    st.just({"type": "error", "code": "server_error", "message": "boom"}),
    st.just("[DONE]"),
)
responses_stream = st.lists(r_event, max_size=10).map(
    lambda evs: [_sse(e, e["type"] if isinstance(e, dict) else None) for e in evs])

STREAMS = {"anthropic": anthropic_stream, "openai-chat": chat_stream,
           "openai-responses": responses_stream}
BODIES = {"anthropic": anthropic_body, "openai-chat": chat_body,
          "openai-responses": r_response}


@SETTINGS
@given(st.sampled_from(sorted(STREAMS)).flatmap(
    lambda p: st.tuples(st.just(p), STREAMS[p])))
def test_generated_streams_never_decode_to_nothing(case: tuple[str, list[bytes]]) -> None:
    """Generated event sequences of each protocol end in an outcome or a typed error."""
    protocol, blocks = case
    check_total(lambda: stream_of(protocol, blocks))


@SETTINGS
@given(st.sampled_from(sorted(BODIES)).flatmap(
    lambda p: st.tuples(st.just(p), BODIES[p])))
def test_generated_bodies_never_decode_to_nothing(case: tuple[str, dict[str, Any]]) -> None:
    """Generated JSON bodies of each protocol end in an outcome or a typed error."""
    protocol, doc = case
    check_total(lambda: codec_for(protocol).decode_body(json.dumps(doc).encode()))


def test_known_silent_shapes_are_now_typed_errors() -> None:
    """The shapes that used to decode to nothing are named errors: a usage-only chat stream,
    an Anthropic message with no content and no stop_reason, a Responses body without
    status or output items."""
    usage_only = [_sse({"id": "c", "model": "m", "choices": [],
                        "usage": {"prompt_tokens": 1, "completion_tokens": 0}}), _sse("[DONE]")]
    empty_message = [_sse(e, e["type"]) for e in (
        {"type": "message_start", "message": {"id": "m", "model": "x", "content": []}},
        {"type": "message_delta", "delta": {"stop_reason": None}},
        {"type": "message_stop"})]
    cases = [
        lambda: stream_of("openai-chat", usage_only),
        lambda: stream_of("anthropic", empty_message),
        lambda: codec_for("anthropic").decode_body(
            b'{"id": "m", "type": "message", "content": [], "stop_reason": null}'),
        lambda: codec_for("openai-responses").decode_body(b'{"id": "r", "output": []}'),
        lambda: codec_for("openai-chat").decode_body(
            b'{"id": "c", "choices": [{"index": 0, "message": {"role": "assistant"},'
            b' "finish_reason": null}]}'),
    ]
    for case in cases:
        try:
            case()
        except ProviderError as exc:
            assert exc.kind is ErrorKind.MALFORMED_RESPONSE
            assert "neither" in exc.message, exc.message
        else:
            raise AssertionError("decoded to nothing without an error")
