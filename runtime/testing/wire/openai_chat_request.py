"""A Chat Completions request body back to the canonical ``Request`` (the fake server records
and checks requests this way). Tolerant of what real clients send: ``developer`` and several
``system`` messages, content as a string or a list of typed chunks, tools without ``type``,
``max_completion_tokens`` or ``max_tokens``. Keys the canonical model does not name go to
``params.extra`` (non-function tools to ``extra["tools"]``), so that encoding the result
sends them again. Shape errors raise ``ValueError`` (the fake server answers 400). Pure.
"""

from __future__ import annotations

import json
from typing import Any

from ...model import (
    ImagePart,
    Message,
    Params,
    Part,
    ReasoningPart,
    Request,
    TextPart,
    ToolCallPart,
    ToolResultPart,
    ToolSpec,
)
from ...wire.openai_chat_request import PROTOCOL

__all__ = ["decode_request"]

_KNOWN = frozenset({"model", "messages", "tools", "stream", "stream_options", "temperature",
                    "top_p", "max_tokens", "max_completion_tokens", "stop", "seed",
                    "tool_choice", "parallel_tool_calls", "response_format",
                    "reasoning_effort", "reasoning", "store"})


def _image(url: str) -> ImagePart:
    if url.startswith("data:") and ";base64," in url:
        head, data = url[5:].split(";base64,", 1)
        return ImagePart(data=data, media_type=head or None)
    return ImagePart(url=url)


def _content_parts(content: Any, where: str) -> list[Part]:
    if content is None:
        return []
    if isinstance(content, str):
        return [TextPart(content)] if content else []
    if not isinstance(content, list):
        raise ValueError(f"{where}.content must be a string, a list or null")
    parts: list[Part] = []
    for i, c in enumerate(content):
        if not isinstance(c, dict):
            raise ValueError(f"{where}.content[{i}] must be an object")
        ctype = c.get("type")
        if ctype == "text":
            parts.append(TextPart(str(c.get("text", "")), cache="cache_control" in c))
        elif ctype == "image_url":
            iu = c.get("image_url")
            url = iu.get("url") if isinstance(iu, dict) else iu
            if not isinstance(url, str):
                raise ValueError(f"{where}.content[{i}].image_url has no url")
            parts.append(_image(url))
        elif ctype == "thinking":
            th = c.get("thinking")
            text = th if isinstance(th, str) else "".join(
                t.get("text", "") for t in th or [] if isinstance(t, dict))
            parts.append(ReasoningPart(text=text, kind="thinking_chunk", protocol=PROTOCOL))
    return parts


