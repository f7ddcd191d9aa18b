"""Every transcript record as a msgspec tagged struct (the ``type`` field is the tag).

A run folder's ``transcript.jsonl`` holds one record a line, in the order the session made
them; the same records are what ``Session.events()`` yields live and what the service
streams. Every record carries ``ts`` (epoch seconds), ``run_id``, ``turn`` and ``seq`` (its
1-based position in the journal), stamped by the session when it is emitted.

The conversation can be rebuilt from the records alone (``restore.fold``): ``session_start``
(its ``task``) and ``user`` add user messages, a complete ``assistant`` adds the assistant's
parts (opaque reasoning payloads live encrypted in ``reasoning.enc``), ``tool_result`` adds
the results, ``context_compacted`` says what was elided or summarized. The other records
are observability: requests, usage, errors, warnings.

``TextDelta`` is live only (never written): a piece of the answer as it streams.

Pure: no I/O, no trio.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from ..model import Part

__all__ = [
    "RECORD_TYPES",
    "ApprovalDecision",
    "ApprovalRequest",
    "AssistantRecord",
    "CacheRecord",
    "ContextCompacted",
    "Event",
    "ProviderErrorRecord",
    "ReasoningRecord",
    "Record",
    "RecordBase",
    "RequestRecord",
    "SessionEnd",
    "SessionStart",
    "TextDelta",
    "ToolCallRecord",
    "ToolRejected",
    "ToolResultRecord",
    "ToolStart",
    "TurnEnd",
    "UsageRecord",
    "UserMessage",
    "WarningCode",
    "WarningRecord",
    "clean_text",
    "decode_line",
    "encode_record",
    "sanitize",
]


class RecordBase(msgspec.Struct, kw_only=True, tag_field="type"):
    """What every record has; the session stamps these when it emits the record."""

    ts: float = 0.0
    run_id: str = ""
    turn: int = 0
    seq: int = 0

    @property
    def type(self) -> str:
        """The record type (the tag written as ``type``)."""
        tag: str = self.__struct_config__.tag  # type: ignore[assignment]
        return tag


class SessionStart(RecordBase, tag="session_start", kw_only=True):
    """A run (or a resumed run) began. ``task`` is the user message it adds, if any;
    ``process`` (host, pid, start time) tells a run still going in another process from one
    that was cut short (``runtime.session.liveness``)."""

    task: str | None = None
    providers: list[str] = msgspec.field(default_factory=list)
    model: str = ""
    tools: list[str] = msgspec.field(default_factory=list)
    resumed: bool = False
    metadata: dict[str, Any] | None = None
    process: dict[str, Any] | None = None


class UserMessage(RecordBase, tag="user", kw_only=True):
    """A further user message (``Session.send``, ``--resume --task``)."""

    text: str = ""


class RequestRecord(RecordBase, tag="request", kw_only=True):
    """One HTTP attempt started (or a cache hit was served)."""

    provider: str = ""
    model: str = ""
    attempt: int = 1
    stream: bool = True
    request_id: str = ""


class AssistantRecord(RecordBase, tag="assistant", kw_only=True):
    """A response: ``complete`` (it joins the conversation) or ``interrupted`` (the turn was
    cancelled mid-stream: what had arrived, for the record only). ``parts`` are the
    response's parts without opaque reasoning payloads."""

    provider: str = ""
    model: str | None = None
    request_id: str = ""
    provider_request_id: str | None = None
    attempts: int = 1
    cached: bool = False
    text: str = ""
    finish_reason: str | None = None
    stop: str = "other"
    duration: float = 0.0
    ttft: float | None = None
    status: Literal["complete", "interrupted"] = "complete"
    parts: list[Part] | None = None
    connection: Literal["new", "reused"] | None = None  # how the attempt got its connection
    pool_wait: float | None = None   # seconds it waited for one (every connection busy)


class ReasoningRecord(RecordBase, tag="reasoning", kw_only=True):
    """The readable text of a reasoning trace (never a signature or encrypted payload)."""

    provider: str = ""
    kind: str = "reasoning"
    text: str = ""
    request_id: str = ""


