"""The OpenAI Responses protocol as the fake provider server speaks it.

``encode_json`` / ``encode_stream`` write a canonical ``Response`` the way the real API does
(``response.created`` ... ``response.completed``, no ``[DONE]``); ``error_body`` is the
API's error JSON; ``decode_request`` (in ``openai_responses_request``) reads what a client
sent back into a canonical ``Request``. Pure: no I/O.

Client-run kinds of calls (``ToolCallPart.kind``) are sent as their items, streamed the way
the API streams them (a custom call's input as ``response.custom_tool_call_input.delta``,
a shell call's commands as ``response.shell_call_command.*``). Shapes: openai-python
``types/responses/`` (``response_custom_tool_call.py``,
``response_function_shell_tool_call.py``, ``response_apply_patch_tool_call.py``,
``response_output_item.py``, ``response_shell_call_command_*_event.py``).
"""

from __future__ import annotations

import itertools
from typing import Any

import msgspec

from ...model import (
    BuiltinToolPart,
    ReasoningPart,
    Response,
    TextPart,
    ToolCallPart,
    Usage,
)
from .openai_responses_request import decode_request

__all__ = ["decode_request", "encode_json", "encode_stream", "error_body"]

_CREATED_AT = 1_700_000_000
_CALL_TYPES = frozenset({"custom_tool_call", "shell_call", "local_shell_call",
                         "apply_patch_call"})


# -- response --------------------------------------------------------------------------


def _usage(u: Usage | None) -> dict[str, Any] | None:
    if u is None:
        return None
    return {
        "input_tokens": u.input_tokens,
        "input_tokens_details": {"cached_tokens": u.cache_read_tokens,
                                 "cache_write_tokens": u.cache_write_tokens},
        "output_tokens": u.output_tokens,
        "output_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
        "total_tokens": u.total_tokens,
    }


def _status(resp: Response) -> tuple[str, dict[str, Any] | None]:
    reason = resp.finish_reason or "completed"
    status, _, detail = reason.partition(":")
    return status, ({"reason": detail} if detail else None)


def _items(resp: Response) -> list[dict[str, Any]]:
    """Output items: consecutive text parts share one message item; a refusal is a content
    part of the last message."""
    ids = itertools.count(1)
    items: list[dict[str, Any]] = []
    msg: dict[str, Any] | None = None
    for p in resp.parts:
        if isinstance(p, TextPart):
            phase = (p.meta or {}).get("phase")
            if msg is None or msg.get("phase") != phase:
                msg = {"id": f"msg_{next(ids):04d}", "type": "message", "status": "completed",
                       "role": "assistant", "content": []}
                if phase is not None:
                    msg["phase"] = phase
                items.append(msg)
            msg["content"].append({"type": "output_text", "annotations": [], "logprobs": [],
                                   "text": p.text})
            continue
        msg = None
        if isinstance(p, ToolCallPart):
            items.append(_call_item(p, next(ids)))
        elif isinstance(p, ReasoningPart):
            if p.raw is not None and p.raw.get("type") == "reasoning":
                items.append(p.raw)
                continue
            item: dict[str, Any] = {"id": p.id or f"rs_{next(ids):04d}", "type": "reasoning",
                                    "summary": [{"type": "summary_text", "text": s}
                                                for s in p.summary]}
            if not p.summary and p.text:
                item["content"] = [{"type": "reasoning_text", "text": p.text}]
            if p.encrypted is not None:
                item["encrypted_content"] = p.encrypted
            items.append(item)
        elif isinstance(p, BuiltinToolPart):
            items.append(p.raw if p.raw is not None else
                         {"id": p.id, "type": p.item_type, "status": "completed"})
    if resp.refusal:
        if msg is None:
            msg = {"id": f"msg_{next(ids):04d}", "type": "message", "status": "completed",
                   "role": "assistant", "content": []}
            items.append(msg)
        msg["content"].append({"type": "refusal", "refusal": resp.refusal})
    return items


_ID_PREFIX = {"function": "fc", "custom": "ctc", "shell": "sh", "local_shell": "lsh",
              "apply_patch": "apc"}


def _payload(p: ToolCallPart) -> dict[str, Any]:
    try:
        value = msgspec.json.decode(p.arguments)
    except msgspec.DecodeError:
        value = None
    return value if isinstance(value, dict) else {}


def _call_item(p: ToolCallPart, n: int) -> dict[str, Any]:
    """A call as its output item (its ``raw`` item when it has one, with the call's
    current id and arguments)."""
    item_id = p.item_id or f"{_ID_PREFIX[p.kind]}_{n:04d}"
    if p.kind == "function":
        return {"id": item_id, "type": "function_call", "status": "completed",
                "arguments": p.arguments, "call_id": p.id, "name": p.name}
    raw = p.raw if p.raw is not None and p.raw.get("type") in _CALL_TYPES else {}
    item: dict[str, Any] = {**raw, "id": item_id, "call_id": p.id, "status": "completed"}
    if p.kind == "custom":
        item.update(type="custom_tool_call", name=p.name, input=p.arguments)
    elif p.kind == "apply_patch":
        item.update(type="apply_patch_call", operation=_payload(p))
    else:
        item.update(type=f"{p.kind}_call", action=_payload(p))
    return item


def _response_object(resp: Response, output: list[dict[str, Any]], status: str,
                     incomplete: dict[str, Any] | None, usage: Any) -> dict[str, Any]:
    return {
        "id": resp.id or "resp_fake0001", "object": "response", "created_at": _CREATED_AT,
        "status": status, "error": None, "incomplete_details": incomplete,
        "instructions": None, "max_output_tokens": None, "model": resp.model or "fake-model",
        "output": output, "parallel_tool_calls": True, "previous_response_id": None,
        "reasoning": {"effort": None, "summary": None}, "store": True, "temperature": 1.0,
        "text": {"format": {"type": "text"}}, "tool_choice": "auto", "tools": [],
        "top_p": 1.0, "truncation": "disabled", "usage": usage, "user": None,
        "metadata": {},
    }


