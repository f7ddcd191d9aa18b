"""The Anthropic codec's request side: encode_request details, and the fake server's
decode_request and error_body."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from runtime.model import (
    BuiltinToolPart,
    ImagePart,
    Message,
    Params,
    ReasoningPart,
    Request,
    TextPart,
    ToolCallPart,
    ToolResultPart,
    ToolSpec,
)
from runtime.testing.wire import anthropic as server
from runtime.wire import anthropic

A = anthropic.PROTOCOL


def _req(messages: list[Message], **kw: Any) -> Request:
    return Request(model="claude-x", messages=messages, **kw)


# ---------------------------------------------------------------- encode_request


def test_url_and_headers() -> None:
    """The endpoint appends /v1/messages; the key goes in x-api-key only when given."""
    assert anthropic.url("https://api.anthropic.com/") == "https://api.anthropic.com/v1/messages"
    h = anthropic.headers("sk-test")
    assert h["x-api-key"] == "sk-test"
    assert h["anthropic-version"] == "2023-06-01"
    assert h["content-type"] == "application/json"
    assert "x-api-key" not in anthropic.headers(None)


def test_tool_results_follow_call_order_and_merge_with_user_text() -> None:
    """Results sent out of order go back in call order, in one user turn with the text."""
    calls = [ToolCallPart(f"c{i}", "f", json.dumps({"i": i})) for i in range(3)]
    msgs = [
        Message.user("go"),
        Message("assistant", [TextPart("calling"), *calls]),
        Message("tool", [ToolResultPart("c2", "two"), ToolResultPart("c0", "zero"),
                         ToolResultPart("c1", [TextPart("one"), ImagePart(url="http://i/x.png")],
                                        is_error=True)]),
        Message.user("and now?"),
    ]
    body = anthropic.encode_request(_req(msgs), stream=False)
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    assistant, user = body["messages"][1]["content"], body["messages"][2]["content"]
    assert [b["input"] for b in assistant if b["type"] == "tool_use"] == [{"i": 0}, {"i": 1},
                                                                          {"i": 2}]
    assert [b.get("tool_use_id") for b in user] == ["c0", "c1", "c2", None]
    assert user[1]["is_error"] is True and "is_error" not in user[0]
    assert user[1]["content"][1] == {"type": "image",
                                     "source": {"type": "url", "url": "http://i/x.png"}}
    assert user[3] == {"type": "text", "text": "and now?"}


def test_reasoning_passback_verbatim_and_foreign_dropped() -> None:
    """Own thinking goes back as its raw block; other protocols' reasoning is dropped."""
    raw = {"type": "thinking", "thinking": "hm", "signature": "SIG", "extra_field": 1}
    parts = [
        ReasoningPart(text="hm", kind="thinking", signature="SIG", protocol=A, raw=raw),
        ReasoningPart(text="t2", kind="thinking", signature="S2", protocol=A),
        ReasoningPart(kind="redacted_thinking", encrypted="DATA", protocol=A),
        ReasoningPart(text="x", kind="reasoning", encrypted="E", protocol="openai-responses"),
        ReasoningPart(text="y", kind="thinking", signature="S3"),  # unknown origin
        BuiltinToolPart("server_tool_use", "s1", "web_search", A,
                        {"type": "server_tool_use", "id": "s1", "name": "web_search",
                         "input": {"q": 1}}),
        BuiltinToolPart("web_search_call", "ws", None, "openai-responses", {"type": "x"}),
        TextPart("answer"),
    ]
    body = anthropic.encode_request(_req([Message.user("q"), Message("assistant", parts)]),
                                    stream=True)
    blocks = body["messages"][1]["content"]
    assert blocks[0] is raw
    assert blocks[1:] == [
        {"type": "thinking", "thinking": "t2", "signature": "S2"},
        {"type": "redacted_thinking", "data": "DATA"},
        {"type": "server_tool_use", "id": "s1", "name": "web_search", "input": {"q": 1}},
        {"type": "text", "text": "answer"},
    ]
    assert body["stream"] is True


