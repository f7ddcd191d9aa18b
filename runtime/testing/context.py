"""The fake provider's context window: refuse a request larger than ``max_context_tokens``
with the vendor's own context-length error (pure).

The request's size is counted with the conductor's estimator (``runtime.context``) over
the canonical request its protocol's ``decode_request`` recovers, so it is deterministic
and agrees with what the conductor estimates before sending. The refusal bodies are the
vendors' (captured or documented) shapes:

* OpenAI Chat Completions / Responses: 400 ``invalid_request_error`` with code
  ``context_length_exceeded``: "This model's maximum context length is N tokens. However,
  your messages resulted in M tokens. Please reduce the length of the messages."
* Anthropic: 400 ``invalid_request_error``: "prompt is too long: M tokens > N maximum".
* llama.cpp's llama-server (``dialect="llama.cpp"``, on its OpenAI routes): 400
  ``exceed_context_size_error`` with ``n_prompt_tokens`` and ``n_ctx``
  (tests/local/captures/error_exceed_context_size.json).
"""

from __future__ import annotations

from typing import Any, Literal

from ..context.estimate import request_tokens
from .script import Raw, RecordedRequest

__all__ = ["ContextDialect", "context_refusal", "count_tokens"]

ContextDialect = Literal["vendor", "llama.cpp"]


def count_tokens(req: RecordedRequest) -> int:
    """The request's size in the estimator's tokens (its canonical messages, system
    prompt and tools)."""
    canonical = req.canonical
    return request_tokens(canonical.messages, canonical.system, canonical.tools)


def context_refusal(protocol: str, count: int, limit: int,
                    dialect: ContextDialect = "vendor") -> Raw:
    """The vendor's 400 for a prompt of ``count`` tokens over a ``limit``-token window."""
    body: dict[str, Any]
    if protocol == "anthropic":
        body = {"type": "error", "error": {
            "type": "invalid_request_error",
            "message": f"prompt is too long: {count} tokens > {limit} maximum"},
            "request_id": "req_fake_context"}
    elif dialect == "llama.cpp":
        body = {"error": {
            "code": 400, "type": "exceed_context_size_error",
            "message": (f"request ({count} tokens) exceeds the available context size "
                        f"({limit} tokens), try increasing it"),
            "n_prompt_tokens": count, "n_ctx": limit}}
    else:
        body = {"error": {
            "message": (f"This model's maximum context length is {limit} tokens. However, "
                        f"your messages resulted in {count} tokens. Please reduce the "
                        "length of the messages."),
            "type": "invalid_request_error",
            "param": "input" if protocol == "openai-responses" else "messages",
            "code": "context_length_exceeded"}}
    return Raw.json(400, body)
