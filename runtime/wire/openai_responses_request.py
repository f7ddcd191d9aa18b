"""Canonical ``Request`` -> OpenAI Responses JSON body. Pure: no I/O.

The system prompt goes to ``instructions``; messages become ``input`` items: user and
assistant messages, each call as the item of its kind and each result as the matching
output item, reasoning and builtin items of this protocol passed back verbatim (a
``compaction`` item in its input form). ``Params`` map to ``max_output_tokens``, ``reasoning``, ``text.format``, ``tool_choice`` ...;
``Params.extra`` is merged last (one level deep for objects; ``tools`` and ``include``
lists are extended, so provider tools such as ``{"type": "web_search"}`` can be offered
through ``extra["tools"]``).

Calls and results by ``ToolKind`` (shapes from openai-python ``types/responses/``:
``response_input_item_param.py`` ``ShellCall`` / ``ShellCallOutput`` / ``LocalShellCall`` /
``ApplyPatchCall`` / ``ApplyPatchCallOutput``, ``response_custom_tool_call_param.py``,
``response_custom_tool_call_output_param.py``,
``response_function_shell_call_output_content_param.py``; ``local_shell_call_output`` as
OpenAI's local shell guide and openai-agents ``run_internal/tool_actions.py`` send it):

* ``function``: ``function_call`` {call_id, name, arguments} -> ``function_call_output``;
  arguments that are not a JSON object (a call cut off by the token limit) go as ``{}``;
* ``custom``: ``custom_tool_call`` {call_id, name, input} -> ``custom_tool_call_output``;
* ``shell``: ``shell_call`` {call_id, action, status} -> ``shell_call_output`` {output:
  [{stdout, stderr, outcome: {type: exit, exit_code} | {type: timeout}}], max_output_length
  (the call's, passed back)} built from ``ToolResultPart.meta["outputs"]``;
* ``local_shell``: ``local_shell_call`` {id, call_id, action, status} ->
  ``local_shell_call_output`` {call_id, output: text};
* ``apply_patch``: ``apply_patch_call`` {call_id, operation, status} ->
  ``apply_patch_call_output`` {status: completed | failed, output: text}.

Each call item carries its ``id`` (the output item id) and what its ``raw`` item holds of
the documented input fields (``status``, ``environment``, ``caller``, ``namespace``); a
result becomes the output item of the call it answers (by ``call_id``), whatever kind the
result names, and carries the call's ``caller``. ToolSpec kinds are offered as the native
tools: ``{"type": "custom", "name", "description", "format"}``, ``{"type": "shell"}``,
``{"type": "local_shell"}``, ``{"type": "apply_patch"}``.

Responses has no ``stop`` or ``seed``: they are sent only for the ``local`` dialect
(llama.cpp's server takes them). Function tools are sent with ``strict: false`` unless the
ToolSpec asks for strict mode, because the Responses default (strict) rejects ordinary
JSON Schemas.
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
    ToolSpec,
)
from ._base import arguments_object, function_arguments, json_object
from .openai_responses_items import PROTOCOL

__all__ = ["ENCRYPTED_REASONING", "encode_request"]

ENCRYPTED_REASONING = "reasoning.encrypted_content"
_SAMPLING_DIALECTS = frozenset({"local"})
_ITEM = {"function": "function_call", "custom": "custom_tool_call", "shell": "shell_call",
         "local_shell": "local_shell_call", "apply_patch": "apply_patch_call"}
# input fields of each call item that are taken from the item as the provider sent it
_EXTRAS = {"function": ("caller", "namespace", "status"),
           "custom": ("caller", "namespace"),
           "shell": ("status", "environment", "caller"),
           "local_shell": ("status",),
           "apply_patch": ("status", "caller")}
_REQUIRED_STATUS = frozenset({"shell", "local_shell", "apply_patch"})


def _image_url(p: ImagePart) -> str:
    if p.url:
        return p.url
    return f"data:{p.media_type or 'image/png'};base64,{p.data or ''}"


def _input_content(parts: list[TextPart | ImagePart] | list[Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for p in parts:
        if isinstance(p, TextPart):
            out.append({"type": "input_text", "text": p.text})
        elif isinstance(p, ImagePart):
            out.append({"type": "input_image", "image_url": _image_url(p)})
    return out


def _reasoning_item(p: ReasoningPart) -> dict[str, Any]:
    if p.raw is not None:
        return p.raw
    item: dict[str, Any] = {"type": "reasoning", "summary": [
        {"type": "summary_text", "text": s} for s in p.summary]}
    if p.id is not None:
        item["id"] = p.id
    if p.encrypted is not None:
        item["encrypted_content"] = p.encrypted
    return item


def _compaction_item(raw: dict[str, Any]) -> dict[str, Any]:
    """A ``compaction`` output item as the input item the API takes back: its ``id`` and
    ``encrypted_content`` only (``created_by`` is output-only)."""
    item: dict[str, Any] = {"type": "compaction", "encrypted_content": raw.get(
        "encrypted_content", "")}
    if raw.get("id") is not None:
        item["id"] = raw["id"]
    return item


# -- calls and their results ---------------------------------------------------------------


def _raw(p: ToolCallPart) -> dict[str, Any]:
    """The call's provider item, when it is this kind's Responses item."""
    raw = p.raw
    return raw if raw is not None and raw.get("type") == _ITEM[p.kind] else {}


def _payload(p: ToolCallPart, raw: dict[str, Any], key: str) -> dict[str, Any]:
    """A shell call's ``action`` / a patch call's ``operation``: its arguments, or the
    item's own when the arguments are not a JSON object."""
    value = json_object(p.arguments)  # never a custom call here
    if value is None:
        value = raw.get(key)
    return value if isinstance(value, dict) else {}