@pytest.mark.parametrize(("choice", "wire"), [
    ("auto", {"type": "auto"}), ("required", {"type": "any"}), ("any", {"type": "any"}),
    ("none", {"type": "none"}), ("lookup", {"type": "tool", "name": "lookup"}),
])
def test_tool_choice_mapping(choice: str, wire: dict[str, Any]) -> None:
    """Each canonical tool_choice has its Anthropic object."""
    req = _req([Message.user("q")], tools=[ToolSpec("lookup")],
               params=Params(tool_choice=choice))
    assert anthropic.encode_request(req, stream=False)["tool_choice"] == wire


def test_params_mapping() -> None:
    """Params map to Anthropic's names; seed is not sent; extra wins and tools append."""
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    params = Params(temperature=0.3, top_p=0.9, stop=["END"], seed=7, parallel_tool_calls=False,
                    response_format={"type": "json_schema",
                                     "json_schema": {"name": "r", "schema": schema}},
                    reasoning_effort="high", thinking_budget=2048,
                    extra={"top_k": 5, "temperature": 1.0,
                           "tools": [{"type": "web_search_20250305", "name": "web_search"}]})
    req = _req([Message.user("q")], system="be brief", cache_system=True,
               tools=[ToolSpec("f", "does f", schema), ToolSpec("g")], params=params)
    body = anthropic.encode_request(req, stream=False)
    assert body["max_tokens"] == anthropic.DEFAULT_MAX_TOKENS
    assert body["temperature"] == 1.0 and body["top_p"] == 0.9 and body["top_k"] == 5
    assert body["stop_sequences"] == ["END"]
    assert "seed" not in body
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert body["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
    assert body["output_config"] == {"effort": "high",
                                     "format": {"type": "json_schema", "schema": schema}}
    assert body["system"] == [{"type": "text", "text": "be brief",
                               "cache_control": {"type": "ephemeral"}}]
    assert [t["name"] for t in body["tools"]] == ["f", "g", "web_search"]
    assert body["tools"][0] == {"name": "f", "description": "does f", "input_schema": schema}
    assert body["tools"][-1]["cache_control"] == {"type": "ephemeral"}
    assert "cache_control" not in body["tools"][0]
    plain = anthropic.encode_request(_req([Message.user("q")], params=Params(max_tokens=99)),
                                     stream=True)
    assert plain["max_tokens"] == 99
    assert not {"system", "tools", "tool_choice", "thinking", "output_config"} & plain.keys()


def test_text_cache_and_inline_images() -> None:
    """TextPart.cache sets cache_control; data URLs and inline data become base64 sources."""
    msg = Message("user", [TextPart("ctx", cache=True),
                           ImagePart(url="data:image/jpeg;base64,QUJD"),
                           ImagePart(data="REVG", media_type="image/gif")])
    content = anthropic.encode_request(_req([msg]), stream=False)["messages"][0]["content"]
    assert content[0] == {"type": "text", "text": "ctx", "cache_control": {"type": "ephemeral"}}
    assert content[1]["source"] == {"type": "base64", "media_type": "image/jpeg", "data": "QUJD"}
    assert content[2]["source"] == {"type": "base64", "media_type": "image/gif", "data": "REVG"}


@pytest.mark.parametrize("args", ['{"a": ', "[1, 2]", ""])
def test_unparsed_tool_arguments_go_back_as_an_empty_object(args: str) -> None:
    """A call whose arguments are not a JSON object (cut off by the token limit) is sent
    with input {} so that the history stays valid."""
    msgs = [Message.user("q"), Message("assistant", [ToolCallPart("call_9", "f", args)])]
    body = anthropic.encode_request(_req(msgs), stream=False)
    assert body["messages"][1]["content"] == [
        {"type": "tool_use", "id": "call_9", "name": "f", "input": {}}]


# ---------------------------------------------------------------- server side requests


def test_decode_request_is_tolerant() -> None:
    """String content, a string system and tool results mixed with text are understood."""
    body = {"model": "m", "system": "sys", "max_tokens": 10, "stream": True,
            "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
            "messages": [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": [
                    {"type": "tool_use", "id": "t1", "name": "f", "input": {"a": 1}}]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "t1", "content": "r",
                     "is_error": True},
                    {"type": "text", "text": "more"}]}]}
    req = server.decode_request(body)
    assert req.system == "sys" and req.stream and req.params.max_tokens == 10
    assert req.params.tool_choice == "required" and req.params.parallel_tool_calls is False
    assert [m.role for m in req.messages] == ["user", "assistant", "tool", "user"]
    assert req.messages[2].parts == [ToolResultPart("t1", "r", is_error=True)]
    assert json.loads(req.messages[1].tool_calls[0].arguments) == {"a": 1}
    with pytest.raises(ValueError, match="messages"):
        server.decode_request({"model": "m", "messages": "nope"})


