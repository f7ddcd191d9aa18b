"""The OpenAI Responses request as the fake provider server reads it: a body a client sent
back into a canonical ``Request``, tolerantly (string or list content, items with or without
``type``, system/developer messages, provider tools). Client-run kinds of calls and their
output items become ``ToolCallPart`` / ``ToolResultPart`` s of their kind (``shell``:
``meta["outputs"]``; ``apply_patch``: ``meta["status"]``); native custom / shell /
local_shell / apply_patch tools become ToolSpecs of that kind. Shapes: openai-python
``types/responses/response_input_item_param.py``. Pure: no I/O.
"""

from __future__ import annotations

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
    TextPart,
    ToolCallPart,
    ToolKind,
    ToolResultPart,
    ToolSpec,
)
from ...wire.openai_responses import PROTOCOL

__all__ = ["decode_request"]

# Params with the types of its fields and without their ranges (get_type_hints drops them)
_PARAM_TYPES = msgspec.defstruct("ParamTypes", [
    (name, tp, getattr(Params(), name)) for name, tp in typing.get_type_hints(Params).items()])

_KNOWN_KEYS = frozenset({
    "model", "input", "instructions", "tools", "temperature", "top_p", "max_output_tokens",
    "stop", "seed", "tool_choice", "parallel_tool_calls", "text", "reasoning", "store",
    "previous_response_id", "stream",
})


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
    if isinstance(choice, dict) and choice.get("type") in ("shell", "apply_patch"):
        return str(choice["type"])  # the tool of that kind (named after it)
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
