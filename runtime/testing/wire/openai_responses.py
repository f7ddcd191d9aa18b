"""The OpenAI Responses protocol as the fake provider server speaks it.

``decode_request`` reads what a client sent (tolerantly: string or list content, items with
or without ``type``, system/developer messages, provider tools) back into a canonical
``Request``; ``encode_json`` / ``encode_stream`` write a canonical ``Response`` the way the
real API does (``response.created`` ... ``response.completed``, no ``[DONE]``);
``error_body`` is the API's error JSON. Pure: no I/O.

Client-run kinds of calls (``ToolCallPart.kind``) are sent as their items, streamed the way
the API streams them (a custom call's input as ``response.custom_tool_call_input.delta``,
a shell call's commands as ``response.shell_call_command.*``), and their output items are
read back as ``ToolResultPart`` s of that kind (``shell``: ``meta["outputs"]``;
``apply_patch``: ``meta["status"]``). Shapes: openai-python ``types/responses/``
(``response_custom_tool_call.py``, ``response_function_shell_tool_call.py``,
``response_apply_patch_tool_call.py``, ``response_input_item_param.py``).
"""

from __future__ import annotations

import itertools
import typing
from typing import Any

import msgspec

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
    ToolKind,
    ToolResultPart,
    ToolSpec,
    Usage,
)
from ...wire.openai_responses import PROTOCOL

__all__ = ["decode_request", "encode_json", "encode_stream", "error_body"]

# Params with the types of its fields and without their ranges (get_type_hints drops them)
_PARAM_TYPES = msgspec.defstruct("ParamTypes", [
    (name, tp, getattr(Params(), name)) for name, tp in typing.get_type_hints(Params).items()])

_CREATED_AT = 1_700_000_000
_KNOWN_KEYS = frozenset({
    "model", "input", "instructions", "tools", "temperature", "top_p", "max_output_tokens",
    "stop", "seed", "tool_choice", "parallel_tool_calls", "text", "reasoning", "store",
    "previous_response_id", "stream",
})


# -- request ---------------------------------------------------------------------------


def _content_parts(content: Any) -> list[TextPart | ImagePart]:
    if isinstance(content, str):
        return [TextPart(content)]
    parts: list[TextPart | ImagePart] = []
    for c in content if isinstance(content, list) else ():
        if not isinstance(c, dict):
            continue
        t = c.get("type")
        if t in ("input_text", "output_text", "text") and isinstance(c.get("text"), str):
            parts.append(TextPart(c["text"]))
        elif t == "input_image":
            url = c.get("image_url")
            if isinstance(url, str) and url.startswith("data:") and ";base64," in url:
                media, data = url[5:].split(";base64,", 1)
                parts.append(ImagePart(data=data, media_type=media))
            elif isinstance(url, str):
                parts.append(ImagePart(url=url))
        elif t == "input_file":
            ref = c.get("file_url") or c.get("file_id") or c.get("filename") or ""
            parts.append(TextPart(f"[file {ref}]"))
    return parts


def _tool_choice(choice: Any) -> str | None:
    if isinstance(choice, str):
        return choice
    if isinstance(choice, dict) and isinstance(choice.get("name"), str):
        return str(choice["name"])
    return None


def _response_format(fmt: Any) -> dict[str, Any] | None:
    if not isinstance(fmt, dict):
        return None
    if fmt.get("type") == "json_schema":
        return {"type": "json_schema",
                "json_schema": {k: v for k, v in fmt.items() if k != "type"}}
    return dict(fmt)


def _params(body: dict[str, Any], builtin_tools: list[Any]) -> Params:
    text: dict[str, Any] = body["text"] if isinstance(body.get("text"), dict) else {}
    reasoning: dict[str, Any] = (
        body["reasoning"] if isinstance(body.get("reasoning"), dict) else {})
    extra = {k: v for k, v in body.items() if k not in _KNOWN_KEYS}
    if builtin_tools:
        extra["tools"] = builtin_tools
    text_rest = {k: v for k, v in text.items() if k != "format"}
    if text_rest:
        extra["text"] = text_rest
    stop = body.get("stop")
    return Params(
        temperature=body.get("temperature"),
        top_p=body.get("top_p"),
        max_tokens=body.get("max_output_tokens"),
        stop=[stop] if isinstance(stop, str) else stop,
        seed=body.get("seed"),
        tool_choice=_tool_choice(body.get("tool_choice")),
        parallel_tool_calls=body.get("parallel_tool_calls"),
        response_format=_response_format(text.get("format")),
        reasoning_effort=reasoning.get("effort"),
        reasoning_summary=reasoning.get("summary"),
        extra=extra,
    )


