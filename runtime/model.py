"""The canonical model: one shape for messages, tools, requests and responses.

Every wire codec translates between this model and its provider's JSON; nothing above the
codecs ever sees a provider's format. All types are msgspec Structs so that they encode to
JSON (transcripts, state, cache) and decode back without loss.

Conversation shape:

* ``Message.role`` is ``user``, ``assistant`` or ``tool``. The system prompt lives in
  ``Request.system`` (each protocol places it differently).
* An assistant message holds, in order, the parts the model produced: ``ReasoningPart``,
  ``TextPart`` and ``ToolCallPart``.
* A ``tool`` message holds the ``ToolResultPart`` s answering the tool calls of the assistant
  message before it, in call order, each paired by ``call_id``.

Canonical usage (one convention for every provider, so cost is never counted twice):
``input_tokens`` counts every input token processed, cached or not; ``cache_read_tokens`` and
``cache_write_tokens`` are the parts of it read from / written to the prompt cache;
``output_tokens`` includes ``reasoning_tokens``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

__all__ = [
    "BuiltinToolPart",
    "ImagePart",
    "Message",
    "Params",
    "Part",
    "ReasoningPart",
    "Request",
    "Response",
    "Role",
    "TextPart",
    "ToolCallPart",
    "ToolKind",
    "ToolResultPart",
    "ToolSpec",
    "Usage",
    "normalize_finish",
]

Role = Literal["user", "assistant", "tool"]


class TextPart(msgspec.Struct, tag="text", omit_defaults=True):
    """Plain text. ``cache`` marks a prompt-cache breakpoint after this part (Anthropic
    ``cache_control``; ignored by protocols that cache automatically). ``meta`` holds what a
    protocol wants back with the text on the next turn and is not an id (the Responses
    message ``phase``: ``commentary`` / ``final_answer``)."""

    text: str
    cache: bool = False
    meta: dict[str, Any] | None = None


class ImagePart(msgspec.Struct, tag="image", omit_defaults=True):
    """An image given by URL, or inline as base64 ``data`` with its ``media_type``."""

    url: str | None = None
    data: str | None = None
    media_type: str | None = None


ToolKind = Literal["function", "custom", "shell", "local_shell", "apply_patch"]
"""How a client-run tool call is shaped on the wire. ``function``: JSON arguments (every
protocol). The others are OpenAI Responses items that the client must run too:
``custom`` (``custom_tool_call``: ``arguments`` is the freeform ``input`` text, not JSON),
``shell`` (``shell_call``), ``local_shell`` (``local_shell_call``) and ``apply_patch``
(``apply_patch_call``): for these ``arguments`` is the JSON of the item's ``action`` /
``operation``. Protocols without such items carry them as function calls."""


class ToolCallPart(msgspec.Struct, tag="tool_call", omit_defaults=True):
    """A call of a client tool. ``arguments`` is the text exactly as the model sent it: JSON
    for ``function`` calls (it may be malformed: validation happens before execution, not
    here), the freeform input for ``custom`` ones (see ``ToolKind``). ``id`` is the id a
    tool result refers to (Responses: the ``call_id``); ``item_id`` is the Responses output
    item id (``fc_...``, ``ctc_...``), kept for verbatim round trips; ``raw`` is the
    provider's whole item when the protocol wants it back as it was."""

    id: str
    name: str
    arguments: str = "{}"
    item_id: str | None = None
    kind: ToolKind = "function"
    raw: dict[str, Any] | None = None


class ToolResultPart(msgspec.Struct, tag="tool_result", omit_defaults=True):
    """The result of one tool call, paired with it by ``call_id``. ``kind`` is the kind of
    the call it answers (the Responses ``*_output`` item it becomes); ``meta`` holds what a
    kind's output item carries beyond text (``shell``: ``{"outputs": [{"stdout", "stderr",
    "exit_code" | "timed_out"}]}``; ``apply_patch``: ``{"status": "completed" | "failed"}``)."""

    call_id: str
    content: str | list[TextPart | ImagePart] = ""
    is_error: bool = False
    name: str | None = None
    kind: ToolKind = "function"
    meta: dict[str, Any] | None = None


