"""The error kinds and the one table that decides them (pure, no I/O).

``classify(Facts)`` reads an error report (an HTTP status or none, the provider's error
``type``, ``code`` and message, whether the body is an HTML page, whether it said when to
retry) against ``RULES``, top to bottom, first match wins; the last rule matches
everything, so every report gets exactly one kind. ``RETRYABLE`` says which kinds are worth
another try and ``HINTS`` what a user can do about each. ``local_cause`` finds a shortage of
this machine's resources (open files, memory, ports) behind an exception chain.
``runtime.errors`` builds ``ProviderError`` s on top of this.
"""

from __future__ import annotations

import enum
import errno
from collections.abc import Callable

import attrs

__all__ = [
    "HINTS",
    "LOCAL_ERRNOS",
    "RETRYABLE",
    "RULES",
    "ErrorKind",
    "Facts",
    "classify",
    "local_cause",
]


class ErrorKind(enum.StrEnum):
    AUTH = "auth"
    PERMISSION = "permission"
    NOT_FOUND = "not_found"
    BAD_REQUEST = "bad_request"
    CONTEXT_LENGTH = "context_length"
    RATE_LIMITED = "rate_limited"
    OVERLOADED = "overloaded"
    SERVER = "server"
    TIMEOUT = "timeout"
    CONNECTION = "connection"
    STREAM_INTERRUPTED = "stream_interrupted"
    MALFORMED_RESPONSE = "malformed_response"
    STREAMING_UNSUPPORTED = "streaming_unsupported"
    QUOTA = "quota"
    LOCAL_RESOURCE = "local_resource"


RETRYABLE = frozenset({
    ErrorKind.RATE_LIMITED, ErrorKind.OVERLOADED, ErrorKind.SERVER, ErrorKind.TIMEOUT,
    ErrorKind.CONNECTION, ErrorKind.STREAM_INTERRUPTED, ErrorKind.LOCAL_RESOURCE,
})

HINTS: dict[ErrorKind, str] = {
    ErrorKind.AUTH: "check the API key of this provider (api_key in agent.yaml or its env var)",
    ErrorKind.PERMISSION: "the key is valid but may not use this model or feature; check the "
                          "account's access or pick another model",
    ErrorKind.NOT_FOUND: "check the model name and base_url (OpenAI kinds end in /v1)",
    ErrorKind.BAD_REQUEST: "the provider rejected the request; see details for the field it names",
    ErrorKind.CONTEXT_LENGTH: "the conversation is longer than the model's context window: "
                              "shorten it, lower max_tokens or use a larger-context model",
    ErrorKind.RATE_LIMITED: "rate limited: wait and retry, or lower rate_limit in agent.yaml",
    ErrorKind.OVERLOADED: "the provider is overloaded: retry later or configure a fallback",
    ErrorKind.SERVER: "provider-side failure: retry later or configure a fallback",
    ErrorKind.TIMEOUT: "no answer in time: raise timeout.read/total or retry",
    ErrorKind.CONNECTION: "could not reach the provider: check base_url and the network",
    ErrorKind.STREAM_INTERRUPTED: "the stream broke mid-response: the turn can be retried",
    ErrorKind.MALFORMED_RESPONSE: "the provider sent something that is not its protocol "
                                  "(a proxy page?): check base_url and kind",
    ErrorKind.STREAMING_UNSUPPORTED: "this provider or model refuses streaming: set stream: false",
    ErrorKind.QUOTA: "quota or billing: add credit or raise the spending limit of this key; "
                     "a fallback provider takes the turn if configured",
    ErrorKind.LOCAL_RESOURCE: "this machine ran out of a resource (open files, memory, "
                              "ports), not the provider: raise the open-file limit "
                              "(ulimit -n) or lower concurrency; the request is retried",
}


# --- classification: one table, first matching rule wins -------------------------------

_CONTEXT_MARKERS = ("context_length", "context length", "context window", "maximum context",
                    "too many tokens", "prompt is too long", "input is too long",
                    "max_tokens_exceeded", "reduce the length", "context size",
                    "exceeds the available context", "context_length_exceeded")
