"""The OpenAI Responses codec against real recordings, request shapes and malformed input."""

from __future__ import annotations

import json
import random
from typing import Any
from urllib.parse import urlsplit

import msgspec
import pytest

from runtime.errors import ErrorKind, ProviderError
from runtime.events import ErrorEvent, Finish
from runtime.testing.wire import openai_responses as fake
from runtime.wire import openai_responses as codec
from runtime.wire.sse import SSEDecoder, SSEEvent
from tests.recordings import assert_matches, decode_recorded, interactions, is_stream

INTERACTIONS = interactions("openai-responses")
IDS = [i[0] for i in INTERACTIONS]


def sse(data: Any, event: str | None = None) -> SSEEvent:
    text = data if isinstance(data, str) else msgspec.json.encode(data).decode()
    name = event or (data.get("type", "message") if isinstance(data, dict) else "message")
    return SSEEvent(text, name)


@pytest.mark.parametrize(("tid", "rec", "inter", "exp"), INTERACTIONS, ids=IDS)
def test_recorded_response_decodes_to_expected(tid: str, rec: dict[str, Any],
                                               inter: dict[str, Any],
                                               exp: dict[str, Any]) -> None:
    """Every recorded response decodes to what its ``expect`` record says."""
    got = decode_recorded("openai-responses", inter)
    resp, error, deltas = got.response, got.error, got.argument_deltas
    if got.sse_events is not None:
        assert got.sse_events == exp["sse_event_count"]
    if got.events and error is None:
        assert isinstance(got.events[-1], Finish)
    assert_matches("openai-responses", resp, error, exp, argument_deltas=deltas)


def _shape(body: dict[str, Any]) -> dict[str, Any]:
    """The fields of a Responses request body that a round trip must keep."""
    system = [body["instructions"]] if body.get("instructions") else []
    raw = body.get("input")
    items = [{"role": "user", "content": raw}] if isinstance(raw, str) else raw
    kinds: list[str] = []
    for it in items:
        t = it.get("type", "message")
        if t == "message":
            if it["role"] in ("system", "developer"):
                c = it["content"]
                system.append(c if isinstance(c, str) else "".join(p["text"] for p in c))
            else:
                kinds.append(it["role"])
        else:
            kinds.append(t)
    tools = body.get("tools") or []
    return {
        "model": body["model"],
        "stream": bool(body.get("stream")),
        "system": "\n\n".join(system),
        "kinds": kinds,
        "function_tools": [(t["name"], t["parameters"]) for t in tools
                           if t["type"] == "function"],
        "other_tools": [t for t in tools if t["type"] != "function"],
        "calls": [(i["call_id"], i["name"], i["arguments"]) for i in items
                  if i.get("type") == "function_call"],
        "call_item_ids": [i.get("id") for i in items if i.get("type") == "function_call"],
        "results": [i["call_id"] for i in items if i.get("type") == "function_call_output"],
        "reasoning": [i for i in items if i.get("type") == "reasoning"],
        "builtin_items": [i for i in items if i.get("type") not in
                          (None, "message", "function_call", "function_call_output",
                           "reasoning")],
        "text": body.get("text"),
        "reasoning_params": body.get("reasoning"),
        "temperature": body.get("temperature"),
        "previous_response_id": body.get("previous_response_id"),
    }


@pytest.mark.parametrize(("tid", "rec", "inter", "exp"), INTERACTIONS, ids=IDS)
def test_recorded_request_round_trips(tid: str, rec: dict[str, Any], inter: dict[str, Any],
                                      exp: dict[str, Any]) -> None:
    """decode_request then encode_request keeps tools, roles, pairing and reasoning."""
    recorded = inter["request"]["body"]
    req = fake.decode_request(recorded)
    body = codec.encode_request(req, stream=req.stream)
    assert _shape(body) == _shape(recorded)
    want_path = inter["request"]["path"].split("?", 1)[0]
    assert urlsplit(codec.url("https://api.openai.com/v1")).path == want_path
    # every tool result answers a call sent before it
    items = body["input"]
    for n, it in enumerate(items):
        if it["type"] == "function_call_output":
            earlier = [i["call_id"] for i in items[:n] if i.get("type") == "function_call"]
            assert it["call_id"] in earlier


def test_recorded_reasoning_is_passed_back_verbatim() -> None:
    """A recorded reasoning item goes back byte for byte, encrypted payload included."""
    bodies = [i[2]["request"]["body"] for i in INTERACTIONS]
    with_reasoning = [b for b in bodies if any(it.get("type") == "reasoning"
                                               for it in b["input"])]
    assert with_reasoning, "the recordings hold requests that pass reasoning back"
    for recorded in with_reasoning:
        body = codec.encode_request(fake.decode_request(recorded), stream=False)
        sent = [it for it in body["input"] if it.get("type") == "reasoning"]
        assert sent == [it for it in recorded["input"] if it.get("type") == "reasoning"]
        assert all(it["encrypted_content"] for it in sent)