def _call_item(p: ToolCallPart) -> dict[str, Any]:
    kind = p.kind
    raw = _raw(p)
    item: dict[str, Any] = {"type": _ITEM[kind], "call_id": p.id}
    if kind == "function":
        item.update(name=p.name, arguments=function_arguments(p))
    elif kind == "custom":
        item.update(name=p.name, input=p.arguments)
    elif kind == "apply_patch":
        item["operation"] = _payload(p, raw, "operation")
    else:
        item["action"] = _payload(p, raw, "action")
    item_id = p.item_id if p.item_id is not None else raw.get("id")
    if item_id is not None:
        item["id"] = item_id
    elif kind == "local_shell":
        item["id"] = p.id  # required by the item; the call id is the best one known
    for key in _EXTRAS[kind]:
        if key in raw and raw[key] is not None:
            item[key] = raw[key]
    if kind in _REQUIRED_STATUS:
        item.setdefault("status", "completed")
    return item


def _text(content: str | list[TextPart | ImagePart]) -> str:
    if isinstance(content, str):
        return content
    return "".join(c.text for c in content if isinstance(c, TextPart))


def _shell_outputs(r: ToolResultPart) -> list[dict[str, Any]]:
    """``shell_call_output.output`` from ``meta["outputs"]`` (one entry per command), or
    the result's text as one command's output."""
    outputs = (r.meta or {}).get("outputs")
    if not isinstance(outputs, list) or not outputs:
        text = _text(r.content)
        return [{"stdout": "" if r.is_error else text, "stderr": text if r.is_error else "",
                 "outcome": {"type": "exit", "exit_code": 1 if r.is_error else 0}}]
    out = []
    for o in outputs:
        o = o if isinstance(o, dict) else {}
        if o.get("timed_out"):
            outcome: dict[str, Any] = {"type": "timeout"}
        else:
            code = o.get("exit_code")
            if not isinstance(code, int) or isinstance(code, bool):
                code = 1 if r.is_error else 0
            outcome = {"type": "exit", "exit_code": code}
        out.append({"stdout": str(o.get("stdout") or ""), "stderr": str(o.get("stderr") or ""),
                    "outcome": outcome})
    return out


def _result_item(r: ToolResultPart, call: ToolCallPart | None) -> dict[str, Any]:
    """The output item answering ``call`` (the kind of the call decides, so the history is
    valid even when the result does not name its kind)."""
    kind = call.kind if call is not None else r.kind
    item: dict[str, Any] = {"type": _ITEM[kind] + "_output", "call_id": r.call_id}
    if kind in ("function", "custom"):
        item["output"] = r.content if isinstance(r.content, str) else _input_content(r.content)
    elif kind == "shell":
        item["output"] = _shell_outputs(r)
        limit = arguments_object(call).get("max_output_length") if call is not None else None
        if isinstance(limit, int) and not isinstance(limit, bool):
            item["max_output_length"] = limit
    elif kind == "apply_patch":
        status = (r.meta or {}).get("status")
        item["status"] = status if status in ("completed", "failed") else (
            "failed" if r.is_error else "completed")
        item["output"] = _text(r.content)
    else:
        item["output"] = _text(r.content)
    caller = _raw(call).get("caller") if call is not None else None
    if caller is not None:
        item["caller"] = caller
    return item


# -- messages ------------------------------------------------------------------------------


