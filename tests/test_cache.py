"""The cache's pure half: canonical keys, prompt hashing, request diffs and the miss error."""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.cache import (
    VOLATILE_EXTRA,
    CacheMissError,
    cache_key,
    canonical_json,
    decode_response,
    diff,
    encode_response,
    hash_text,
    key_material,
    nearest,
    redact_material,
    replay_events,
)
from runtime.errors import ErrorKind, ProviderError
from runtime.events import assemble
from runtime.model import (
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

# --------------------------------------------------------------------------- strategies

words = st.text(max_size=12)
names = st.text("abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8)
scalars = st.none() | st.booleans() | st.integers(-1000, 1000) | words
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(names, inner, max_size=4),
    max_leaves=10,
)
schemas = st.dictionaries(
    names, st.fixed_dictionaries({"type": st.sampled_from(["string", "integer"]),
                                  "description": words}), max_size=4,
).map(lambda props: {"type": "object", "properties": props, "required": sorted(props)})
tools = st.builds(ToolSpec, name=names, description=words, parameters=schemas)


@st.composite
def conversations(draw: st.DrawFn) -> list[Message]:
    msgs = [Message.user(draw(words))]
    for i in range(draw(st.integers(0, 3))):
        call = ToolCallPart(f"call_{i}", draw(names), msgspec.json.encode(
            draw(st.dictionaries(names, scalars, max_size=3))).decode())
        msgs.append(Message("assistant", [TextPart(draw(words)), call]))
        msgs.append(Message("tool", [ToolResultPart(call.id, draw(words), name=call.name)]))
        msgs.append(Message.user(draw(words)))
    return msgs


params = st.builds(
    Params,
    temperature=st.none() | st.floats(0, 2, allow_nan=False),
    top_p=st.none() | st.floats(0, 1, allow_nan=False),
    max_tokens=st.none() | st.integers(1, 10_000),
    tool_choice=st.none() | st.sampled_from(["auto", "required", "none"]),
    response_format=st.none() | st.builds(
        lambda s: {"type": "json_schema", "json_schema": {"name": "out", "schema": s}}, schemas),
    reasoning_effort=st.none() | st.sampled_from(["low", "medium", "high"]),
    thinking_budget=st.none() | st.integers(1024, 8192),
    extra=st.dictionaries(names.filter(lambda n: n not in VOLATILE_EXTRA), json_values,
                          max_size=2),
)
requests = st.builds(
    Request,
    model=names,
    messages=conversations(),
    system=st.none() | words,
    tools=st.lists(tools, max_size=3, unique_by=lambda t: t.name),
    params=params,
    stream=st.booleans(),
    metadata=st.dictionaries(names, scalars, max_size=3),
)


def reorder(value: Any, rnd: random.Random) -> Any:
    """The same JSON value with every dict's keys in another order."""
    if isinstance(value, dict):
        items = list(value.items())
        rnd.shuffle(items)
        return {k: reorder(v, rnd) for k, v in items}
    if isinstance(value, list):
        return [reorder(v, rnd) for v in value]
    return value


def changed(text: str) -> str:
    return text + "!"


# --------------------------------------------------------------------------- key properties

fast = settings(max_examples=40, deadline=None)


@fast
@given(requests, st.randoms(use_true_random=False))
def test_reordered_json_keys_give_the_same_key(req: Request, rnd: random.Random) -> None:
    """Key order in tool schemas, response_format and extra never changes the key."""
    p = req.params
    other = msgspec.structs.replace(
        req,
        tools=[msgspec.structs.replace(t, parameters=reorder(t.parameters, rnd))
               for t in req.tools],
        params=msgspec.structs.replace(p, response_format=reorder(p.response_format, rnd),
                                       extra=reorder(p.extra, rnd)),
    )
    assert cache_key("openai_chat", other) == cache_key("openai_chat", req)


@fast
@given(requests, st.dictionaries(names, scalars, max_size=3), st.sampled_from(sorted(VOLATILE_EXTRA)),
       scalars)
def test_volatile_fields_give_the_same_key(req: Request, metadata: dict[str, Any],
                                           volatile: str, value: Any) -> None:
    """Streaming flag, metadata and volatile extra keys never change the key."""
    other = msgspec.structs.replace(
        req, stream=not req.stream, metadata=metadata, store=True, cache_system=True,
        params=msgspec.structs.replace(req.params, extra={**req.params.extra, volatile: value}),
    )
    assert cache_key("anthropic", other) == cache_key("anthropic", req)


@fast
@given(requests)
def test_a_wire_round_trip_gives_the_same_key(req: Request) -> None:
    """Encoding and decoding the request (int temperatures become floats) keeps the key."""
    again = msgspec.json.decode(msgspec.json.encode(req), type=Request)
    assert cache_key("k", again) == cache_key("k", req)


@fast
@given(requests, st.data())
def test_a_changed_message_gives_another_key(req: Request, data: st.DataObject) -> None:
    """Changing any one message's text, tool result or arguments changes the key."""
    i = data.draw(st.integers(0, len(req.messages) - 1))
    msg = req.messages[i]
    parts = list(msg.parts)
    j = data.draw(st.integers(0, len(parts) - 1))
    part = parts[j]
    if isinstance(part, TextPart):
        parts[j] = TextPart(changed(part.text))
    elif isinstance(part, ToolResultPart):
        parts[j] = msgspec.structs.replace(part, content=changed(str(part.content)))
    else:
        assert isinstance(part, ToolCallPart)
        parts[j] = msgspec.structs.replace(part, arguments=changed(part.arguments))
    messages = [*req.messages[:i], Message(msg.role, parts), *req.messages[i + 1:]]
    other = msgspec.structs.replace(req, messages=messages)
    assert cache_key("k", other) != cache_key("k", req)


@fast
@given(requests, st.data())
def test_a_changed_tool_gives_another_key(req: Request, data: st.DataObject) -> None:
    """A tool renamed, described differently, given another schema, or added changes the key."""
    how = data.draw(st.sampled_from(["name", "description", "parameters", "added"]))
    tools_ = list(req.tools)
    if how == "added" or not tools_:
        tools_.append(ToolSpec("zz_new_tool"))
    else:
        i = data.draw(st.integers(0, len(tools_) - 1))
        t = tools_[i]
        if how == "name":
            tools_[i] = msgspec.structs.replace(t, name=changed(t.name))
        elif how == "description":
            tools_[i] = msgspec.structs.replace(t, description=changed(t.description))
        else:
            props = {**t.parameters["properties"], "zz_new": {"type": "string"}}
            tools_[i] = msgspec.structs.replace(t, parameters={**t.parameters,
                                                               "properties": props})
    other = msgspec.structs.replace(req, tools=tools_)
    assert cache_key("k", other) != cache_key("k", req)


@fast
@given(requests, st.floats(0, 2, allow_nan=False))
def test_a_changed_temperature_gives_another_key(req: Request, temperature: float) -> None:
    """Any other temperature (or none vs some) changes the key."""
    if req.params.temperature == temperature:
        temperature = temperature / 2 + 0.25
    other = msgspec.structs.replace(
        req, params=msgspec.structs.replace(req.params, temperature=temperature))
    assert cache_key("k", other) != cache_key("k", req)


def test_key_is_hex_sha256_and_depends_on_provider_kind_model_and_extra() -> None:
    """The key is 64 hex digits; kind, model and a non-volatile extra key all count."""
    req = Request("m", [Message.user("hi")])
    key = cache_key("openai_chat", req)
    assert re.fullmatch(r"[0-9a-f]{64}", key)
    assert cache_key("anthropic", req) != key
    assert cache_key("openai_chat", msgspec.structs.replace(req, model="m2")) != key
    extra = msgspec.structs.replace(req, params=Params(extra={"top_k": 5}))
    assert cache_key("openai_chat", extra) != key


def test_material_is_canonical_json_without_volatile_fields() -> None:
    """The hashed document has sorted keys, no spaces and none of the volatile fields."""
    req = Request("m", [Message("user", [TextPart("hi", cache=True)])], stream=False,
                  metadata={"request_id": "r-1"}, params=Params(extra={"user": "u-9"}))
    doc = canonical_json(key_material("k", req)).decode()
    assert " " not in doc.replace("hi", "")
    keys = list(msgspec.json.decode(doc))
    assert keys == sorted(keys)
    for volatile in ("r-1", "u-9", "stream", "metadata", "cache"):
        assert volatile not in doc


# --------------------------------------------------------------------------- hashing, diff


def _session_request(canary: str) -> Request:
    call = ToolCallPart("c1", "read", f'{{"path": "{canary}"}}')
    return Request(
        "m",
        [Message.user(f"first {canary}"),
         Message("assistant", [ReasoningPart(f"think {canary}"), TextPart("ok"), call]),
         Message("tool", [ToolResultPart("c1", f"result {canary}", name="read")]),
         Message.user("second")],
        system=f"system {canary}",
        tools=[ToolSpec("read", f"reads {canary}",
                        {"type": "object", "properties": {
                            "path": {"type": "string", "description": f"p {canary}"}}})],
    )


def test_redacted_material_holds_no_prompt_text_but_keeps_structure() -> None:
    """Every prompt string is a sha256 hash; names and ids stay; diff sees no difference."""
    canary = "CANARY-7f3a"
    material = key_material("k", _session_request(canary))
    redacted = redact_material(material)
    text = canonical_json(redacted).decode()
    assert canary not in text
    assert canary in canonical_json(material).decode()
    assert hash_text(f"first {canary}") in text
    assert '"read"' in text and '"c1"' in text
    assert diff(material, redacted) == []
    assert diff(redacted, material) == []


def test_diff_names_paths_in_document_order() -> None:
    """Paths look like messages[3].content / params.temperature, messages in index order."""
    msgs = [Message.user(str(i)) for i in range(12)]
    a = key_material("k", Request("m", msgs, params=Params(temperature=0.5)))
    msgs2 = list(msgs)
    msgs2[3] = Message.user("changed")
    msgs2[10] = Message.user("changed too")
    b = key_material("k", Request("m", msgs2, params=Params(temperature=0.7)))
    assert diff(a, b) == ["params.temperature", "messages[3].content", "messages[10].content"]
    assert diff(a, b, limit=2) == ["params.temperature", "messages[3].content"]
    c = key_material("k", Request("m", [*msgs, Message.user("more")]))
    assert diff(a, c) == ["params.temperature", "messages[12]"]


def test_diff_sees_changes_through_hashed_material() -> None:
    """A hashed stored request still shows which message differs from a plain one."""
    stored = redact_material(key_material("k", _session_request("x")))
    req = _session_request("x")
    req.messages[2] = Message("tool", [ToolResultPart("c1", "another result", name="read")])
    assert diff(key_material("k", req), stored) == ["messages[2].content[0].content"]


def test_nearest_picks_the_candidate_with_fewest_differences() -> None:
    """Among stored requests the one differing at the fewest paths wins."""
    base = Request("m", [Message.user("a"), Message.user("b")], params=Params(temperature=1))
    far = msgspec.structs.replace(base, model="other", messages=[Message.user("z")])
    near = msgspec.structs.replace(base, messages=[Message.user("a"), Message.user("c")])
    cands = [("far", key_material("k", far)), ("near", key_material("k", near))]
    assert nearest(key_material("k", base), cands) == ("near", ["messages[1].content"])
    assert nearest(key_material("k", base), []) is None


# --------------------------------------------------------------------------- error, values


def test_miss_error_is_a_bad_request_naming_key_and_paths() -> None:
    """The replay miss fails the turn as bad_request, naming the key prefix and the paths."""
    key = "1a2b3c4d" + "0" * 56
    err = CacheMissError(key, ("other", ["messages[3].content", "params.temperature",
                                         "tools[0].name", "model"]))
    assert isinstance(err, ProviderError)
    assert err.kind is ErrorKind.BAD_REQUEST and not err.retryable
    assert err.message.startswith(
        "replay cache miss for key 1a2b3c4d: nearest stored request differs at "
        "messages[3].content")
    assert "(+1 more)" in err.message
    assert err.hint == "re-record with --cache record-only"
    assert "no recorded request" in CacheMissError(key, None).message


@pytest.mark.parametrize("resp", [
    Response("r1", "m", [TextPart("hello")], "stop", "stop", Usage(5, 2)),
    Response("r2", "m", [ReasoningPart("hmm", signature="sig"), TextPart("a"),
                         ToolCallPart("c1", "f", '{"x": 1}')], "tool_calls", "tool_calls",
             Usage(9, 4, reasoning_tokens=1)),
])
def test_stored_response_round_trips_and_replays_as_events(resp: Response) -> None:
    """The stored bytes decode to the response, and its replayed events assemble back to it."""
    again = decode_response(encode_response(resp))
    assert again == resp
    replayed = assemble(replay_events(again))
    assert replayed.parts == resp.parts
    assert (replayed.usage, replayed.stop) == (resp.usage, resp.stop)


def test_the_key_module_is_pure() -> None:
    """runtime.cache does no I/O of its own: it imports neither trio nor sqlite3."""
    import runtime.cache

    source = Path(runtime.cache.__file__).read_text()
    assert not re.search(r"^\s*(import|from)\s+(trio|sqlite3|httpx)\b", source, re.M)