# -- malformed input -------------------------------------------------------------------

_GOOD_BODY = next(i[2]["response"]["body"] for i in INTERACTIONS
                  if not is_stream(i[2]) and i[2]["response"]["status"] == 200
                  and i[3]["tool_calls"])


@pytest.mark.parametrize("body", [
    _GOOD_BODY[: len(_GOOD_BODY) // 2],
    "<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head></html>",
    "",
    "[1, 2, 3]",
    '{"id": "resp_1", "status": "completed"}',
    '{"id": 5, "output": []}',
    '{"id": "r", "output": [{"type": "message", "content": [{"type": "output_text", '
    '"text": 7}]}]}',
    '{"id": "r", "output": [{"type": "function_call", "name": "f", "arguments": {}}]}',
    '{"id": "r", "output": [{"id": "x"}]}',
    '{"id": "r", "output": ["text"]}',
    '{"id": "r", "output": [], "usage": {"input_tokens": "many"}}',
    '{"id": "r", "output": [], "usage": [1]}',
], ids=["truncated", "html", "empty", "array", "no-output", "id-int", "text-int",
        "call-no-id", "item-no-type", "item-str", "usage-str", "usage-list"])
def test_malformed_body_is_malformed_response(body: str) -> None:
    """Bad bodies raise malformed_response, never a bare exception."""
    with pytest.raises(ProviderError) as info:
        codec.decode_body(body.encode())
    assert info.value.kind is ErrorKind.MALFORMED_RESPONSE


def test_error_object_in_200_body_is_error_event() -> None:
    """``{"error": ...}`` with status 200 becomes an ErrorEvent with the provider's kind."""
    body = msgspec.json.encode(fake.error_body(429, "slow down"))
    events = codec.decode_body(body)
    assert len(events) == 1 and isinstance(events[0], ErrorEvent)
    assert events[0].kind == ErrorKind.RATE_LIMITED.value
    assert events[0].message == "slow down"


_CREATED = {"type": "response.created", "response": {"id": "resp_1", "model": "m"}}
_MSG_ADDED = {"type": "response.output_item.added", "output_index": 0,
              "item": {"type": "message", "id": "msg_1", "content": []}}
_TEXT = {"type": "response.output_text.delta", "output_index": 0, "content_index": 0,
         "item_id": "msg_1", "delta": "hi"}
_COMPLETED = {"type": "response.completed",
              "response": {"id": "resp_1", "status": "completed", "output": []}}


@pytest.mark.parametrize(("events", "state"), [
    ([_TEXT], "start"),
    ([_CREATED, _TEXT], "open"),
    ([_CREATED, _MSG_ADDED, {**_TEXT, "output_index": 3}], "item"),
    ([_CREATED, _MSG_ADDED, {**_TEXT, "output_index": None, "item_id": "other"}], "item"),
    ([_CREATED, _COMPLETED, _TEXT], "done"),
    ([_CREATED, _COMPLETED, _COMPLETED], "done"),
    ([_CREATED, _CREATED], "open"),
    ([_CREATED, {"type": "response.content_part.added", "output_index": 0}], "open"),
], ids=["delta-first", "delta-no-item", "delta-wrong-index", "delta-unknown-id",
        "delta-after-done", "completed-twice", "created-twice", "part-no-item"])
def test_unexpected_event_order_names_the_state(events: list[dict[str, Any]],
                                                state: str) -> None:
    """An event that is not a legal move is malformed_response naming the state."""
    dec = codec.StreamDecoder()
    with pytest.raises(ProviderError) as info:
        for ev in events:
            dec.feed(sse(ev))
    assert info.value.kind is ErrorKind.MALFORMED_RESPONSE
    assert f"state {state}" in info.value.message


@pytest.mark.parametrize("data", [
    '{"type": "response.output_text.delta", "output_index": 0, "delta": 5}',
    '{"type": "response.output_text.delta", "output_index": "zero", "delta": "a"}',
    '{"type": "response.output_text.delta", "output_index": 0}',
    '{"type": "response.output_text.del',
    "<html>oops</html>",
    "[1]",
], ids=["delta-int", "index-str", "no-delta", "truncated", "html", "array"])
def test_malformed_stream_event_is_malformed_response(data: str) -> None:
    """A bad event inside an open item is malformed_response, never another exception."""
    dec = codec.StreamDecoder()
    dec.feed(sse(_CREATED))
    dec.feed(sse(_MSG_ADDED))
    with pytest.raises(ProviderError) as info:
        dec.feed(SSEEvent(data, "response.output_text.delta"))
    assert info.value.kind is ErrorKind.MALFORMED_RESPONSE


def test_bad_item_in_stream_is_malformed_response() -> None:
    """A function call item without name or call id at output_item.done is malformed."""
    dec = codec.StreamDecoder()
    dec.feed(sse(_CREATED))
    with pytest.raises(ProviderError) as info:
        dec.feed(sse({"type": "response.output_item.done", "output_index": 0,
                      "item": {"type": "function_call", "arguments": "{}"}}))
    assert info.value.kind is ErrorKind.MALFORMED_RESPONSE


def _recorded_stream() -> bytes:
    return next(i[2]["response"]["body"] for i in INTERACTIONS
                if is_stream(i[2]) and i[3]["tool_calls"]).encode()


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.9, 0.99])
def test_cut_stream_is_stream_interrupted(fraction: float) -> None:
    """A stream cut before its terminal event raises stream_interrupted at close()."""
    body = _recorded_stream()
    cut = body[: int(len(body) * fraction)]
    sse_dec = SSEDecoder()
    dec = codec.StreamDecoder()
    with pytest.raises(ProviderError) as info:
        for ev in sse_dec.feed(cut):
            dec.feed(ev)
        # the last event of a cut stream may itself be a truncated JSON document
        for ev in sse_dec.close():
            dec.feed(ev)
        dec.close()
    assert info.value.kind in (ErrorKind.STREAM_INTERRUPTED, ErrorKind.MALFORMED_RESPONSE)
    if info.value.kind is ErrorKind.STREAM_INTERRUPTED:
        assert "before its terminal event" in info.value.message