_CALL_KINDS: dict[str, ToolKind] = {
    "custom_tool_call": "custom", "shell_call": "shell", "local_shell_call": "local_shell",
    "apply_patch_call": "apply_patch"}
_OUTPUT_KINDS: dict[str, ToolKind] = {f"{t}_output": k for t, k in _CALL_KINDS.items()}
_OUTPUT_KINDS["function_call_output"] = "function"


def _client_call(item: dict[str, Any], kind: ToolKind) -> ToolCallPart:
    if kind == "custom":
        name, args = str(item.get("name") or ""), str(item.get("input") or "")
    else:
        payload = item.get("operation" if kind == "apply_patch" else "action")
        name, args = kind, msgspec.json.encode(payload or {}).decode()
    return ToolCallPart(id=str(item.get("call_id") or item.get("id") or ""), name=name,
                        arguments=args, item_id=item.get("id"), kind=kind, raw=item)


def _output_part(item: dict[str, Any], kind: ToolKind) -> ToolResultPart:
    call_id = str(item.get("call_id") or item.get("id") or "")
    out = item.get("output")
    if kind == "shell":
        outputs: list[dict[str, Any]] = []
        for o in out if isinstance(out, list) else ():
            outcome = o.get("outcome") if isinstance(o, dict) else None
            entry = {"stdout": o.get("stdout", ""), "stderr": o.get("stderr", "")}
            if isinstance(outcome, dict) and outcome.get("type") == "timeout":
                entry["timed_out"] = True
            elif isinstance(outcome, dict):
                entry["exit_code"] = outcome.get("exit_code")
            outputs.append(entry)
        text = "".join(str(o["stdout"]) + str(o["stderr"]) for o in outputs)
        return ToolResultPart(call_id, text, kind=kind, meta={"outputs": outputs})
    content: str | list[TextPart | ImagePart] = (
        out if isinstance(out, str) else _content_parts(out))
    if kind == "apply_patch":
        status = item.get("status")
        return ToolResultPart(call_id, content, is_error=status == "failed", kind=kind,
                              meta={"status": status})
    return ToolResultPart(call_id, content, kind=kind)


def _item_part(item: dict[str, Any]) -> Part | None:
    t = item.get("type")
    kind = _CALL_KINDS.get(str(t))
    env = item.get("environment")
    if kind is not None and not (isinstance(env, dict) and env.get("type") != "local"):
        return _client_call(item, kind)
    if t == "function_call":
        args = item.get("arguments")
        return ToolCallPart(id=str(item.get("call_id") or item.get("id") or ""),
                            name=str(item.get("name") or ""),
                            arguments=args if isinstance(args, str) else
                            msgspec.json.encode(args).decode(),
                            item_id=item.get("id"))
    if t == "reasoning":
        summary = [s.get("text", "") for s in item.get("summary") or ()
                   if isinstance(s, dict)]
        content = "".join(c.get("text", "") for c in item.get("content") or ()
                          if isinstance(c, dict) and c.get("type") == "reasoning_text")
        return ReasoningPart(text="\n\n".join(summary) or content, id=item.get("id"),
                             encrypted=item.get("encrypted_content") or None,
                             summary=summary, protocol=PROTOCOL, raw=item)
    return BuiltinToolPart(item_type=str(t), id=item.get("id"), protocol=PROTOCOL, raw=item)


def _native_tool(t: Any) -> ToolSpec | None:
    """A client-run native tool (custom, local shell, apply_patch) as a ToolSpec; a shell
    in the provider's container stays a provider tool."""
    if not isinstance(t, dict):
        return None
    kind = t.get("type")
    if kind == "custom" and isinstance(t.get("name"), str):
        fmt = t.get("format")
        return ToolSpec(t["name"], str(t.get("description") or ""), kind="custom",
                        format=fmt if isinstance(fmt, dict) else None)
    env = t.get("environment")
    if kind in ("shell", "local_shell", "apply_patch") and not (
            isinstance(env, dict) and env.get("type") != "local"):
        return ToolSpec(str(kind), kind=kind)
    return None


