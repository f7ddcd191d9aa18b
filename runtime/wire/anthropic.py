"""The Anthropic Messages codec (``/v1/messages``), client side. Pure: no I/O, no trio.

Requests: ``encode_request`` turns a canonical ``Request`` into the Messages JSON body.
Responses: ``decode_body`` (a JSON body, in ``anthropic_decode``) and ``StreamDecoder`` (the
SSE event stream, in ``anthropic_stream``) turn the provider's answer into normalized events.

Canonical -> wire, in short:

* ``system`` becomes a list of text blocks (``cache_control`` on the last one when
  ``req.cache_system``); tools become ``{name, description, input_schema}`` (``cache_control``
  on the last one too), and the last block of the conversation gets a moving breakpoint, so
  a long session pays full price only for what each turn adds.
* A canonical ``tool`` message becomes a ``user`` message of ``tool_result`` blocks, in the
  call order of the assistant message before it; consecutive messages of one wire role are
  merged, since Anthropic wants user and assistant to alternate.
* Reasoning and server-tool parts go back verbatim (their ``raw`` block) only when they came
  from this protocol; parts of another protocol are dropped.
* ``Params.extra`` is merged into the body last, except ``extra["tools"]``: a list of
  provider tool objects (server tools such as web search, which a ``ToolSpec`` cannot
  express) appended after the client tools.
"""

from __future__ import annotations

from typing import Any

from ..model import (
    BuiltinToolPart,
    ImagePart,
    Message,
    Params,
    ReasoningPart,
    Request,
    TextPart,
    ToolCallPart,
    ToolResultPart,
)
from ._base import arguments_object, function_parameters
from .anthropic_decode import CALL_EXTRAS, decode_body, usage_of
from .anthropic_stream import StreamDecoder

__all__ = [
    "ANTHROPIC_VERSION",
    "DEFAULT_MAX_TOKENS",
    "PROTOCOL",
    "StreamDecoder",
    "decode_body",
    "encode_request",
    "headers",
    "url",
    "usage_of",
]

PROTOCOL = "anthropic"
ANTHROPIC_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096
_EPHEMERAL = {"type": "ephemeral"}


def url(base_url: str) -> str:
    """The Messages endpoint: the base URL has no version (``https://api.anthropic.com``)."""
    return base_url.rstrip("/") + "/v1/messages"


def headers(api_key: str | None) -> dict[str, str]:
    out = {"anthropic-version": ANTHROPIC_VERSION, "content-type": "application/json"}
    if api_key:
        out["x-api-key"] = api_key
    return out


def encode_request(req: Request, *, stream: bool, dialect: str | None = None) -> dict[str, Any]:
    """The JSON body of a Messages request. ``dialect`` is accepted for interface symmetry
    (llama.cpp's ``/v1/messages`` takes the same body). A tool call whose arguments are not
    a JSON object is sent with ``{}`` (see ``_base.arguments_object``)."""
    p = req.params
    body: dict[str, Any] = {
        "model": req.model,
        "max_tokens": p.max_tokens if p.max_tokens is not None else DEFAULT_MAX_TOKENS,
        "messages": _messages(req.messages),
    }
    if req.system:
        block: dict[str, Any] = {"type": "text", "text": req.system}
        if req.cache_system:
            block["cache_control"] = dict(_EPHEMERAL)
        body["system"] = [block]
    tools = [_tool(t.name, t.description, function_parameters(t)) for t in req.tools]
    extra = dict(p.extra)
    extra_tools = extra.pop("tools", None)
    if isinstance(extra_tools, list):
        tools.extend(t for t in extra_tools if isinstance(t, dict))
    if tools:
        if req.cache_system:
            tools[-1] = {**tools[-1], "cache_control": dict(_EPHEMERAL)}
        body["tools"] = tools
    if req.cache_system:
        _cache_conversation(body["messages"], used=_breakpoints(body))
    _limit_breakpoints(body)
    _params(body, p, has_tools=bool(tools))
    body["stream"] = stream
    body.update(extra)
    return body