def test_stream_cut_at_event_boundary_is_stream_interrupted() -> None:
    """Whole events but no terminal one: stream_interrupted naming the state."""
    body = _recorded_stream()
    events = SSEDecoder().feed(body)
    dec = codec.StreamDecoder()
    for ev in events[:-1]:
        dec.feed(ev)
    with pytest.raises(ProviderError) as info:
        dec.close()
    assert info.value.kind is ErrorKind.STREAM_INTERRUPTED
    assert "state open" in info.value.message


_ODD_VALUES: list[Any] = [None, 0, -1, 1.5, "", "x", [], {}, [1], {"a": 1}, True,
                          {"type": "message"}, [{"type": 3}]]


def _mutate(obj: Any, rng: Any) -> Any:
    """Replace or drop one value somewhere inside ``obj`` (in place)."""
    if isinstance(obj, dict) and obj:
        key = rng.choice(sorted(obj))
        roll = rng.random()
        if roll < 0.3:
            obj[key] = rng.choice(_ODD_VALUES)
        elif roll < 0.4:
            del obj[key]
        else:
            _mutate(obj[key], rng)
    elif isinstance(obj, list) and obj:
        i = rng.randrange(len(obj))
        if rng.random() < 0.3:
            obj[i] = rng.choice(_ODD_VALUES)
        else:
            _mutate(obj[i], rng)
    return obj


@pytest.mark.parametrize("seed", range(4))
def test_mutated_recordings_raise_only_provider_errors(seed: int) -> None:
    """Recorded bodies and streams with one value broken anywhere either decode or raise
    ProviderError: never a bare KeyError/TypeError/..."""
    rng = random.Random(seed)
    ok = failed = 0
    for _tid, _rec, inter, _exp in INTERACTIONS:
        r = inter["response"]
        if r["status"] >= 400:
            continue
        for _ in range(15):
            try:
                if is_stream(inter):
                    events = SSEDecoder().feed(r["body"].encode())
                    dec = codec.StreamDecoder()
                    j = rng.randrange(len(events))
                    for k, ev in enumerate(events):
                        if k == j:
                            ev = SSEEvent(json.dumps(_mutate(json.loads(ev.data), rng)),
                                          ev.event)
                        dec.feed(ev)
                    dec.close()
                else:
                    codec.decode_body(json.dumps(_mutate(json.loads(r["body"]), rng)).encode())
                ok += 1
            except ProviderError:
                failed += 1
    assert ok and failed  # both outcomes happen: the mutations do reach the decoders


def test_decode_request_rejects_non_requests() -> None:
    """The fake server's request decoder raises ValueError for bodies of the wrong shape."""
    for body in ([1], {"model": "m", "tools": 1.5}, {"model": "m", "temperature": "hot"},
                 {"model": "m", "input": [{"type": "function_call", "summary": 3}],
                  "stop": 5}):
        with pytest.raises(ValueError):
            fake.decode_request(body)  # type: ignore[arg-type]
