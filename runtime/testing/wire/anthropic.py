"""The Anthropic Messages protocol, server side, for the fake provider server. Pure.

``decode_request`` reads what a client sent (tolerantly: real SDKs vary), ``encode_json`` /
``encode_stream`` answer with a canonical ``Response`` the way api.anthropic.com does, and
``error_body`` is the provider's error JSON. ``runtime.wire.anthropic`` is the other side:
decoding what these functions produce gives back the same response.
"""

from __future__ import annotations

import json
from typing import Any

from ...model import (
    BuiltinToolPart,
    ImagePart,
    Message,
    Params,
    Part,
    ReasoningPart,
    Request,
    Response,
    TextPart,
    ToolCallPart,
    ToolResultPart,
    ToolSpec,
    Usage,
)
from ...wire import function_arguments
from ...wire._base import arguments_object
from ...wire.anthropic import PROTOCOL
from ...wire.anthropic_decode import CALL_EXTRAS

__all__ = ["decode_request", "encode_json", "encode_stream", "error_body"]

_KNOWN_KEYS = frozenset({
    "model", "messages", "system", "tools", "max_tokens", "temperature", "top_p",
    "stop_sequences", "thinking", "tool_choice", "output_config", "stream",
})


def _req(cond: bool, message: str) -> None:
    if not cond:
        raise ValueError(f"bad Anthropic request: {message}")


# ---------------------------------------------------------------- requests


def decode_request(body: dict[str, Any]) -> Request:
    """A Messages request body as the canonical ``Request``. Keys the canonical model does
    not name (``cache_control``, ``top_k``, ``metadata``, ...) land in ``params.extra``;
    server tools (no ``input_schema``) in ``params.extra["tools"]``. Raises ``ValueError``
    for a body that is not a Messages request."""
    _req(isinstance(body, dict), "the body is not a JSON object")
    _req(isinstance(body.get("model"), str), "model is missing")
    messages = body.get("messages", [])
    _req(isinstance(messages, list), "messages is not a list")
    extra = {k: v for k, v in body.items() if k not in _KNOWN_KEYS}
    params = Params(extra=extra)
    cache_system = False
    system = body.get("system")
    if isinstance(system, list):
        cache_system = any(isinstance(b, dict) and "cache_control" in b for b in system)
        system = "\n\n".join(b.get("text", "") for b in system if isinstance(b, dict))
    _req(system is None or isinstance(system, str), "system is neither text nor blocks")
    tools: list[ToolSpec] = []
    server_tools: list[dict[str, Any]] = []
    for t in body.get("tools") or []:
        _req(isinstance(t, dict) and isinstance(t.get("name"), str), "a tool has no name")
        cache_system = cache_system or "cache_control" in t
        if "input_schema" in t and t.get("type", "custom") == "custom":
            tools.append(ToolSpec(t["name"], t.get("description") or "", t["input_schema"]))
        else:
            server_tools.append(t)
    if server_tools:
        extra["tools"] = server_tools
    _params(body, params)
    return Request(
        model=body["model"], messages=_messages(messages), system=system, tools=tools,
        params=params, stream=bool(body.get("stream", False)), cache_system=cache_system,
    )


def _params(body: dict[str, Any], p: Params) -> None:
    p.max_tokens = body.get("max_tokens")
    p.temperature = body.get("temperature")
    p.top_p = body.get("top_p")
    if body.get("stop_sequences"):
        p.stop = list(body["stop_sequences"])
    thinking = body.get("thinking")
    if isinstance(thinking, dict) and thinking.get("type") == "enabled":
        p.thinking_budget = thinking.get("budget_tokens")
    elif thinking is not None:
        p.extra["thinking"] = thinking  # adaptive / disabled: not a canonical setting
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        kind = str(choice.get("type", "auto"))
        name = choice.get("name")
        p.tool_choice = (str(name) if kind == "tool" and name else
                         "required" if kind == "any" else kind)
        if choice.get("disable_parallel_tool_use"):
            p.parallel_tool_calls = False
    output = body.get("output_config")
    if isinstance(output, dict):
        p.reasoning_effort = output.get("effort")
        fmt = output.get("format")
        if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
            p.response_format = {"type": "json_schema",
                                 "json_schema": {"name": "response", "schema": fmt.get("schema")}}


