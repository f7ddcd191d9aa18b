"""The OpenAI Responses codec (``/v1/responses``), client side.

Request: the system prompt goes to ``instructions``; messages become ``input`` items (user /
assistant messages, ``function_call`` and ``function_call_output`` items, reasoning and
builtin items of this protocol passed back verbatim); ``Params`` map to ``max_output_tokens``,
``reasoning``, ``text.format``, ``tool_choice`` ...; ``Params.extra`` is merged last (one
level deep for objects; ``tools`` and ``include`` lists are extended, so provider tools such
as ``{"type": "web_search"}`` can be offered through ``extra["tools"]``).

Responses has no ``stop`` or ``seed``: they are sent only for the ``local`` dialect
(llama.cpp's server takes them). Function tools are sent with ``strict: false`` unless the
ToolSpec asks for strict mode, because the Responses default (strict) rejects ordinary
JSON Schemas.

Response: ``decode_body`` for a JSON body, ``StreamDecoder`` for an event stream (see
``openai_responses_stream``). Pure: no I/O, no trio, no httpx.
"""

from __future__ import annotations

from typing import Any

import msgspec

from ..events import Event, Finish, ResponseStart
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
    normalize_finish,
)
from ._base import malformed
from .openai_responses_items import (
    PROTOCOL,
    OutputFolder,
    ResponseHead,
    error_event,
    finish_reason,
    item_of,
    usage_events,
)
from .openai_responses_stream import StreamDecoder

__all__ = [
    "PROTOCOL",
    "StreamDecoder",
    "decode_body",
    "encode_request",
    "headers",
    "url",
]

ENCRYPTED_REASONING = "reasoning.encrypted_content"
_BODY = msgspec.json.Decoder(ResponseHead)
_SAMPLING_DIALECTS = frozenset({"local"})


def url(base_url: str) -> str:
    """``{base_url}/responses``: the base URL already ends in ``/v1``."""
    return base_url.rstrip("/") + "/responses"


def headers(api_key: str | None) -> dict[str, str]:
    h = {"content-type": "application/json"}
    if api_key:
        h["authorization"] = f"Bearer {api_key}"
    return h


# -- request ---------------------------------------------------------------------------


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


def _result_item(p: ToolResultPart) -> dict[str, Any]:
    output: str | list[dict[str, Any]]
    output = p.content if isinstance(p.content, str) else _input_content(p.content)
    return {"type": "function_call_output", "call_id": p.call_id, "output": output}


def _assistant_items(m: Message) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for p in m.parts:
        if isinstance(p, TextPart):
            item: dict[str, Any] = {"type": "message", "role": "assistant", "content": p.text}
            if p.meta and isinstance(p.meta.get("phase"), str):
                item["phase"] = p.meta["phase"]
            items.append(item)
        elif isinstance(p, ToolCallPart):
            call: dict[str, Any] = {"type": "function_call", "call_id": p.id, "name": p.name,
                                    "arguments": p.arguments}
            if p.item_id is not None:
                call["id"] = p.item_id
            items.append(call)
        elif isinstance(p, ReasoningPart):
            if p.protocol == PROTOCOL:
                items.append(_reasoning_item(p))
        elif isinstance(p, BuiltinToolPart):
            if p.protocol == PROTOCOL and p.raw is not None:
                items.append(_compaction_item(p.raw) if p.item_type == "compaction"
                             else p.raw)
        elif isinstance(p, ToolResultPart):
            items.append(_result_item(p))
    return items


def _encode_input(messages: list[Message]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    call_order: dict[str, int] = {}
    for m in messages:
        if m.role == "assistant":
            items.extend(_assistant_items(m))
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
        items.extend(_result_item(p) for _, p in ordered)
    return items


def _tool(t: ToolSpec) -> dict[str, Any]:
    return {"type": "function", "name": t.name, "description": t.description,
            "parameters": t.parameters, "strict": bool(t.strict)}


def _tool_choice(choice: str) -> str | dict[str, Any]:
    if choice in ("auto", "none", "required"):
        return choice
    if choice == "any":
        return "required"
    return {"type": "function", "name": choice}


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


def _params(body: dict[str, Any], p: Params, dialect: str | None) -> None:
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
        body["tool_choice"] = _tool_choice(p.tool_choice)
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
    _params(body, req.params, dialect)
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


# -- response --------------------------------------------------------------------------


def decode_body(body: bytes) -> list[Event]:
    """A non-streamed response body as ``ResponseStart, ..., UsageEvent?, Finish`` (or an
    ``ErrorEvent`` last when the body reports an error)."""
    try:
        head = _BODY.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise malformed(f"Responses body is not a response object: {exc}",
                        details=body.decode("utf-8", "replace")) from exc
    if head.output is None:
        if head.error is not None:
            return [error_event({"error": head.error})]
        raise malformed("Responses body has no output list",
                        details=body.decode("utf-8", "replace"))
    events: list[Event] = [ResponseStart(id=head.id, model=head.model)]
    folder = OutputFolder()
    for oi, raw in enumerate(head.output):
        events.extend(folder.item_done(oi, *item_of(raw)))
    events.extend(usage_events(head.usage))
    if head.status == "failed" or head.error is not None:
        events.append(error_event({"error": head.error} if head.error is not None
                                  else {"error": {"message": "the response failed"}}))
        return events
    reason = finish_reason(head)
    events.append(Finish(reason, normalize_finish(reason, folder.has_calls)))
    return events