_CACHEABLE = frozenset({"text", "image", "document", "tool_use", "tool_result"})
_MAX_BREAKPOINTS = 4  # Anthropic refuses a request with more


def _breakpoints(body: dict[str, Any]) -> int:
    blocks = list(body.get("system") or []) + list(body.get("tools") or [])
    for m in body["messages"]:
        if isinstance(m.get("content"), list):
            blocks.extend(m["content"])
    return sum(1 for b in blocks if isinstance(b, dict) and "cache_control" in b)


def _limit_breakpoints(body: dict[str, Any]) -> None:
    """At most four breakpoints: the oldest message-level ones go first (the system prompt,
    the tools and the latest conversation breakpoints matter most)."""
    excess = _breakpoints(body) - _MAX_BREAKPOINTS
    for m in body["messages"]:
        if excess <= 0:
            return
        for block in m["content"] if isinstance(m.get("content"), list) else ():
            if excess > 0 and isinstance(block, dict) and "cache_control" in block:
                del block["cache_control"]
                excess -= 1


def _cache_conversation(messages: list[dict[str, Any]], *, used: int) -> None:
    """A moving breakpoint on the last cacheable block of the conversation, so each turn of a
    long session reads the whole earlier conversation from the prompt cache and writes only
    what is new (within Anthropic's limit of four breakpoints)."""
    if not messages or used >= _MAX_BREAKPOINTS:
        return
    last = messages[-1]
    content = last.get("content")
    if isinstance(content, str):
        if not content:
            return
        content = last["content"] = [{"type": "text", "text": content}]
    for block in reversed(content or []):
        if isinstance(block, dict) and block.get("type") in _CACHEABLE:
            if "cache_control" not in block:
                block["cache_control"] = dict(_EPHEMERAL)
            return


def _tool(name: str, description: str, parameters: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "description": description, "input_schema": parameters}


def _params(body: dict[str, Any], p: Params, *, has_tools: bool) -> None:
    if p.temperature is not None:
        body["temperature"] = p.temperature
    if p.top_p is not None:
        body["top_p"] = p.top_p
    if p.stop:
        body["stop_sequences"] = list(p.stop)
    # Anthropic has no ``seed`` and no reasoning summary setting: they are not sent.
    if p.thinking_budget is not None:
        body["thinking"] = {"type": "enabled", "budget_tokens": p.thinking_budget}
    choice = _tool_choice(p.tool_choice)
    if p.parallel_tool_calls is False:
        choice = {**(choice or {"type": "auto"}), "disable_parallel_tool_use": True}
    if choice is not None and has_tools:
        body["tool_choice"] = choice
    output: dict[str, Any] = {}
    if p.reasoning_effort is not None:
        output["effort"] = p.reasoning_effort
    fmt = _output_format(p.response_format)
    if fmt is not None:
        output["format"] = fmt
    if output:
        body["output_config"] = output


def _tool_choice(choice: str | None) -> dict[str, Any] | None:
    if choice is None:
        return None
    if choice == "auto":
        return {"type": "auto"}
    if choice in ("any", "required"):
        return {"type": "any"}
    if choice == "none":
        return {"type": "none"}
    return {"type": "tool", "name": choice}


def _output_format(rf: dict[str, Any] | None) -> dict[str, Any] | None:
    """Structured output: the canonical (OpenAI-shaped) ``response_format`` or a bare
    ``{"type": "json_schema", "schema": ...}`` becomes ``output_config.format``."""
    if not rf or rf.get("type") != "json_schema":
        return None
    inner = rf.get("json_schema")
    schema = inner.get("schema") if isinstance(inner, dict) else rf.get("schema")
    if not isinstance(schema, dict):
        return None
    return {"type": "json_schema", "schema": schema}


# ---------------------------------------------------------------- messages


