"""Canonical ``Request`` -> OpenAI Chat Completions JSON body, per dialect.

Dialects: ``None`` / ``"openai"`` (OpenAI and OpenAI-compatible clouds), ``"openrouter"``
(``reasoning: {effort}``, ``cache_control`` on marked text, ``reasoning`` passed back) and
``"local"`` (llama.cpp, LM Studio, Ollama: ``max_tokens`` and no OpenAI-only fields such as
``store``). Reasoning parts go back verbatim only to the protocol that produced them; parts
of another protocol are dropped (the conductor decides about failover summaries).

Every call goes back as a function call whose arguments are a JSON object (a client-run
kind of call from OpenAI Responses as its JSON, a ``custom`` one as ``{"input": ...}``, a
call cut off by the token limit as ``{}``: ``_base.function_arguments``); every tool is
offered as a function (``_base.function_parameters``). Pure.
"""

from __future__ import annotations

from typing import Any

from ..model import (
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
from ._base import function_arguments, function_parameters

__all__ = ["DIALECTS", "PROTOCOL", "encode_request", "image_url"]

PROTOCOL = "openai-chat"
DIALECTS = ("openai", "openrouter", "local")
_CHOICES = ("auto", "none", "required")
_EPHEMERAL = {"type": "ephemeral"}


def image_url(p: ImagePart) -> str:
    """The URL of an image part (a ``data:`` URL for inline base64 data)."""
    if p.data is not None:
        return f"data:{p.media_type or 'image/png'};base64,{p.data}"
    return p.url or ""


def _text_chunk(p: TextPart, dialect: str) -> dict[str, Any]:
    chunk: dict[str, Any] = {"type": "text", "text": p.text}
    if p.cache and dialect == "openrouter":
        chunk["cache_control"] = dict(_EPHEMERAL)
    return chunk


def _user_content(parts: list[Any], dialect: str) -> str | list[dict[str, Any]]:
    if len(parts) == 1 and isinstance(parts[0], TextPart) and not (
            parts[0].cache and dialect == "openrouter"):
        return parts[0].text
    out: list[dict[str, Any]] = []
    for p in parts:
        if isinstance(p, TextPart):
            out.append(_text_chunk(p, dialect))
        elif isinstance(p, ImagePart):
            out.append({"type": "image_url", "image_url": {"url": image_url(p)}})
    return out


def _rebuild_detail(p: ReasoningPart) -> dict[str, Any]:
    d: dict[str, Any] = {"type": p.kind.split(":", 1)[1]}
    if p.id is not None:
        d["id"] = p.id
    if p.text:
        d["text"] = p.text
    if p.signature is not None:
        d["signature"] = p.signature
    if p.encrypted is not None:
        d["data"] = p.encrypted
    return d


def _assistant(m: Message, dialect: str) -> dict[str, Any]:
    msg: dict[str, Any] = {"role": "assistant"}
    texts: list[str] = []
    thinking: list[str] = []
    calls: list[dict[str, Any]] = []
    for p in m.parts:
        if isinstance(p, TextPart):
            texts.append(p.text)
        elif isinstance(p, ToolCallPart):
            calls.append({"id": p.id, "type": "function",
                          "function": {"name": p.name, "arguments": function_arguments(p)}})
        elif isinstance(p, ReasoningPart) and p.protocol == PROTOCOL:
            if p.kind.startswith("reasoning_details:"):
                msg.setdefault("reasoning_details", []).append(
                    p.raw if p.raw is not None else _rebuild_detail(p))
            elif p.kind == "reasoning_content":
                msg["reasoning_content"] = msg.get("reasoning_content", "") + p.text
            elif p.kind == "reasoning" and dialect == "openrouter":
                msg["reasoning"] = msg.get("reasoning", "") + p.text
            elif p.kind == "thinking_chunk":
                thinking.append(p.text)
        # BuiltinToolPart: chat completions has no provider-executed items to send back
    if thinking:
        content: list[dict[str, Any]] = [
            {"type": "thinking", "thinking": [{"type": "text", "text": t}]} for t in thinking]
        content.extend({"type": "text", "text": t} for t in texts)
        msg["content"] = content
    else:
        msg["content"] = "".join(texts) if texts or not calls else None
    if calls:
        msg["tool_calls"] = calls
    return msg


def _tool_messages(m: Message, call_order: list[str], dialect: str) -> list[dict[str, Any]]:
    """One ``role: tool`` message per result, in the order of the calls they answer; images
    (which tool messages cannot carry) follow in one user message."""
    results = [p for p in m.parts if isinstance(p, ToolResultPart)]
    rank = {cid: i for i, cid in enumerate(call_order)}
    results.sort(key=lambda r: rank.get(r.call_id, len(rank)))
    out: list[dict[str, Any]] = []
    images: list[dict[str, Any]] = []
    for r in results:
        if isinstance(r.content, str):
            content = r.content
        else:
            content = "".join(c.text for c in r.content if isinstance(c, TextPart))
            images.extend({"type": "image_url", "image_url": {"url": image_url(c)}}
                          for c in r.content if isinstance(c, ImagePart))
        out.append({"role": "tool", "tool_call_id": r.call_id, "content": content})
    loose = [p for p in m.parts if isinstance(p, (TextPart, ImagePart))]
    if loose:
        extra = _user_content(loose, dialect)
        images.extend([{"type": "text", "text": extra}] if isinstance(extra, str) else extra)
    if images:
        out.append({"role": "user", "content": images})
    return out


def _messages(req: Request, dialect: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if req.system is not None:
        if req.cache_system and dialect == "openrouter":
            out.append({"role": "system", "content": [
                {"type": "text", "text": req.system, "cache_control": dict(_EPHEMERAL)}]})
        else:
            out.append({"role": "system", "content": req.system})
    call_order: list[str] = []
    for m in req.messages:
        if m.role == "assistant":
            out.append(_assistant(m, dialect))
            call_order = [c.id for c in m.tool_calls]
        elif m.role == "tool":
            out.extend(_tool_messages(m, call_order, dialect))
        else:
            out.append({"role": "user", "content": _user_content(m.parts, dialect)})
    return out


def _tool(t: ToolSpec) -> dict[str, Any]:
    fn: dict[str, Any] = {"name": t.name}
    if t.description:
        fn["description"] = t.description
    fn["parameters"] = function_parameters(t)
    if t.strict is not None:
        fn["strict"] = t.strict
    return {"type": "function", "function": fn}


def _params(body: dict[str, Any], p: Params, dialect: str, has_tools: bool) -> None:
    if p.temperature is not None:
        body["temperature"] = p.temperature
    if p.top_p is not None:
        body["top_p"] = p.top_p
    if p.max_tokens is not None:
        body["max_completion_tokens" if dialect == "openai" else "max_tokens"] = p.max_tokens
    if p.stop:
        body["stop"] = list(p.stop)
    if p.seed is not None:
        body["seed"] = p.seed
    if p.tool_choice is not None:
        body["tool_choice"] = p.tool_choice if p.tool_choice in _CHOICES else {
            "type": "function", "function": {"name": p.tool_choice}}
    if p.parallel_tool_calls is not None and has_tools:
        body["parallel_tool_calls"] = p.parallel_tool_calls
    if p.response_format is not None:
        body["response_format"] = p.response_format
    if dialect == "openrouter":
        reasoning: dict[str, Any] = {}
        if p.reasoning_effort is not None:
            reasoning["effort"] = p.reasoning_effort
        if p.thinking_budget is not None:
            reasoning["max_tokens"] = p.thinking_budget
        if reasoning:
            body["reasoning"] = reasoning
    elif p.reasoning_effort is not None:
        body["reasoning_effort"] = p.reasoning_effort


def encode_request(req: Request, *, stream: bool, dialect: str | None = None) -> dict[str, Any]:
    """The JSON body for ``req``. ``params.extra`` is merged last; its ``tools`` list is
    appended to the function tools (provider-native tools such as ``openrouter:web_search``)."""
    d = dialect or "openai"
    if d not in DIALECTS:
        raise ValueError(f"unknown openai-chat dialect {dialect!r}; known: {', '.join(DIALECTS)}")
    body: dict[str, Any] = {"model": req.model, "messages": _messages(req, d)}
    if req.tools:
        body["tools"] = [_tool(t) for t in req.tools]
    _params(body, req.params, d, bool(req.tools))
    body["stream"] = stream
    if stream:
        body["stream_options"] = {"include_usage": True}
    if req.store is not None and d == "openai":
        body["store"] = req.store
    for key, value in req.params.extra.items():
        if key == "tools" and isinstance(value, list):
            body["tools"] = [*body.get("tools", []), *value]
        else:
            body[key] = value
    return body