def _blocks(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    _req(isinstance(content, list), "message content is neither text nor a list")
    _req(all(isinstance(b, dict) for b in content), "a content block is not an object")
    blocks: list[dict[str, Any]] = content
    return blocks


def _image(b: dict[str, Any]) -> ImagePart:
    src = b.get("source")
    if not isinstance(src, dict):
        src = {}
    if src.get("type") == "base64":
        return ImagePart(data=src.get("data"), media_type=src.get("media_type"))
    return ImagePart(url=src.get("url"))


def _user_part(b: dict[str, Any]) -> Part:
    if b.get("type") == "image":
        return _image(b)
    return TextPart(str(b.get("text", "")), cache="cache_control" in b)


def _messages(messages: list[Any]) -> list[Message]:
    out: list[Message] = []
    for m in messages:
        _req(isinstance(m, dict) and m.get("role") in ("user", "assistant"),
             "a message has no user/assistant role")
        blocks = _blocks(m.get("content", []))
        if m["role"] == "assistant":
            out.append(Message("assistant", [_assistant_part(b) for b in blocks]))
            continue
        results: list[Part] = [_result(b) for b in blocks if b.get("type") == "tool_result"]
        others = [_user_part(b) for b in blocks if b.get("type") != "tool_result"]
        if results:
            out.append(Message("tool", results))
        if others or not results:
            out.append(Message("user", others))
    return out


def _result(b: dict[str, Any]) -> ToolResultPart:
    content = b.get("content", "")
    value: str | list[TextPart | ImagePart]
    if isinstance(content, str):
        value = content
    else:
        value = [_image(c) if c.get("type") == "image" else TextPart(str(c.get("text", "")))
                 for c in _blocks(content)]
    return ToolResultPart(str(b.get("tool_use_id", "")), value, bool(b.get("is_error")))


def _assistant_part(b: dict[str, Any]) -> Part:
    t = b.get("type")
    if t == "text":
        return TextPart(str(b.get("text", "")), cache="cache_control" in b)
    if t == "tool_use":
        return ToolCallPart(str(b.get("id", "")), str(b.get("name", "")),
                            json.dumps(b.get("input") or {}))
    if t == "thinking":
        return ReasoningPart(text=b.get("thinking", ""), kind="thinking",
                             signature=b.get("signature"), protocol=PROTOCOL, raw=b)
    if t == "redacted_thinking":
        return ReasoningPart(kind="redacted_thinking", encrypted=b.get("data"),
                             protocol=PROTOCOL, raw=b)
    return BuiltinToolPart(str(t), b.get("id", b.get("tool_use_id")), b.get("name"),
                           PROTOCOL, b)


# ---------------------------------------------------------------- responses

_STOP_REASON = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use",
                "pause": "pause_turn", "content_filter": "refusal"}


def _stop_reason(resp: Response) -> str:
    if resp.finish_reason is not None:
        return resp.finish_reason
    if resp.tool_calls:
        return "tool_use"
    return _STOP_REASON.get(resp.stop, "end_turn")


def _usage(u: Usage | None) -> dict[str, Any]:
    u = u or Usage()
    read, write = u.cache_read_tokens, u.cache_write_tokens
    return {"input_tokens": max(0, u.input_tokens - read - write),
            "cache_creation_input_tokens": write, "cache_read_input_tokens": read,
            "output_tokens": u.output_tokens}


def _input(call: ToolCallPart) -> dict[str, Any]:
    """A call's input object (a non-stream body can only carry an object)."""
    if call.kind != "function":
        return arguments_object(call)
    try:
        value = json.loads(call.arguments or "{}")
    except ValueError as exc:
        raise ValueError(f"tool call {call.id}: arguments are not JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise ValueError(f"tool call {call.id}: arguments are not a JSON object")
    return value


def _partial_json(call: ToolCallPart) -> str:
    """A call's input as a stream sends it, verbatim: a call cut off by the token limit
    streams its cut-off JSON, as the API does when it stops at max_tokens."""
    text = call.arguments if call.kind == "function" else function_arguments(call)
    return "" if text.strip() in ("", "{}") else text


def _tool_use(call: ToolCallPart, *, stream: bool) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "tool_use", "id": call.id, "name": call.name,
                             "input": {} if stream else _input(call)}
    raw = call.raw
    if raw is not None and raw.get("type") == "tool_use":
        block.update((k, raw[k]) for k in CALL_EXTRAS if k in raw)
    return block