def _assistant(m: dict[str, Any], where: str) -> Message:
    parts: list[Part] = []
    if isinstance(m.get("reasoning_content"), str):
        parts.append(ReasoningPart(text=m["reasoning_content"], kind="reasoning_content",
                                   protocol=PROTOCOL))
    if isinstance(m.get("reasoning"), str):
        parts.append(ReasoningPart(text=m["reasoning"], kind="reasoning", protocol=PROTOCOL))
    for d in m.get("reasoning_details") or []:
        if not isinstance(d, dict):
            raise ValueError(f"{where}.reasoning_details entries must be objects")
        parts.append(ReasoningPart(
            text=d.get("text") or d.get("summary") or "", kind=f"reasoning_details:{d.get('type')}",
            id=d.get("id"), signature=d.get("signature"), encrypted=d.get("data"),
            protocol=PROTOCOL, raw=d))
    parts.extend(_content_parts(m.get("content"), where))
    for j, tc in enumerate(m.get("tool_calls") or []):
        fn = tc.get("function") if isinstance(tc, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise ValueError(f"{where}.tool_calls[{j}] has no function name")
        args = fn.get("arguments", "{}")
        if not isinstance(args, str):
            args = json.dumps(args)
        parts.append(ToolCallPart(str(tc.get("id") or f"call_{j}"), fn["name"], args or "{}"))
    return Message("assistant", parts)


def _tool_result(m: dict[str, Any], where: str) -> ToolResultPart:
    call_id = m.get("tool_call_id")
    if not isinstance(call_id, str):
        raise ValueError(f"{where}.tool_call_id must be a string")
    content = m.get("content")
    if isinstance(content, list):
        value: str | list[TextPart | ImagePart] = [
            p for p in _content_parts(content, where) if isinstance(p, (TextPart, ImagePart))]
    else:
        value = "" if content is None else str(content)
    name = m.get("name")
    return ToolResultPart(call_id, value, name=name if isinstance(name, str) else None)


def _tools(raw: Any, extra: dict[str, Any]) -> list[ToolSpec]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ValueError("tools must be a list")
    specs: list[ToolSpec] = []
    native: list[Any] = []
    for t in raw:
        fn = t.get("function") if isinstance(t, dict) else None
        if isinstance(fn, dict) and t.get("type", "function") == "function":
            kw: dict[str, Any] = {"description": fn.get("description") or ""}
            if isinstance(fn.get("parameters"), dict):
                kw["parameters"] = fn["parameters"]
            if isinstance(fn.get("strict"), bool):
                kw["strict"] = fn["strict"]
            specs.append(ToolSpec(str(fn.get("name")), **kw))
        else:
            native.append(t)
    if native:
        extra["tools"] = native
    return specs


def _params(body: dict[str, Any], extra: dict[str, Any]) -> Params:
    p = Params(extra=extra)
    p.temperature = body.get("temperature")
    p.top_p = body.get("top_p")
    mt = body.get("max_completion_tokens", body.get("max_tokens"))
    p.max_tokens = mt
    stop = body.get("stop")
    p.stop = [stop] if isinstance(stop, str) else stop
    p.seed = body.get("seed")
    tc = body.get("tool_choice")
    if isinstance(tc, dict):
        tc = (tc.get("function") or {}).get("name")
    p.tool_choice = tc
    p.parallel_tool_calls = body.get("parallel_tool_calls")
    p.response_format = body.get("response_format")
    p.reasoning_effort = body.get("reasoning_effort")
    reasoning = body.get("reasoning")
    if isinstance(reasoning, dict):
        p.reasoning_effort = reasoning.get("effort", p.reasoning_effort)
        p.thinking_budget = reasoning.get("max_tokens")
        if set(reasoning) - {"effort", "max_tokens"}:
            extra["reasoning"] = reasoning
    return p


def decode_request(body: dict[str, Any]) -> Request:
    """The canonical ``Request`` that a Chat Completions body expresses."""
    if not isinstance(body, dict):
        raise ValueError("request body must be a JSON object")
    model, raw_messages = body.get("model"), body.get("messages")
    if not isinstance(model, str) or not isinstance(raw_messages, list):
        raise ValueError("request body needs a string model and a messages list")
    extra = {k: v for k, v in body.items() if k not in _KNOWN}
    system: list[str] = []
    cache_system = False
    messages: list[Message] = []
    for i, m in enumerate(raw_messages):
        where = f"messages[{i}]"
        role = m.get("role") if isinstance(m, dict) else None
        if role in ("system", "developer"):
            parts = _content_parts(m.get("content"), where)
            system.append("".join(p.text for p in parts if isinstance(p, TextPart)))
            cache_system = cache_system or any(isinstance(p, TextPart) and p.cache
                                               for p in parts)
        elif role == "user":
            messages.append(Message("user", _content_parts(m.get("content"), where)))
        elif role == "assistant":
            messages.append(_assistant(m, where))
        elif role == "tool":
            result = _tool_result(m, where)
            if messages and messages[-1].role == "tool":
                messages[-1].parts.append(result)
            else:
                messages.append(Message("tool", [result]))
        else:
            raise ValueError(f"{where}.role {role!r} is not system, user, assistant or tool")
    tools = _tools(body.get("tools"), extra)
    store = body.get("store")
    return Request(
        model=model, messages=messages, system="\n\n".join(system) if system else None,
        tools=tools, params=_params(body, extra), stream=bool(body.get("stream", False)),
        store=store if isinstance(store, bool) else None, cache_system=cache_system,
    )
