"""The server side of OpenAI Chat Completions, for the fake provider server: wire request
bodies back to canonical ``Request`` s, canonical ``Response`` s to realistic JSON bodies and
SSE streams, and error bodies. Pure: no I/O.

Invariant (tested): decoding ``encode_json(r)`` or ``encode_stream(r)`` with
``runtime.wire.openai_chat`` assembles back to ``r``'s text, tool calls, reasoning, usage
and finish reason. Opaque reasoning (signature / encrypted payload) travels as an OpenRouter
``reasoning_details`` entry, the only place chat completions has for it.
"""

from __future__ import annotations

import json
from typing import Any

from ...model import ReasoningPart, Response, TextPart, ToolCallPart, Usage
from ...wire import function_arguments
from .openai_chat_request import decode_request

__all__ = ["decode_request", "encode_json", "encode_stream", "error_body"]

_STOP_TO_FINISH = {"stop": "stop", "length": "length", "tool_calls": "tool_calls",
                   "content_filter": "content_filter", "error": "error"}
_PLAIN = ("reasoning_content", "reasoning")


def _finish(resp: Response) -> str:
    if resp.finish_reason is not None:
        return resp.finish_reason
    if resp.tool_calls:
        return "tool_calls"
    return _STOP_TO_FINISH.get(resp.stop, "stop")


def _arguments(p: ToolCallPart) -> str:
    """A call's arguments as a chat server sends them: verbatim (a call cut off by the
    token limit stays cut off); a Responses-only kind of call as its function form."""
    return p.arguments if p.kind == "function" else function_arguments(p)


def _usage(u: Usage) -> dict[str, Any]:
    prompt_details: dict[str, Any] = {"cached_tokens": u.cache_read_tokens}
    if u.cache_write_tokens:
        prompt_details["cache_write_tokens"] = u.cache_write_tokens
    return {
        "prompt_tokens": u.input_tokens,
        "completion_tokens": u.output_tokens,
        "total_tokens": u.input_tokens + u.output_tokens,
        "prompt_tokens_details": prompt_details,
        "completion_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
    }


def _detail(p: ReasoningPart, index: int) -> dict[str, Any]:
    """The ``reasoning_details`` entry of a reasoning part (its ``raw`` when it has one)."""
    if p.raw is not None:
        d = dict(p.raw)
    else:
        dtype = p.kind.split(":", 1)[1] if p.kind.startswith("reasoning_details:") else (
            "reasoning.encrypted" if p.encrypted is not None and not p.text
            else "reasoning.text")
        d = {"type": dtype}
        if p.id is not None:
            d["id"] = p.id
        if p.text:
            d["text"] = p.text
        if p.signature is not None:
            d["signature"] = p.signature
        if p.encrypted is not None:
            d["data"] = p.encrypted
    d.setdefault("index", index)
    return d


def _is_detail(p: ReasoningPart) -> bool:
    return p.kind.startswith("reasoning_details:") or (
        p.opaque and p.kind not in ("thinking_chunk",))


def encode_json(resp: Response) -> dict[str, Any]:
    """A realistic non-stream ``chat.completion`` body."""
    msg: dict[str, Any] = {"role": "assistant", "content": None, "refusal": resp.refusal}
    thinking: list[dict[str, Any]] = []
    details: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    for p in resp.parts:
        if isinstance(p, ReasoningPart):
            if _is_detail(p):
                details.append(_detail(p, len(details)))
            elif p.kind == "thinking_chunk":
                thinking.append({"type": "thinking", "thinking": [{"type": "text",
                                                                    "text": p.text}]})
            else:
                key = p.kind if p.kind in _PLAIN else "reasoning"
                msg[key] = msg.get(key, "") + p.text
        elif isinstance(p, ToolCallPart):
            calls.append({"id": p.id, "type": "function",
                          "function": {"name": p.name, "arguments": _arguments(p)}})
    text = resp.text
    if thinking:
        msg["content"] = [*thinking, *([{"type": "text", "text": text}] if text else [])]
    elif text or not calls:
        msg["content"] = text
    if details:
        msg["reasoning_details"] = details
    if calls:
        msg["tool_calls"] = calls
    body: dict[str, Any] = {
        "id": resp.id or "chatcmpl-fake",
        "object": "chat.completion",
        "created": 0,
        "model": resp.model or "fake-model",
        "choices": [{"index": 0, "message": msg, "logprobs": None,
                     "finish_reason": _finish(resp)}],
    }
    if resp.usage is not None:
        body["usage"] = _usage(resp.usage)
    return body