def _block(part: Part) -> dict[str, Any] | None:
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text}
    if isinstance(part, ToolCallPart):
        return _tool_use(part, stream=False)
    if isinstance(part, ReasoningPart):
        if part.kind == "redacted_thinking":
            return {"type": "redacted_thinking", "data": part.encrypted or ""}
        block: dict[str, Any] = {"type": "thinking", "thinking": part.text}
        if part.signature is not None:
            block["signature"] = part.signature
        return block
    if isinstance(part, BuiltinToolPart):
        return dict(part.raw) if part.raw is not None else {
            "type": part.item_type, "id": part.id, "name": part.name, "input": {}}
    return None


def _content(resp: Response) -> list[dict[str, Any]]:
    return [b for b in (_block(p) for p in resp.parts) if b is not None]


def encode_json(resp: Response) -> dict[str, Any]:
    """A non-streamed Messages body for ``resp``."""
    return {
        "id": resp.id or "msg_fake", "type": "message", "role": "assistant",
        "model": resp.model or "claude-fake", "content": _content(resp),
        "stop_reason": _stop_reason(resp), "stop_sequence": None,
        "usage": _usage(resp.usage),
    }


def _sse(data: dict[str, Any]) -> bytes:
    return f"event: {data['type']}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def _pieces(text: str, n: int) -> list[str]:
    return [text[i:i + n] for i in range(0, len(text), n)]


def _block_events(i: int, block: dict[str, Any], n: int,
                  partial_json: str | None = None) -> list[bytes]:
    t = block["type"]
    deltas: list[dict[str, Any]] = []
    start: dict[str, Any] = block  # redacted thinking, server tool results: complete
    if partial_json is not None:  # a client tool call: its input text as sent
        deltas = [{"type": "input_json_delta", "partial_json": s}
                  for s in ["", *_pieces(partial_json, n)]]
    elif t == "text":
        start = {"type": "text", "text": ""}
        deltas = [{"type": "text_delta", "text": s} for s in _pieces(block["text"], n)]
    elif t == "thinking":
        start = {"type": "thinking", "thinking": "", "signature": ""}
        deltas = [{"type": "thinking_delta", "thinking": s}
                  for s in _pieces(block["thinking"], n)]
        if "signature" in block:
            deltas.append({"type": "signature_delta", "signature": block["signature"]})
    elif t in ("tool_use", "server_tool_use") and "input" in block:
        start = {**block, "input": {}}
        args = json.dumps(block["input"], separators=(",", ":")) if block["input"] else ""
        deltas = [{"type": "input_json_delta", "partial_json": s}
                  for s in ["", *_pieces(args, n)]]
    out = [_sse({"type": "content_block_start", "index": i, "content_block": start})]
    out += [_sse({"type": "content_block_delta", "index": i, "delta": d}) for d in deltas]
    out.append(_sse({"type": "content_block_stop", "index": i}))
    return out


def encode_stream(resp: Response, *, chunk_chars: int = 8) -> list[bytes]:
    """The SSE stream for ``resp``: one element per event, text and tool input split into
    pieces of ``chunk_chars`` characters, each content block at its own index."""
    n = max(1, chunk_chars)
    usage = _usage(resp.usage)
    out = [_sse({"type": "message_start", "message": {
        "id": resp.id or "msg_fake", "type": "message", "role": "assistant",
        "model": resp.model or "claude-fake", "content": [], "stop_reason": None,
        "stop_sequence": None, "usage": {**usage, "output_tokens": 1}}})]
    blocks = [(_tool_use(p, stream=True), _partial_json(p)) if isinstance(p, ToolCallPart)
              else (_block(p), None) for p in resp.parts]
    for i, (block, partial_json) in enumerate((b, j) for b, j in blocks if b is not None):
        out += _block_events(i, block, n, partial_json)
        if i == 0:
            out.append(_sse({"type": "ping"}))
    out.append(_sse({"type": "message_delta",
                     "delta": {"stop_reason": _stop_reason(resp), "stop_sequence": None},
                     "usage": usage}))
    out.append(_sse({"type": "message_stop"}))
    return out


_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error",
                403: "permission_error", 404: "not_found_error", 413: "request_too_large",
                429: "rate_limit_error", 500: "api_error", 504: "timeout_error",
                529: "overloaded_error"}


def error_body(status: int, message: str, *, type: str | None = None) -> dict[str, Any]:
    """Anthropic's error JSON for an HTTP error ``status``."""
    etype = type or _ERROR_TYPES.get(status) or (
        "api_error" if status >= 500 else "invalid_request_error")
    return {"type": "error", "error": {"type": etype, "message": message},
            "request_id": "req_fake"}
