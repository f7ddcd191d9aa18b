"""What every wire codec shares: the codec interface and the malformed-input error.

A codec module (``openai_chat``, ``openai_responses``, ``anthropic``) provides:

* ``PROTOCOL``: its protocol name;
* ``url(base_url) -> str``: the endpoint for a base URL (see ARCHITECTURE.md, "Base URLs");
* ``headers(api_key) -> dict[str, str]``: auth and protocol headers;
* ``encode_request(req, *, stream, dialect=None) -> dict``: the JSON body of a request;
* ``decode_body(body: bytes) -> list[Event]``: a non-streamed JSON body as events;
* ``StreamDecoder``: ``feed(SSEEvent) -> list[Event]`` and ``close() -> list[Event]``;
  ``feed_data(event, data)`` is ``feed`` for an ``sse_split`` pair, whose data may be the
  bytes that arrived (decoded as they are; read as text, invalid UTF-8 replaced, whenever
  they are not what the hot path expects: the events are the same either way);
  ``feed_all(pairs, out)`` is ``feed_data`` of each pair of one network read, except that a
  run of plain text deltas of one part comes as one ``TextDelta`` (the HTTP provider's
  hot path: no object per text chunk that the floor does not make).

Codecs are pure: no I/O, no trio, no httpx. Every surprise in provider input becomes a
``ProviderError`` of kind ``malformed_response`` that says what was expected, and a decode
that ends with neither content nor a finish reason nor an error is one too (``nothing``).

What a history sends back is valid for every protocol: ``function_arguments`` /
``arguments_object`` give a call's arguments as the JSON object a function call carries
(``{}`` for arguments cut off by the token limit, ``{"input": ...}`` for a freeform
``custom`` call), ``arguments_replaced`` says when that lost what the model sent, and
``function_parameters`` is the schema a client-run kind of tool is offered with where the
protocol has only functions.
"""

from __future__ import annotations

from typing import Any, Protocol

import msgspec

from ..errors import ErrorKind, ProviderError
from ..events import (
    BuiltinTool,
    Event,
    ReasoningDelta,
    RefusalDelta,
    TextDelta,
    ToolCallStart,
)
from ..model import Request, ToolCallPart, ToolSpec
from .sse import SSEEvent

__all__ = [
    "Codec",
    "StreamDecoderProtocol",
    "arguments_object",
    "arguments_replaced",
    "data_text",
    "function_arguments",
    "function_parameters",
    "has_content",
    "json_object",
    "json_of",
    "malformed",
    "nothing",
]


class StreamDecoderProtocol(Protocol):
    sse_events: int

    def feed(self, ev: SSEEvent) -> list[Event]: ...

    def feed_data(self, event: str, data: str | bytes) -> list[Event]: ...

    def feed_all(self, pairs: list[tuple[str, str | bytes]], out: list[Event]
                 ) -> list[Event]: ...

    def close(self) -> list[Event]: ...


class Codec(Protocol):
    PROTOCOL: str

    def url(self, base_url: str) -> str: ...

    def headers(self, api_key: str | None) -> dict[str, str]: ...

    def encode_request(self, req: Request, *, stream: bool,
                       dialect: str | None = None) -> dict[str, Any]: ...

    def decode_body(self, body: bytes) -> list[Event]: ...

    def StreamDecoder(self) -> StreamDecoderProtocol: ...


def malformed(message: str, *, details: str | None = None) -> ProviderError:
    """The error for provider input that does not follow its protocol."""
    return ProviderError(ErrorKind.MALFORMED_RESPONSE, message,
                         details=details[:400] if details else None)


_decoder = msgspec.json.Decoder()


def json_of(data: str | bytes, what: str) -> Any:
    """Parse JSON or raise ``malformed_response`` naming ``what`` was being read."""
    try:
        return _decoder.decode(data)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise malformed(f"{what} is not valid JSON: {exc}", details=data_text(data)) from exc


def data_text(data: str | bytes) -> str:
    """SSE event data as ``SSEDecoder`` gives it (bytes from ``sse_split`` decoded, invalid
    UTF-8 replaced)."""
    return data if type(data) is str else data.decode("utf-8", "replace")  # type: ignore[union-attr]


def has_content(events: list[Event]) -> bool:
    """Whether events carry something of an answer: text, reasoning, a refusal, a call, a
    provider tool item."""
    for ev in events:
        t = type(ev)
        if t is TextDelta or t is RefusalDelta:
            if ev.text:  # type: ignore[union-attr]
                return True
        elif t is ReasoningDelta:
            assert isinstance(ev, ReasoningDelta)
            if ev.text or ev.signature or ev.encrypted or ev.raw:
                return True
        elif t is ToolCallStart or t is BuiltinTool:
            return True
    return False