class ReasoningPart(msgspec.Struct, tag="reasoning", omit_defaults=True):
    """A reasoning trace.

    ``text`` is the readable reasoning (Anthropic thinking text, a Responses summary, a
    chat-style ``reasoning_content``). ``signature`` (Anthropic thinking) and ``encrypted``
    (Responses ``encrypted_content``, Anthropic ``redacted_thinking`` data) are opaque and
    must go back to the provider that produced them byte for byte. ``raw`` is the provider's
    own item, passed back verbatim on the next turn when the same protocol drives it.
    ``source`` names the provider entry (and key) that produced it, so that failover never
    sends a foreign signature to another provider.
    """

    text: str = ""
    kind: str = "reasoning"
    id: str | None = None
    signature: str | None = None
    encrypted: str | None = None
    summary: list[str] = msgspec.field(default_factory=list)
    protocol: str | None = None
    source: str | None = None
    raw: dict[str, Any] | None = None

    @property
    def opaque(self) -> bool:
        """True when this part carries a payload only its producer can read."""
        return self.signature is not None or self.encrypted is not None


class BuiltinToolPart(msgspec.Struct, tag="builtin_tool", omit_defaults=True):
    """A provider-executed tool call or result (web search, code execution, ...): kept so
    that it can be sent back verbatim to the same protocol, never executed by us. Like a
    reasoning part it may hold payloads only its producer can read (Anthropic's encrypted
    search results), so ``source`` names the provider entry that produced it."""

    item_type: str
    id: str | None = None
    name: str | None = None
    protocol: str | None = None
    raw: dict[str, Any] | None = None
    source: str | None = None


Part = TextPart | ImagePart | ToolCallPart | ToolResultPart | ReasoningPart | BuiltinToolPart


class Message(msgspec.Struct, omit_defaults=True):
    role: Role
    parts: list[Part] = msgspec.field(default_factory=list)

    @classmethod
    def user(cls, text: str) -> Message:
        return cls("user", [TextPart(text)])

    @classmethod
    def assistant(cls, text: str) -> Message:
        return cls("assistant", [TextPart(text)])

    @property
    def text(self) -> str:
        return "".join(p.text for p in self.parts if isinstance(p, TextPart))

    @property
    def tool_calls(self) -> list[ToolCallPart]:
        return [p for p in self.parts if isinstance(p, ToolCallPart)]


class ToolSpec(msgspec.Struct, omit_defaults=True):
    """A tool offered to the model: ``parameters`` is a JSON Schema of an object. ``kind``
    other than ``function`` asks OpenAI Responses for its native item (``custom`` with an
    optional grammar ``format``, ``shell``, ``apply_patch``); other protocols offer every
    tool as a function."""

    name: str
    description: str = ""
    parameters: dict[str, Any] = msgspec.field(
        default_factory=lambda: {"type": "object", "properties": {}}
    )
    strict: bool | None = None  # OpenAI strict schema adherence; None = the protocol default
    kind: ToolKind = "function"
    format: dict[str, Any] | None = None  # custom tools: {"type": "grammar", ...} or text


