"""Typed msgspec views of OpenAI Chat Completions responses (only the fields we read).

Decoding into these Structs is faster than decoding into dicts, and unknown fields
(``obfuscation``, ``x_groq``, ``timings``, ``native_finish_reason``, ...) are skipped by
msgspec. Unions cover what providers vary: Mistral sends ``content`` as a list of typed
chunks, some servers send tool ``arguments`` as an object. Shared by the stream and body
decoders of ``openai_chat``; pure, no I/O.
"""

from __future__ import annotations

from typing import Any

import msgspec

from ..events import Event, ReasoningDelta, TextDelta, UsageEvent
from ..model import Usage
from ._base import malformed

__all__ = [
    "CHUNK",
    "COMPLETION",
    "Chunk",
    "Completion",
    "Delta",
    "ToolCallFragment",
    "content_events",
    "detail_delta",
    "usage_event",
]

# reasoning slots (ReasoningDelta.index): one per kind, details after them
SLOT_CONTENT = 0  # DeepSeek / llama.cpp ``reasoning_content``
SLOT_REASONING = 1  # OpenRouter / Groq ``reasoning``
SLOT_THINKING = 2  # Mistral ``thinking`` content chunks
SLOT_DETAILS = 10  # OpenRouter ``reasoning_details``: SLOT_DETAILS + detail index


class ThinkText(msgspec.Struct, gc=False):
    type: str = "text"
    text: str = ""


class ContentChunk(msgspec.Struct, gc=False):
    """A typed content chunk (Mistral): ``text`` or ``thinking`` (nested text parts)."""

    type: str = "text"
    text: str | None = None
    thinking: list[ThinkText] | str | None = None


class Function(msgspec.Struct, gc=False):
    name: str | None = None
    arguments: str | dict[str, Any] | None = None


class ToolCallFragment(msgspec.Struct, gc=False):
    index: int | None = None
    id: str | None = None
    type: str | None = None
    function: Function | None = None


class Delta(msgspec.Struct, gc=False):
    """A stream ``delta`` or a non-stream ``message`` (the same fields). ``function_call``
    is the legacy single call (``functions`` API) that older servers still send."""

    content: str | list[ContentChunk] | None = None
    reasoning_content: str | None = None
    reasoning: str | None = None
    reasoning_details: list[dict[str, Any]] | None = None
    tool_calls: list[ToolCallFragment] | None = None
    refusal: str | None = None
    function_call: Function | None = None


class Choice(msgspec.Struct, gc=False):
    index: int = 0
    delta: Delta | None = None
    message: Delta | None = None
    finish_reason: str | None = None


class Chunk(msgspec.Struct, gc=False):
    """A stream chunk after the first: ``id`` / ``model`` are not decoded again (fewer
    string allocations on the hot path)."""

    choices: list[Choice] | None = None
    usage: dict[str, Any] | None = None
    error: Any = None


class Completion(Chunk, gc=False):
    """A non-stream body, or the first chunk of a stream."""

    id: str | None = None
    model: str | None = None


CHUNK = msgspec.json.Decoder(Chunk)
COMPLETION = msgspec.json.Decoder(Completion)


class _Details(msgspec.Struct):
    cached_tokens: int | None = None
    cache_write_tokens: int | None = None
    reasoning_tokens: int | None = None


class _Usage(msgspec.Struct):
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    prompt_tokens_details: _Details | None = None
    completion_tokens_details: _Details | None = None


def usage_event(raw: dict[str, Any]) -> UsageEvent:
    """Canonical usage from a chat ``usage`` object: ``prompt_tokens`` already includes the
    cached tokens (OpenAI), so it is ``input_tokens`` as it stands."""
    try:
        u = msgspec.convert(raw, _Usage)
    except msgspec.ValidationError as exc:
        raise malformed(f"usage object has a wrong field: {exc}",
                        details=msgspec.json.encode(raw).decode()) from exc
    pd = u.prompt_tokens_details
    cd = u.completion_tokens_details
    inp = u.prompt_tokens or 0
    written = min((pd.cache_write_tokens or 0) if pd else 0, inp)
    # OpenRouter in front of Gemini reports a cache write's tokens as cached too; the parts
    # can never exceed the whole, so the reads are what is left (canonical usage)
    read = min((pd.cached_tokens or 0) if pd else 0, inp - written)
    return UsageEvent(
        Usage(
            input_tokens=inp,
            output_tokens=u.completion_tokens or 0,
            cache_read_tokens=read,
            cache_write_tokens=written,
            reasoning_tokens=(cd.reasoning_tokens or 0) if cd else 0,
        ),
        raw=raw,
    )


def content_events(content: list[ContentChunk], out: list[Event]) -> None:
    """Mistral typed content chunks: ``thinking`` -> reasoning, ``text`` -> text."""
    for c in content:
        if c.type == "thinking":
            th = c.thinking
            if isinstance(th, str):
                text = th
            elif th is None:
                text = c.text or ""
            else:
                text = "".join(t.text for t in th if t.type == "text")
            if text:
                out.append(ReasoningDelta(index=SLOT_THINKING, text=text, kind="thinking_chunk"))
        elif c.type == "text" and c.text:
            out.append(TextDelta(c.text))


def _opt_str(d: dict[str, Any], key: str) -> str | None:
    v = d.get(key)
    if v is None or isinstance(v, str):
        return v
    raise malformed(f"reasoning_details field {key!r} is {type(v).__name__}, not a string",
                    details=msgspec.json.encode(d).decode())


def detail_delta(detail: dict[str, Any], position: int, *, raw: bool) -> ReasoningDelta:
    """One OpenRouter ``reasoning_details`` entry as a reasoning delta of kind
    ``reasoning_details:<type>``; ``signature`` / ``data`` are the opaque payloads."""
    dtype = _opt_str(detail, "type") or "unknown"
    idx = detail.get("index")
    if not isinstance(idx, int) or isinstance(idx, bool):
        idx = position
    text = _opt_str(detail, "text")
    if text is None:
        text = _opt_str(detail, "summary")
    return ReasoningDelta(
        index=SLOT_DETAILS + idx,
        text=text or "",
        kind=f"reasoning_details:{dtype}",
        id=_opt_str(detail, "id"),
        signature=_opt_str(detail, "signature"),
        encrypted=_opt_str(detail, "data"),
        raw=detail if raw else None,
    )