def _assistant_items(m: Message, calls: dict[str, ToolCallPart]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for p in m.parts:
        if isinstance(p, TextPart):
            item: dict[str, Any] = {"type": "message", "role": "assistant", "content": p.text}
            if p.meta and isinstance(p.meta.get("phase"), str):
                item["phase"] = p.meta["phase"]
            items.append(item)
        elif isinstance(p, ToolCallPart):
            calls[p.id] = p
            items.append(_call_item(p))
        elif isinstance(p, ReasoningPart):
            if p.protocol == PROTOCOL:
                items.append(_reasoning_item(p))
        elif isinstance(p, BuiltinToolPart):
            if p.protocol == PROTOCOL and p.raw is not None:
                items.append(_compaction_item(p.raw) if p.item_type == "compaction"
                             else p.raw)
        elif isinstance(p, ToolResultPart):
            items.append(_result_item(p, calls.get(p.call_id)))
    return items


def _encode_input(messages: list[Message]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    calls: dict[str, ToolCallPart] = {}  # every call so far, by id
    call_order: dict[str, int] = {}
    for m in messages:
        if m.role == "assistant":
            items.extend(_assistant_items(m, calls))
            call_order = {c.id: i for i, c in enumerate(m.tool_calls)}
            continue
        results = [p for p in m.parts if isinstance(p, ToolResultPart)]
        content = _input_content([p for p in m.parts if isinstance(p, TextPart | ImagePart)])
        if m.role == "user" and (content or not results):
            items.append({"type": "message", "role": "user", "content": content})
        # tool results in the order of the calls they answer; unknown ids keep their place
        n = len(call_order)
        ordered = sorted(enumerate(results),
                         key=lambda ir: call_order.get(ir[1].call_id, n + ir[0]))
        items.extend(_result_item(p, calls.get(p.call_id)) for _, p in ordered)
    return items


# -- tools and parameters ------------------------------------------------------------------


def _tool(t: ToolSpec) -> dict[str, Any]:
    if t.kind == "function":
        return {"type": "function", "name": t.name, "description": t.description,
                "parameters": t.parameters, "strict": bool(t.strict)}
    if t.kind == "custom":
        tool: dict[str, Any] = {"type": "custom", "name": t.name}
        if t.description:
            tool["description"] = t.description
        if t.format is not None:
            tool["format"] = t.format
        return tool
    return {"type": t.kind}


def _tool_choice(choice: str, tools: list[ToolSpec]) -> str | dict[str, Any]:
    if choice in ("auto", "none", "required"):
        return choice
    if choice == "any":
        return "required"
    kind = next((t.kind for t in tools if t.name == choice), "function")
    if kind in ("shell", "apply_patch"):
        return {"type": kind}
    if kind == "local_shell":
        return "required"  # no tool_choice names the local shell
    return {"type": kind, "name": choice}


def _text_format(fmt: dict[str, Any]) -> dict[str, Any]:
    """Chat-style ``{"type": "json_schema", "json_schema": {...}}`` to the flat Responses
    form; a format already in Responses form passes unchanged."""
    inner = fmt.get("json_schema")
    if fmt.get("type") == "json_schema" and isinstance(inner, dict):
        return {"type": "json_schema", **inner}
    return fmt


def _merge(body: dict[str, Any], extra: dict[str, Any]) -> None:
    for k, v in extra.items():
        cur = body.get(k)
        if k in ("tools", "include") and isinstance(cur, list) and isinstance(v, list):
            body[k] = cur + [x for x in v if x not in cur]
        elif isinstance(cur, dict) and isinstance(v, dict):
            body[k] = {**cur, **v}
        else:
            body[k] = v


def _params(body: dict[str, Any], p: Params, dialect: str | None,
            tools: list[ToolSpec]) -> None:
    if p.temperature is not None:
        body["temperature"] = p.temperature
    if p.top_p is not None:
        body["top_p"] = p.top_p
    if p.max_tokens is not None:
        body["max_output_tokens"] = p.max_tokens
    if dialect in _SAMPLING_DIALECTS:
        if p.stop:
            body["stop"] = list(p.stop)
        if p.seed is not None:
            body["seed"] = p.seed
    if p.tool_choice is not None:
        body["tool_choice"] = _tool_choice(p.tool_choice, tools)
    if p.parallel_tool_calls is not None:
        body["parallel_tool_calls"] = p.parallel_tool_calls
    if p.response_format is not None:
        body["text"] = {"format": _text_format(p.response_format)}
    reasoning: dict[str, Any] = {}
    if p.reasoning_effort is not None:
        reasoning["effort"] = p.reasoning_effort
    if p.reasoning_summary is not None:
        reasoning["summary"] = p.reasoning_summary
    if reasoning:
        body["reasoning"] = reasoning


def encode_request(req: Request, *, stream: bool, dialect: str | None = None) -> dict[str, Any]:
    """The JSON body of a ``POST /responses`` for ``req``."""
    body: dict[str, Any] = {"model": req.model}
    if req.system:
        body["instructions"] = req.system
    body["input"] = _encode_input(req.messages)
    if req.tools:
        body["tools"] = [_tool(t) for t in req.tools]
    _params(body, req.params, dialect, req.tools)
    if req.store is not None:
        body["store"] = req.store
    if req.store is False:
        body["include"] = [ENCRYPTED_REASONING]
    if req.previous_response_id is not None:
        body["previous_response_id"] = req.previous_response_id
    body["stream"] = stream
    if req.params.extra:
        _merge(body, req.params.extra)
    return body