def _messages(messages: list[Message]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    calls: list[str] = []  # call ids of the last assistant message, in order
    for msg in messages:
        if msg.role == "assistant":
            content = _assistant_blocks(msg)
            calls = [p.id for p in msg.parts if isinstance(p, ToolCallPart)]
            role = "assistant"
        else:
            content = _user_blocks(msg, calls)
            role = "user"
        if not content:
            continue
        if out and out[-1]["role"] == role:
            prev = out[-1]["content"]
            # tool results lead a user turn; anything else keeps its order
            results = [b for b in content if b.get("type") == "tool_result"]
            if results and role == "user":
                lead = [b for b in prev if b.get("type") == "tool_result"]
                rest = [b for b in prev if b.get("type") != "tool_result"]
                others = [b for b in content if b.get("type") != "tool_result"]
                out[-1]["content"] = lead + results + rest + others
            else:
                prev.extend(content)
        else:
            out.append({"role": role, "content": content})
    return out


def _cached(block: dict[str, Any], part: TextPart) -> dict[str, Any]:
    if part.cache:
        block["cache_control"] = dict(_EPHEMERAL)
    return block


def _text(part: TextPart) -> dict[str, Any]:
    return _cached({"type": "text", "text": part.text}, part)


def _image(part: ImagePart) -> dict[str, Any]:
    if part.data is not None:
        source = {"type": "base64", "media_type": part.media_type or "image/png",
                  "data": part.data}
    elif part.url and part.url.startswith("data:") and ";base64," in part.url:
        head, data = part.url[5:].split(";base64,", 1)
        source = {"type": "base64", "media_type": head or "image/png", "data": data}
    else:
        source = {"type": "url", "url": part.url or ""}
    return {"type": "image", "source": source}


def _user_blocks(msg: Message, calls: list[str]) -> list[dict[str, Any]]:
    results = [p for p in msg.parts if isinstance(p, ToolResultPart)]
    if len(results) > 1:
        order = {cid: i for i, cid in enumerate(calls)}
        results.sort(key=lambda r: order.get(r.call_id, len(order)))
    blocks: list[dict[str, Any]] = [_tool_result(r) for r in results]
    for part in msg.parts:
        if isinstance(part, TextPart):
            blocks.append(_text(part))
        elif isinstance(part, ImagePart):
            blocks.append(_image(part))
    return blocks


def _tool_result(r: ToolResultPart) -> dict[str, Any]:
    content: str | list[dict[str, Any]]
    if isinstance(r.content, str):
        content = r.content
    else:
        content = [_text(c) if isinstance(c, TextPart) else _image(c) for c in r.content]
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": r.call_id,
                             "content": content}
    if r.is_error:
        block["is_error"] = True
    return block


def _assistant_blocks(msg: Message) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    for part in msg.parts:
        if isinstance(part, TextPart):
            if part.text:  # Anthropic rejects empty text blocks
                blocks.append(_text(part))
        elif isinstance(part, ToolCallPart):
            blocks.append(_tool_use(part))
        elif isinstance(part, ReasoningPart):
            block = _reasoning(part)
            if block is not None:
                blocks.append(block)
        elif isinstance(part, BuiltinToolPart):
            if part.protocol == PROTOCOL and part.raw is not None:
                blocks.append(part.raw)
    return blocks


def _tool_use(part: ToolCallPart) -> dict[str, Any]:
    """A call as a ``tool_use`` block: a client-run kind of call (``ToolKind``) as a plain
    function call, arguments that are not a JSON object (cut off by the token limit) as
    ``{}``; a programmatic call's ``caller`` goes back with it."""
    block: dict[str, Any] = {"type": "tool_use", "id": part.id, "name": part.name,
                             "input": arguments_object(part)}
    raw = part.raw
    if raw is not None and raw.get("type") == "tool_use":
        for key in CALL_EXTRAS:
            if key in raw:
                block[key] = raw[key]
    return block


def _reasoning(part: ReasoningPart) -> dict[str, Any] | None:
    """A thinking block passed back verbatim, or None for a foreign or unusable part."""
    if part.protocol != PROTOCOL:
        return None
    if part.raw is not None:
        return part.raw
    if part.kind == "thinking":
        block: dict[str, Any] = {"type": "thinking", "thinking": part.text}
        if part.signature is not None:
            block["signature"] = part.signature
        return block
    if part.kind == "redacted_thinking" and part.encrypted is not None:
        return {"type": "redacted_thinking", "data": part.encrypted}
    return None