_STREAM_MARKERS = ("stream not supported", "streaming is not supported",
                   "does not support streaming", "streaming not supported",
                   "stream is not supported", "unsupported_value\", \"param\": \"stream",
                   "'stream' is not supported", "\"stream\" is not supported",
                   "streaming is unavailable", "stream: true is not supported")
# Quota and billing: the key has no money or reached its spending cap. An exact ``type`` or
# ``code`` is decisive; a phrase alone is too, unless a 429 also says when to retry (Gemini
# words its per-minute free-tier limit "exceeded your current quota ... retry in 21s").
_QUOTA_IDS = frozenset({
    "insufficient_quota",          # OpenAI (429, or in a stream / response.failed)
    "billing_hard_limit_reached",  # OpenAI (400)
    "billing_not_active",          # OpenAI (429)
    "billing_error",               # Anthropic (402, or an error event in a stream)
    "insufficient_credits",        # OpenAI-compatible gateways (402)
    "insufficient_balance",        # DeepSeek-style codes
    "payment_required",            # Gemini, OpenRouter (402)
    "terminal_quota_exhausted",    # LiteLLM hard cap (429)
})
_QUOTA_MARKERS = (
    "insufficient_quota", "exceeded your current quota",     # OpenAI
    "billing hard limit", "hard billing limit",              # OpenAI
    "credit balance is too low",                             # Anthropic (400)
    "usage is blocked due to insufficient credits",          # Anthropic
    "reached your specified api usage limits",               # Anthropic spend limit (400)
    "insufficient credits", "requires more credits",         # OpenRouter (402)
    "insufficient balance",                                  # DeepSeek (402)
    "out of credits", "purchase credits", "add more credits",
    "spending limit", "payment required",
)
_RETRY_SOON = ("retry in", "try again in", "please retry after", "retry after")
_RATE_IDS = frozenset({"rate_limit_error", "rate_limit_exceeded", "slow_down", "429"})
# A 5xx (or a status-less error) whose body says the request itself is malformed fails the
# same way every time. llama.cpp answers 500 when the history it is sent has a tool call
# whose arguments are not JSON, or messages/tools it cannot read; chat templates raise on a
# conversation they refuse (llama.cpp, vLLM, LM Studio); TGI reports "Input validation
# error". Deliberately absent: Ollama's "error parsing tool call", which is about the
# model's own output and differs from one try to the next.
_MALFORMED_REQUEST_MARKERS = (
    "failed to parse tool call arguments as json",     # llama.cpp (500)
    "failed to parse messages",                        # llama.cpp (500)
    "failed to parse tools",                           # llama.cpp (500)
    "invalid tool_choice",                             # llama.cpp
    "conversation roles must alternate",               # chat templates (500)
    "error rendering prompt with jinja template",      # LM Studio
    "input validation error",                          # text-generation-inference
    "invalid 'messages",                               # OpenAI-compatible validators
    "unable to parse request", "could not parse the json body",
)


@attrs.frozen
class Facts:
    """What an error report says, as the rules read it."""

    status: int | None      # None: no HTTP status (an error inside a 200 response)
    etype: str = ""         # the provider's error ``type``
    code: str = ""          # its ``code`` (as text)
    text: str = ""          # type, code and message, lower-cased, for marker search
    html: bool = False      # the body is an HTML page
    retry_after: bool = False  # the response said when to retry

    @classmethod
    def of(cls, status: int | None, etype: str = "", code: str = "", message: str = "", *,
           html: bool = False, retry_after: bool = False) -> Facts:
        return cls(status, etype, code, f"{etype} {code} {message}".lower(), html,
                   retry_after)


def _has(text: str, markers: tuple[str, ...]) -> bool:
    return any(m in text for m in markers)


def _quota(f: Facts) -> bool:
    if f.status == 402 or f.etype in _QUOTA_IDS or f.code in _QUOTA_IDS:
        return True
    if not _has(f.text, _QUOTA_MARKERS):
        return False
    return not (f.status == 429 and (f.retry_after or _has(f.text, _RETRY_SOON)))


def _server_side(f: Facts) -> bool:
    return f.status is None or f.status >= 500 or f.etype in ("api_error", "server_error")