@pytest.mark.parametrize(("status", "etype"), [(400, "invalid_request_error"),
                                               (401, "authentication_error"),
                                               (429, "rate_limit_error"),
                                               (529, "overloaded_error"), (503, "api_error")])
def test_error_body(status: int, etype: str) -> None:
    """error_body has Anthropic's shape and the type that goes with the status."""
    body = server.error_body(status, "boom")
    assert body["type"] == "error" and body["error"] == {"type": etype, "message": "boom"}
    assert server.error_body(400, "x", type="custom_error")["error"]["type"] == "custom_error"


def test_codec_modules_are_pure() -> None:
    """The codec modules import neither trio nor httpx."""
    import runtime.testing.wire.anthropic as srv
    import runtime.wire.anthropic_decode as dec
    import runtime.wire.anthropic_stream as stream

    for mod in (anthropic, dec, stream, srv):
        source = Path(str(mod.__file__)).read_text()
        assert not re.search(r"^\s*(import|from)\s+(trio|httpx)\b", source, re.M), mod


def test_prompt_caching_puts_a_moving_breakpoint_on_the_conversation() -> None:
    """With cache_system: system, tools and the last cacheable block of the conversation are
    breakpoints; without it none; never more than Anthropic's four."""
    from runtime.model import Message, Request, TextPart, ToolSpec
    from runtime.wire.anthropic import encode_request

    msgs = [Message.user("hello"), Message.assistant("hi"), Message.user("again")]
    req = Request("m", msgs, system="sys", tools=[ToolSpec("f")], cache_system=True)
    body = encode_request(req, stream=False)
    marked = [b for m in body["messages"] if isinstance(m["content"], list)
              for b in m["content"] if "cache_control" in b]
    assert body["system"][0]["cache_control"] == {"type": "ephemeral"}
    assert body["tools"][-1]["cache_control"] == {"type": "ephemeral"}
    assert len(marked) == 1 and marked[0]["text"] == "again"
    plain = encode_request(msgspec_replace(req, cache_system=False), stream=False)
    assert "cache_control" not in json_dumps(plain)
    many = [Message("user", [TextPart(f"p{i}", cache=True)]) for i in range(4)]
    crowded = encode_request(msgspec_replace(req, messages=many), stream=False)
    assert json_dumps(crowded).count("cache_control") == 4
    last = crowded["messages"][-1]["content"][-1]
    assert last["text"] == "p3" and "cache_control" in last  # the newest breakpoints stay


def msgspec_replace(req, **kw):  # type: ignore[no-untyped-def]
    import msgspec

    return msgspec.structs.replace(req, **kw)


def json_dumps(body) -> str:  # type: ignore[no-untyped-def]
    import json

    return json.dumps(body)