def decode_request(body: dict[str, Any]) -> Request:
    """A request body as a client sent it, back to the canonical ``Request``.

    Raises ``ValueError`` (which the fake server answers with a 400) when the body is not
    a Responses request: not an object, or fields of the wrong type."""
    if not isinstance(body, dict):
        raise ValueError("a Responses request body is a JSON object")
    try:
        req = _decode_request(body)
        # validates every field's type (msgspec does not check at construction); the params'
        # ranges are not checked: judging them is the provider's part (recordings hold its
        # answers to out-of-range values), a decoder reports what was sent
        data = msgspec.to_builtins(req)
        msgspec.convert(data.pop("params", {}), _PARAM_TYPES)
        return msgspec.structs.replace(msgspec.convert(data, Request), params=req.params)
    except (TypeError, AttributeError, msgspec.ValidationError) as exc:
        raise ValueError(f"not a Responses request body: {exc}") from exc


def _decode_request(body: dict[str, Any]) -> Request:
    system: list[str] = []
    if isinstance(body.get("instructions"), str) and body["instructions"]:
        system.append(body["instructions"])
    raw_input = body.get("input")
    items = [{"role": "user", "content": raw_input}] if isinstance(raw_input, str) else (
        raw_input if isinstance(raw_input, list) else [])
    messages: list[Message] = []

    def current(role: str) -> Message:
        if not messages or messages[-1].role != role:
            messages.append(Message(role, []))  # type: ignore[arg-type]
        return messages[-1]

    for item in items:
        if not isinstance(item, dict):
            continue
        t = item.get("type", "message")
        if t == "message" or (t is None and "role" in item):
            role = item.get("role", "user")
            if role in ("system", "developer"):
                system.extend(p.text for p in _content_parts(item.get("content"))
                              if isinstance(p, TextPart))
            elif role == "assistant":
                meta = {"phase": item["phase"]} if isinstance(item.get("phase"), str) else None
                current("assistant").parts.extend(
                    TextPart(p.text, meta=meta) for p in _content_parts(item.get("content"))
                    if isinstance(p, TextPart))
            else:
                messages.append(Message("user", list(_content_parts(item.get("content")))))
        elif t in _OUTPUT_KINDS:
            current("tool").parts.append(_output_part(item, _OUTPUT_KINDS[t]))
        else:
            part = _item_part(item)
            if part is not None:
                current("assistant").parts.append(part)
    tools: list[ToolSpec] = []
    builtin_tools: list[Any] = []
    for t in body.get("tools") or ():
        native = _native_tool(t)
        if native is not None:
            tools.append(native)
        elif isinstance(t, dict) and t.get("type") == "function" and isinstance(t.get("name"), str):
            params = t.get("parameters")
            tools.append(ToolSpec(t["name"], t.get("description") or "",
                                  params if isinstance(params, dict) else
                                  {"type": "object", "properties": {}},
                                  # false is what the codec sends for "not strict"
                                  strict=True if t.get("strict") is True else None))
        else:
            builtin_tools.append(t)
    return Request(
        model=str(body.get("model") or ""),
        messages=messages,
        system="\n\n".join(system) or None,
        tools=tools,
        params=_params(body, builtin_tools),
        stream=bool(body.get("stream", False)),
        store=body.get("store"),
        previous_response_id=body.get("previous_response_id"),
    )


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
    raw = p.raw if p.raw is not None and p.raw.get("type") in _CALL_KINDS else {}
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
    elif t == "function_call":
        base = {"item_id": iid, "output_index": oi}
        for piece in _pieces(item["arguments"], n):
            evs.append({"type": "response.function_call_arguments.delta", **base,
                        "delta": piece})
        evs.append({"type": "response.function_call_arguments.done", **base,
                    "arguments": item["arguments"]})
    elif t == "custom_tool_call":
        base = {"item_id": iid, "output_index": oi}
        for piece in _pieces(item["input"], n):
            evs.append({"type": "response.custom_tool_call_input.delta", **base,
                        "delta": piece})
        evs.append({"type": "response.custom_tool_call_input.done", **base,
                    "input": item["input"]})
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