def nothing(what: str) -> ProviderError:
    """The error for a response that ended with neither content nor a finish reason nor an
    error: never a silent empty answer. ``what`` names the decode (``"Anthropic stream"``)."""
    return malformed(f"{what} ended with neither content nor a finish reason nor an error")


# -- what a history sends back ----------------------------------------------------------

def json_object(text: str) -> dict[str, Any] | None:
    """``text`` parsed when it is a JSON object, else None."""
    try:
        value = _decoder.decode(text)
    except (msgspec.DecodeError, UnicodeError):  # lone surrogates cannot be JSON either
        return None
    return value if isinstance(value, dict) else None


def arguments_object(call: ToolCallPart) -> dict[str, Any]:
    """The call's arguments as the JSON object a function call carries: the parsed
    arguments; ``{"input": <text>}`` for a freeform ``custom`` call; ``{}`` when the
    arguments are not a JSON object (a call cut off by the token limit), because a history
    holding invalid JSON is refused by every provider."""
    if call.kind == "custom":
        return {"input": call.arguments}
    return json_object(call.arguments) or {}


def function_arguments(call: ToolCallPart) -> str:
    """``arguments_object`` as JSON text; arguments that already are a JSON object are
    returned unchanged, byte for byte."""
    if call.kind == "custom":
        return msgspec.json.encode({"input": call.arguments}).decode()
    return call.arguments if json_object(call.arguments) is not None else "{}"


def arguments_replaced(call: ToolCallPart) -> bool:
    """Whether the history sends ``{}`` instead of what the model sent for this call (its
    arguments are not a JSON object). Pure: the conductor uses it to say so in the call's
    result and on the console."""
    return call.kind != "custom" and json_object(call.arguments) is None


# Where a protocol has only function tools, each client-run kind is offered as a function
# whose arguments are the JSON that the Responses item carries (``ToolKind``), so a call
# reads the same whichever provider made it. Shapes: openai-python
# ``types/responses/response_function_shell_tool_call.py`` (``Action``),
# ``response_input_item_param.py`` (``LocalShellCallAction``) and
# ``response_apply_patch_tool_call.py`` (``Operation``).
_KIND_SCHEMAS: dict[str, dict[str, Any]] = {
    "shell": {"type": "object", "properties": {
        "commands": {"type": "array", "items": {"type": "string"},
                     "description": "shell commands to run, in order"},
        "timeout_ms": {"type": "integer"},
        "max_output_length": {"type": "integer"}}, "required": ["commands"]},
    "local_shell": {"type": "object", "properties": {
        "type": {"type": "string", "enum": ["exec"]},
        "command": {"type": "array", "items": {"type": "string"},
                    "description": "the program and its arguments"},
        "env": {"type": "object", "additionalProperties": {"type": "string"}},
        "working_directory": {"type": "string"},
        "timeout_ms": {"type": "integer"}}, "required": ["command"]},
    "apply_patch": {"type": "object", "properties": {
        "type": {"type": "string", "enum": ["create_file", "update_file", "delete_file"]},
        "path": {"type": "string", "description": "relative to the workspace"},
        "diff": {"type": "string", "description": "V4A diff (not for delete_file)"}},
        "required": ["type", "path"]},
}
_DEFAULT_PARAMETERS = ToolSpec("_").parameters


def function_parameters(spec: ToolSpec) -> dict[str, Any]:
    """The JSON Schema a tool is offered with as a function: its ``parameters``; for a
    ``custom`` tool one string ``input`` (the freeform text, its grammar in the
    description); for ``shell`` / ``local_shell`` / ``apply_patch`` tools without their own
    parameters, the schema of the Responses item's ``action`` / ``operation``."""
    if spec.kind == "custom":
        about = "the freeform input"
        fmt = spec.format or {}
        if fmt.get("type") == "grammar" and isinstance(fmt.get("definition"), str):
            about += (f", which must match this {fmt.get('syntax', 'lark')} grammar:\n"
                      f"{fmt['definition']}")
        return {"type": "object", "properties": {"input": {"type": "string",
                                                           "description": about}},
                "required": ["input"]}
    if spec.kind != "function" and spec.parameters == _DEFAULT_PARAMETERS:
        return _KIND_SCHEMAS[spec.kind]
    return spec.parameters