def _pieces(text: str, n: int) -> list[str]:
    return [text[i:i + n] for i in range(0, len(text), n)] or [""]


def _sse(obj: Any) -> bytes:
    data = obj if isinstance(obj, str) else json.dumps(obj, separators=(",", ":"))
    return f"data: {data}\n\n".encode()


def encode_stream(resp: Response, *, chunk_chars: int = 8) -> list[bytes]:
    """The streamed form: one element per SSE event, ending with ``data: [DONE]``."""
    n = max(1, chunk_chars)
    rid = resp.id or "chatcmpl-fake"
    model = resp.model or "fake-model"

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        return _sse({"id": rid, "object": "chat.completion.chunk", "created": 0,
                     "model": model, "choices": [{"index": 0, "delta": delta,
                                                  "finish_reason": finish}],
                     "usage": None})

    out = [chunk({"role": "assistant", "content": ""})]
    n_details = 0
    n_calls = 0
    for p in resp.parts:
        if isinstance(p, TextPart):
            out.extend(chunk({"content": piece}) for piece in _pieces(p.text, n))
        elif isinstance(p, ToolCallPart):
            i = n_calls
            n_calls += 1
            out.append(chunk({"tool_calls": [{"index": i, "id": p.id, "type": "function",
                                              "function": {"name": p.name,
                                                           "arguments": ""}}]}))
            out.extend(chunk({"tool_calls": [{"index": i, "function": {"arguments": piece}}]})
                       for piece in _pieces(_arguments(p), n))
        elif isinstance(p, ReasoningPart):
            if _is_detail(p):
                out.extend(chunk({"reasoning_details": [frag]})
                           for frag in _detail_fragments(_detail(p, n_details), n))
                n_details += 1
            elif p.kind == "thinking_chunk":
                out.extend(chunk({"content": [{"type": "thinking", "thinking": [
                    {"type": "text", "text": piece}]}]}) for piece in _pieces(p.text, n))
            else:
                key = p.kind if p.kind in _PLAIN else "reasoning"
                out.extend(chunk({key: piece}) for piece in _pieces(p.text, n))
    if resp.refusal:
        out.extend(chunk({"refusal": piece}) for piece in _pieces(resp.refusal, n))
    out.append(chunk({}, _finish(resp)))
    if resp.usage is not None:
        out.append(_sse({"id": rid, "object": "chat.completion.chunk", "created": 0,
                         "model": model, "choices": [], "usage": _usage(resp.usage)}))
    out.append(_sse("[DONE]"))
    return out


def _detail_fragments(d: dict[str, Any], n: int) -> list[dict[str, Any]]:
    """A detail split as OpenRouter streams it: the text in pieces, the opaque payload last.
    Merging the fragments (strings appended, other keys set) gives ``d`` back."""
    head = {k: v for k, v in d.items() if k not in ("text", "signature", "data")}
    key = {"type": d.get("type"), "index": d["index"]}
    frags = [dict(head)]
    text = d.get("text")
    if isinstance(text, str):
        pieces = _pieces(text, n)
        frags[0]["text"] = pieces[0]
        frags.extend(key | {"text": piece} for piece in pieces[1:])
    tail = {k: d[k] for k in ("signature", "data") if k in d}
    if tail:
        frags.append(key | tail)
    return frags


_ERROR_TYPES = {400: ("invalid_request_error", None),
                401: ("invalid_request_error", "invalid_api_key"),
                403: ("permission_error", None),
                404: ("invalid_request_error", "model_not_found"),
                413: ("invalid_request_error", "context_length_exceeded"),
                429: ("requests", "rate_limit_exceeded"),
                500: ("server_error", None), 503: ("server_error", None)}


def error_body(status: int, message: str, *, type: str | None = None) -> dict[str, Any]:
    """The OpenAI error JSON for an HTTP error of ``status``."""
    default_type, code = _ERROR_TYPES.get(
        status, ("server_error" if status >= 500 else "invalid_request_error", None))
    return {"error": {"message": message, "type": type or default_type, "param": None,
                      "code": code}}