class Params(msgspec.Struct, omit_defaults=True):
    """Sampling and protocol parameters. ``None`` means "the provider's default".

    The one definition: agent.yaml's ``providers.<name>.params`` decodes into this Struct
    (its ranges are checked then, with the key path in the error), and the conductor sends
    it as is. ``reasoning_effort`` (low/medium/high) drives OpenAI reasoning and OpenRouter;
    ``thinking_budget`` drives Anthropic extended thinking; ``extra`` is merged into the
    wire body last, for provider options this model does not name.
    """

    temperature: Annotated[float, msgspec.Meta(ge=0)] | None = None
    top_p: Annotated[float, msgspec.Meta(ge=0, le=1)] | None = None
    max_tokens: Annotated[int, msgspec.Meta(ge=1)] | None = None
    stop: list[str] | None = None
    seed: int | None = None
    tool_choice: str | None = None
    parallel_tool_calls: bool | None = None
    response_format: dict[str, Any] | None = None
    reasoning_effort: str | None = None
    reasoning_summary: str | None = None
    thinking_budget: Annotated[int, msgspec.Meta(ge=1)] | None = None
    extra: dict[str, Any] = msgspec.field(default_factory=dict)


class Request(msgspec.Struct, omit_defaults=True):
    """One turn's request, independent of any protocol.

    ``store`` / ``previous_response_id`` are OpenAI Responses threading controls;
    ``cache_system`` asks Anthropic to cache the system prompt and tools.
    ``metadata`` is volatile bookkeeping (request ids, user tags) that never changes the
    answer.
    """

    model: str
    messages: list[Message] = msgspec.field(default_factory=list)
    system: str | None = None
    tools: list[ToolSpec] = msgspec.field(default_factory=list)
    params: Params = msgspec.field(default_factory=Params)
    stream: bool = True
    store: bool | None = None
    previous_response_id: str | None = None
    cache_system: bool = False
    metadata: dict[str, Any] = msgspec.field(default_factory=dict)


class Usage(msgspec.Struct, omit_defaults=False):
    """Token counts in the canonical convention (see the module docstring)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cache_read_tokens + other.cache_read_tokens,
            self.cache_write_tokens + other.cache_write_tokens,
            self.reasoning_tokens + other.reasoning_tokens,
        )


class Response(msgspec.Struct, omit_defaults=True):
    """A finished response: the assistant's parts in order, why it stopped, what it cost."""

    id: str | None = None
    model: str | None = None
    parts: list[Part] = msgspec.field(default_factory=list)
    finish_reason: str | None = None
    stop: str = "other"
    usage: Usage | None = None
    usage_raw: dict[str, Any] | None = None
    refusal: str | None = None
    request_id: str | None = None  # the provider's request id, when it sent one

    @property
    def text(self) -> str:
        return "".join(p.text for p in self.parts if isinstance(p, TextPart))

    @property
    def text_parts(self) -> list[str]:
        return [p.text for p in self.parts if isinstance(p, TextPart)]

    @property
    def tool_calls(self) -> list[ToolCallPart]:
        return [p for p in self.parts if isinstance(p, ToolCallPart)]

    @property
    def reasoning(self) -> list[ReasoningPart]:
        return [p for p in self.parts if isinstance(p, ReasoningPart)]

    def message(self) -> Message:
        """The assistant message to append to the conversation."""
        return Message("assistant", list(self.parts))


_FINISH = {
    # chat completions
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
    "eos": "stop",
    "model_length": "length",
    "error": "error",
    # anthropic
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "pause_turn": "pause",
    "refusal": "content_filter",
    "model_context_window_exceeded": "length",
    # responses (status[:reason])
    "completed": "stop",
    "incomplete:max_output_tokens": "length",
    "incomplete:content_filter": "content_filter",
    "failed": "error",
    "cancelled": "error",
}


def normalize_finish(reason: str | None, has_tool_calls: bool = False) -> str:
    """Map a provider's finish reason to one of ``stop``, ``length``, ``tool_calls``,
    ``content_filter``, ``pause``, ``error`` or ``other``. A response that carries client
    tool calls is ``tool_calls`` whatever the provider said (Responses says ``completed``)."""
    if reason is None:
        return "tool_calls" if has_tool_calls else "other"
    norm = _FINISH.get(reason)
    if norm is None:
        norm = _FINISH.get(reason.split(":", 1)[0], "other")
    if has_tool_calls and norm == "stop":
        return "tool_calls"
    return norm