def encode_json(resp: Response) -> dict[str, Any]:
    """A non-streamed response body for ``resp``."""
    status, incomplete = _status(resp)
    return _response_object(resp, _items(resp), status, incomplete, _usage(resp.usage))


def _pieces(text: str, n: int) -> list[str]:
    n = max(1, n)
    return [text[i:i + n] for i in range(0, len(text), n)] or []


def _in_progress(item: dict[str, Any]) -> dict[str, Any]:
    t = item["type"]
    if t == "message":
        return {**item, "status": "in_progress", "content": []}
    if t == "function_call":
        return {**item, "status": "in_progress", "arguments": ""}
    if t == "custom_tool_call":
        return {**item, "status": "in_progress", "input": ""}
    if t == "shell_call":
        return {**item, "status": "in_progress", "action": {**item["action"], "commands": []}}
    if t == "reasoning":
        return {"id": item.get("id"), "type": "reasoning", "summary": []}
    return {**item, "status": "in_progress"} if "status" in item else dict(item)


# call items whose one text field is streamed: the field and its events' type prefix
_STREAMED_FIELD = {
    "function_call": ("arguments", "response.function_call_arguments"),
    "custom_tool_call": ("input", "response.custom_tool_call_input"),
}


def _item_events(oi: int, item: dict[str, Any], n: int) -> list[dict[str, Any]]:
    evs: list[dict[str, Any]] = [{"type": "response.output_item.added", "output_index": oi,
                                  "item": _in_progress(item)}]
    t, iid = item["type"], item.get("id")
    if t == "message":
        for ci, part in enumerate(item["content"]):
            base = {"item_id": iid, "output_index": oi, "content_index": ci}
            kind, field = ("refusal", "refusal") if part["type"] == "refusal" else (
                "output_text", "text")
            evs.append({"type": "response.content_part.added", **base,
                        "part": {**part, field: ""}})
            for piece in _pieces(part[field], n):
                evs.append({"type": f"response.{kind}.delta", **base, "delta": piece})
            evs.append({"type": f"response.{kind}.done", **base, field: part[field]})
            evs.append({"type": "response.content_part.done", **base, "part": part})
    elif t in _STREAMED_FIELD:
        field, prefix = _STREAMED_FIELD[t]
        base = {"item_id": iid, "output_index": oi}
        for piece in _pieces(item[field], n):
            evs.append({"type": f"{prefix}.delta", **base, "delta": piece})
        evs.append({"type": f"{prefix}.done", **base, field: item[field]})
    elif t == "shell_call":
        for ci, command in enumerate(item["action"].get("commands") or ()):
            base = {"output_index": oi, "command_index": ci}
            evs.append({"type": "response.shell_call_command.added", **base, "command": ""})
            for piece in _pieces(str(command), n):
                evs.append({"type": "response.shell_call_command.delta", **base,
                            "delta": piece})
            evs.append({"type": "response.shell_call_command.done", **base,
                        "command": command})
    elif t == "reasoning":
        for si, s in enumerate(item.get("summary") or ()):
            base = {"item_id": iid, "output_index": oi, "summary_index": si}
            evs.append({"type": "response.reasoning_summary_part.added", **base,
                        "part": {"type": "summary_text", "text": ""}})
            for piece in _pieces(s.get("text", ""), n):
                evs.append({"type": "response.reasoning_summary_text.delta", **base,
                            "delta": piece})
            evs.append({"type": "response.reasoning_summary_text.done", **base,
                        "text": s.get("text", "")})
            evs.append({"type": "response.reasoning_summary_part.done", **base, "part": s})
    evs.append({"type": "response.output_item.done", "output_index": oi, "item": item})
    return evs


def encode_stream(resp: Response, *, chunk_chars: int = 8) -> list[bytes]:
    """The event stream for ``resp``: one element per SSE event, ending with the terminal
    ``response.completed`` / ``response.incomplete`` / ``response.failed``."""
    status, incomplete = _status(resp)
    output = _items(resp)
    start = _response_object(resp, [], "in_progress", None, None)
    events: list[dict[str, Any]] = [{"type": "response.created", "response": start},
                                    {"type": "response.in_progress", "response": start}]
    for oi, item in enumerate(output):
        events.extend(_item_events(oi, item, chunk_chars))
    terminal = status if status in ("completed", "incomplete", "failed") else "completed"
    events.append({"type": f"response.{terminal}", "response": _response_object(
        resp, output, status, incomplete, _usage(resp.usage))})
    out: list[bytes] = []
    for seq, ev in enumerate(events):
        ev["sequence_number"] = seq
        out.append(b"event: " + ev["type"].encode() + b"\ndata: "
                   + msgspec.json.encode(ev) + b"\n\n")
    return out


_ERROR_TYPES = {400: "invalid_request_error", 401: "invalid_request_error",
                403: "permission_error", 404: "invalid_request_error", 409: "conflict",
                422: "invalid_request_error", 429: "rate_limit_exceeded"}
_ERROR_CODES = {401: "invalid_api_key", 404: "model_not_found", 429: "rate_limit_exceeded"}


def error_body(status: int, message: str, *, type: str | None = None) -> dict[str, Any]:
    """The API's error JSON for an HTTP error ``status``."""
    etype = type or _ERROR_TYPES.get(status, "server_error" if status >= 500 else
                                     "invalid_request_error")
    return {"error": {"message": message, "type": etype, "param": None,
                      "code": _ERROR_CODES.get(status)}}