class ToolCallRecord(RecordBase, tag="tool_call", kw_only=True):
    call_id: str = ""
    name: str = ""
    arguments: str = ""
    kind: str = "function"
    request_id: str = ""


class ToolStart(RecordBase, tag="tool_start", kw_only=True):
    """A tool call is about to run (on disk before it starts: a resumed session knows which
    calls may have taken effect)."""

    call_id: str = ""
    name: str = ""


class ToolResultRecord(RecordBase, tag="tool_result", kw_only=True):
    """The result of one call as the model gets it; ``request_id`` is the response that
    asked for the call."""

    call_id: str = ""
    name: str = ""
    ok: bool = True
    content: Any = ""
    duration: float = 0.0
    kind: str = "function"
    meta: dict[str, Any] | None = None
    rejected: bool = False
    interrupted: bool = False
    request_id: str = ""


class ToolRejected(RecordBase, tag="tool_rejected", kw_only=True):
    """A call that did not run (validation or approval); ``errors`` says why."""

    call_id: str = ""
    name: str = ""
    errors: list[str] = msgspec.field(default_factory=list)


class ApprovalRequest(RecordBase, tag="approval_request", kw_only=True):
    """An ``approval: ask`` call waits for ``Session.approve``."""

    call_id: str = ""
    name: str = ""
    arguments: Any = None


class ApprovalDecision(RecordBase, tag="approval", kw_only=True):
    """The answer to an ``approval_request``; ``always``: every later call of the same tool
    in this session is allowed without asking."""

    call_id: str = ""
    allow: bool = False
    reason: str | None = None
    by: str | None = None
    always: bool = False


class UsageRecord(RecordBase, tag="usage", kw_only=True):
    provider: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    cost_usd: float | None = None
    cached: bool = False
    estimated: bool = False
    request_id: str = ""


class CacheRecord(RecordBase, tag="cache", kw_only=True):
    provider: str = ""
    outcome: Literal["hit", "miss", "store"] = "miss"
    key: str = ""


WarningCode = Literal[
    "failover",            # a turn moved to a fallback provider
    "reasoning_dropped",   # foreign opaque reasoning not sent to another provider
    "stream_recovery",     # a retried stream resumes text already shown
    "circuit_open",        # a provider was skipped: its circuit is open
    "circuit_wait",        # waiting for an open circuit's probe (no fallback)
    "streaming_disabled",  # the provider refused streaming; asked without it
    "unpriced",            # no price known for a model
    "hook_disabled",       # a telemetry hook raised and was disabled
    "trace_key",           # reasoning traces use a generated key
    "length_cutoff",       # the answer ended at the output token limit
    "arguments_replaced",  # invalid tool-call arguments sent back as {}
    "tool_interrupted",    # a tool call without result was closed on resume
    "context_window",      # a provider's window is unknown, or read from elsewhere than said
    "context",             # a compaction fell back (summary failed) or could not fit
    "mcp",                 # an MCP server crashed, restarted or is down
    "resumed",             # a resumed run repaired its journal
    "model_switch",        # the next turns go to another provider entry or model (Session.switch)
    "other",
]


class WarningRecord(RecordBase, tag="warning", kw_only=True):
    """Something the user should know; ``code`` says what (``WarningCode``). A circuit
    refusal carries the ``attempt`` it used and the ``delay`` before the next one."""

    message: str = ""
    code: WarningCode = "other"
    provider: str | None = None
    request_id: str | None = None
    attempt: int | None = None
    delay: float | None = None


class ProviderErrorRecord(RecordBase, tag="provider_error", kw_only=True):
    """One failed attempt (also in ``errors/turn_<n>.json``)."""

    provider: str = ""
    model: str = ""
    kind: str = ""
    status: int | None = None
    message: str = ""
    details: str | None = None
    hint: str = ""
    attempt: int = 1
    attempts: int = 1
    request_id: str = ""
    provider_request_id: str | None = None
    retryable: bool = False
    delay: float | None = None
    will_retry: bool = False
    output_started: bool = False
    connection: Literal["new", "reused"] | None = None  # None: no response head came
    pool_wait: float | None = None


