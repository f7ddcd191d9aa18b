"""What makes a conversation valid on the wire, per protocol: every tool call answered by
its result where the protocol wants it, and the reverse; arguments that are JSON."""

from __future__ import annotations

import json
from typing import Any

from runtime.model import Message, Request, ToolSpec
from runtime.wire import codec_for

PROTOCOLS = ("openai-chat", "openai-responses", "anthropic")


def wire(protocol: str, messages: list[Message], *, system: str | None = None,
         tools: list[ToolSpec] | None = None) -> dict[str, Any]:
    """The request body ``protocol`` would send for ``messages``."""
    req = Request(model="m", messages=messages, system=system, tools=tools or [])
    body: dict[str, Any] = codec_for(protocol).encode_request(req, stream=False)
    return body


def check_pairing(protocol: str, body: dict[str, Any]) -> None:
    """Every call has its result right where the protocol wants it, and the reverse."""
    if protocol == "anthropic":
        msgs = body["messages"]
        assert msgs[0]["role"] == "user"
        for i, m in enumerate(msgs):
            blocks = m["content"] if isinstance(m["content"], list) else []
            if m["role"] == "assistant":
                calls = {b["id"] for b in blocks if b["type"] == "tool_use"}
                nxt = msgs[i + 1]["content"] if i + 1 < len(msgs) else []
                answered = {b["tool_use_id"] for b in nxt if b.get("type") == "tool_result"}
                assert calls == answered, (calls, answered)
            else:
                results = {b["tool_use_id"] for b in blocks if b["type"] == "tool_result"}
                prev = msgs[i - 1]["content"] if i else []
                asked = {b["id"] for b in prev if b.get("type") == "tool_use"}
                assert results <= asked
    elif protocol == "openai-chat":
        open_calls: set[str] = set()
        for m in body["messages"]:
            if m["role"] == "tool":
                assert m["tool_call_id"] in open_calls
                open_calls.discard(m["tool_call_id"])
                continue
            assert not open_calls, f"calls without results: {open_calls}"
            if m["role"] == "assistant":
                open_calls = {c["id"] for c in m.get("tool_calls") or ()}
                for c in m.get("tool_calls") or ():
                    assert isinstance(json.loads(c["function"]["arguments"]), dict)
        assert not open_calls
    else:
        seen: set[str] = set()
        outputs: set[str] = set()
        for item in body["input"]:
            if item["type"] == "function_call":
                assert item["call_id"] not in seen
                seen.add(item["call_id"])
                assert isinstance(json.loads(item["arguments"]), dict)
            elif item["type"] == "function_call_output":
                assert item["call_id"] in seen and item["call_id"] not in outputs
                outputs.add(item["call_id"])
        assert seen == outputs, (seen, outputs)


def check_roles(messages: list[Message]) -> None:
    """The canonical shape: a tool message answers exactly the calls of the assistant
    message before it, in call order."""
    for i, m in enumerate(messages):
        if m.role != "tool":
            continue
        assert i > 0 and messages[i - 1].role == "assistant", [x.role for x in messages]
        calls = [c.id for c in messages[i - 1].tool_calls]
        results = [p.call_id for p in m.parts]
        assert results == calls, (calls, results)