Rule = tuple[str, Callable[[Facts], bool], ErrorKind]
# (what the rule recognises, its test, the kind): read top to bottom, the first match wins
RULES: tuple[Rule, ...] = (
    ("streaming refused", lambda f: _has(f.text, _STREAM_MARKERS)
     or f.code == "stream_unsupported", ErrorKind.STREAMING_UNSUPPORTED),
    ("quota or billing", _quota, ErrorKind.QUOTA),
    ("overloaded", lambda f: f.status == 529 or "overloaded" in f.etype, ErrorKind.OVERLOADED),
    ("rate limited", lambda f: f.status == 429 or f.etype in _RATE_IDS or f.code in _RATE_IDS,
     ErrorKind.RATE_LIMITED),
    ("authentication", lambda f: f.status == 401 or f.code == "invalid_api_key"
     or f.etype in ("authentication_error", "invalid_api_key"), ErrorKind.AUTH),
    ("permission", lambda f: f.status == 403 or f.etype == "permission_error",
     ErrorKind.PERMISSION),
    ("not found", lambda f: f.status == 404 or f.etype == "not_found_error"
     or f.code == "model_not_found", ErrorKind.NOT_FOUND),
    ("timeout", lambda f: f.status in (408, 504) or "timeout" in f.etype, ErrorKind.TIMEOUT),
    ("context too long", lambda f: f.status == 413 or _has(f.text, _CONTEXT_MARKERS),
     ErrorKind.CONTEXT_LENGTH),
    ("request rejected", lambda f: f.status in (400, 422)
     or f.etype in ("invalid_request_error", "request_too_large"), ErrorKind.BAD_REQUEST),
    ("malformed request (the same every time)",
     lambda f: _has(f.text, _MALFORMED_REQUEST_MARKERS), ErrorKind.BAD_REQUEST),
    ("provider-side failure", _server_side, ErrorKind.SERVER),
    ("a page, not the protocol", lambda f: f.html, ErrorKind.MALFORMED_RESPONSE),
    ("other client error", lambda f: f.status is not None and 400 <= f.status < 500,
     ErrorKind.BAD_REQUEST),
    ("anything else", lambda f: True, ErrorKind.MALFORMED_RESPONSE),
)


def classify(facts: Facts) -> ErrorKind:
    """The kind of an error report: the first rule of ``RULES`` that matches. Total: the
    last rule matches everything."""
    for _, test, kind in RULES:
        if test(facts):
            return kind
    raise AssertionError("unreachable: the last rule matches everything")  # pragma: no cover


# --- local resources: our machine, not the provider ------------------------------------

LOCAL_ERRNOS: dict[int, tuple[str, str]] = {
    errno.EMFILE: ("too many open files in this process",
                   "raise the open-file limit (ulimit -n) or lower concurrency"),
    errno.ENFILE: ("too many open files on this machine",
                   "raise the system's open-file limit (fs.file-max) or lower concurrency"),
    errno.ENOMEM: ("out of memory", "free memory or lower concurrency"),
    errno.ENOBUFS: ("no buffer space left for sockets",
                    "lower concurrency or raise the kernel's socket buffer limits"),
    errno.EADDRNOTAVAIL: ("no free local port (ephemeral ports exhausted)",
                          "lower concurrency or widen net.ipv4.ip_local_port_range"),
}


def local_cause(exc: BaseException) -> int | None:
    """The errno of a local resource shortage behind ``exc`` (walking ``__cause__`` /
    ``__context__``), or None. The first ``OSError`` with an errno decides; an exception
    group (one failure per address tried) is local only when every member is."""
    seen: set[int] = set()
    node: BaseException | None = exc
    while node is not None and id(node) not in seen:
        seen.add(id(node))
        if isinstance(node, BaseExceptionGroup):
            found = [local_cause(e) for e in node.exceptions]
            return found[0] if found and all(c is not None for c in found) else None
        if isinstance(node, OSError) and node.errno is not None:
            return node.errno if node.errno in LOCAL_ERRNOS else None
        node = node.__cause__ or node.__context__
    return None