class ContextCompacted(RecordBase, tag="context_compacted", kw_only=True):
    """The conversation was shrunk to fit the context window of ``provider`` before a
    request (``reason`` says why: over budget, a provider's context-length refusal, or a
    ``/compact``). Replayed in this order by a resumed session (``restore.compact_replay``):

    * ``elided``: the call ids whose results became elision markers;
    * ``reasoning_dropped``: the positions (in the conversation as the journal rebuilds it)
      of the assistant messages whose reasoning was dropped, whole;
    * ``summarized``: the messages ``[start, end)`` that one user message replaced, whose
      text is ``summary`` and whose meta is ``summary_meta``: the model's summary
      (``strategy: summarize``; ``request_id`` is the summary request) or a note naming
      removed turns; ``summarized_turns`` are the turn numbers they held.

    ``tokens_before`` / ``tokens_after`` are estimates in the provider's tokens, against
    ``budget`` (``window`` minus ``reserve_output``); ``harder`` after a refusal."""

    strategy: str = ""
    provider: str = ""
    reason: str | None = None
    harder: bool = False
    tokens_before: int = 0
    tokens_after: int = 0
    budget: int = 0
    window: int = 0
    elided: list[str] = msgspec.field(default_factory=list)
    reasoning_dropped: list[int] = msgspec.field(default_factory=list)
    summarized: list[int] | None = None
    summarized_turns: list[int] | None = None
    summary: str | None = None
    summary_meta: dict[str, Any] | None = None
    request_id: str | None = None
    status: str = "compacted"


class TurnEnd(RecordBase, tag="turn_end", kw_only=True):
    finish: str = "other"


class SessionEnd(RecordBase, tag="session_end", kw_only=True):
    status: str = ""
    exit_code: int = 0
    turns: int = 0
    totals: dict[str, Any] = msgspec.field(default_factory=dict)
    message: str | None = None


class TextDelta(RecordBase, tag="text_delta", kw_only=True):
    """Live only: a piece of the answer as it streams (never in the journal)."""

    text: str = ""
    request_id: str = ""


Record = (SessionStart | UserMessage | RequestRecord | AssistantRecord | ReasoningRecord
          | ToolCallRecord | ToolStart | ToolResultRecord | ToolRejected | ApprovalRequest
          | ApprovalDecision | UsageRecord | CacheRecord | WarningRecord | ProviderErrorRecord
          | ContextCompacted | TurnEnd | SessionEnd)
"""A journal record."""

Event = Record | TextDelta
"""What ``Session.events()`` yields."""

RECORD_TYPES: dict[str, type[RecordBase]] = {
    cls.__struct_config__.tag: cls  # type: ignore[misc]
    for cls in (SessionStart, UserMessage, RequestRecord, AssistantRecord, ReasoningRecord,
                ToolCallRecord, ToolStart, ToolResultRecord, ToolRejected, ApprovalRequest,
                ApprovalDecision, UsageRecord, CacheRecord, WarningRecord, ProviderErrorRecord,
                ContextCompacted, TurnEnd, SessionEnd, TextDelta)
}

_decoder = msgspec.json.Decoder(Event)
_encoder = msgspec.json.Encoder()


def encode_record(rec: RecordBase) -> bytes:
    """One JSON line (without the newline)."""
    return _encoder.encode(rec)


def decode_line(line: bytes | str) -> Event | None:
    """A journal line as its typed record; ``None`` for a line of an unknown type (a newer
    or foreign writer) or a broken one (a torn last line after a crash)."""
    try:
        return _decoder.decode(line)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


def clean_text(text: str) -> str:
    """``text`` as valid UTF-8: surrogate pairs joined, lone surrogates (a careless decoder,
    a ``surrogateescape`` file name) replaced by U+FFFD. Free when the text is valid."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def sanitize(value: Any) -> Any:
    """A JSON-like value (msgspec builtins) with every string valid UTF-8."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {(clean_text(k) if isinstance(k, str) else k): sanitize(v)
                for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [sanitize(v) for v in value]
    return value
