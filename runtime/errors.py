"""The error taxonomy.

::

    ConductorError                     anything this project raises on purpose
    ├── ConfigError                    agent.yaml / CLI usage (exit 2)
    ├── ProviderError                  a provider call failed; ``kind`` says how
    │     kind: auth | permission | not_found | bad_request | context_length
    │           | rate_limited | overloaded | server | timeout | connection
    │           | stream_interrupted | malformed_response | streaming_unsupported
    └── ActorFailed                    an actor died; its failure is the ``__cause__``

``error_from_response`` builds a ``ProviderError`` from status + headers + body: a pure
function, so every provider and the fake server agree on it. Foreign exceptions (httpx's)
are mapped once, at the HTTP edge, with ``raise ... from exc``.
"""

from __future__ import annotations

import email.utils
import enum
import time
from collections.abc import Callable, Mapping
from typing import Any

import msgspec

__all__ = [
    "RETRYABLE",
    "ActorFailed",
    "ConductorError",
    "ConfigError",
    "ErrorKind",
    "ProviderError",
    "error_from_response",
    "parse_retry_after",
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


RETRYABLE = frozenset({
    ErrorKind.RATE_LIMITED, ErrorKind.OVERLOADED, ErrorKind.SERVER, ErrorKind.TIMEOUT,
    ErrorKind.CONNECTION, ErrorKind.STREAM_INTERRUPTED,
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
}


class ConductorError(Exception):
    """Base of every error this project raises on purpose."""


class ConfigError(ConductorError):
    """A wrong agent.yaml or command line: names the file, the key path and the fix."""

    def __init__(self, message: str, *, file: str | None = None, path: str | None = None,
                 fix: str | None = None) -> None:
        self.file = file
        self.path = path
        self.fix = fix
        self.message = message
        where = ": ".join(x for x in (file, path) if x)
        text = f"{where}: {message}" if where else message
        if fix:
            text += f" (fix: {fix})"
        super().__init__(text)


class ActorFailed(ConductorError):
    """An actor died; the original failure is attached as ``__cause__``."""

    def __init__(self, actor: str, message: str = "") -> None:
        self.actor = actor
        super().__init__(f"actor {actor} failed" + (f": {message}" if message else ""))


class ProviderError(ConductorError):
    """One failed provider call (or a failure reported inside a response)."""

    def __init__(
        self,
        kind: ErrorKind | str,
        message: str,
        *,
        provider: str | None = None,
        status: int | None = None,
        hint: str | None = None,
        details: str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
        type: str | None = None,
        code: str | int | None = None,
    ) -> None:
        self.kind = ErrorKind(kind)
        self.message = message
        self.provider = provider
        self.status = status
        self.hint = hint if hint is not None else HINTS[self.kind]
        self.details = details
        self.request_id = request_id
        self.retry_after = retry_after
        self.type = type
        self.code = code
        # True when the response had started producing output before it failed (a retry
        # must then take care not to show the user the same text twice).
        self.output_started = False
        # set when the circumstances decide it, e.g. a garbled chunk inside a 200 stream is
        # malformed_response (it is) and worth another try (the next stream may be whole)
        self.retry_safe: bool | None = None
        super().__init__(self.__str__())

    @property
    def retryable(self) -> bool:
        """Whether repeating the same request may succeed."""
        if self.retry_safe is not None:
            return self.retry_safe
        return self.kind in RETRYABLE

    def __str__(self) -> str:
        status = f" {self.status}" if self.status is not None else ""
        who = f"{self.provider} " if self.provider else ""
        return f"{who}{self.kind.value}{status}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "provider": self.provider, "kind": self.kind.value, "status": self.status,
            "message": self.message, "hint": self.hint, "details": self.details,
            "request_id": self.request_id, "retryable": self.retryable,
            "retry_after": self.retry_after, "type": self.type, "code": self.code,
        }


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds to wait from ``retry-after-ms``, ``retry-after`` (seconds or an HTTP date)."""
    lower = {k.lower(): v for k, v in headers.items()}
    ms = lower.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    ra = lower.get("retry-after")
    if not ra:
        return None
    ra = ra.strip()
    try:
        return max(0.0, float(ra))
    except ValueError:
        pass
    try:
        dt = email.utils.parsedate_to_datetime(ra)
    except (TypeError, ValueError, IndexError):
        return None
    if dt is None:
        return None
    return max(0.0, dt.timestamp() - (time.time() if now is None else now))


_CONTEXT_MARKERS = ("context_length", "context length", "context window", "maximum context",
                    "too many tokens", "prompt is too long", "input is too long",
                    "max_tokens_exceeded", "reduce the length", "context size",
                    "exceeds the available context", "context_length_exceeded")
_STREAM_MARKERS = ("stream not supported", "streaming is not supported",
                   "does not support streaming", "streaming not supported",
                   "stream is not supported", "unsupported_value\", \"param\": \"stream",
                   "'stream' is not supported", "\"stream\" is not supported",
                   "streaming is unavailable", "stream: true is not supported")


def _kind_from(status: int, etype: str, code: str, message: str, html: bool) -> ErrorKind:
    low = f"{etype} {code} {message}".lower()
    if any(m in low for m in _STREAM_MARKERS) or code in ("stream_unsupported",):
        return ErrorKind.STREAMING_UNSUPPORTED
    if status == 529 or etype == "overloaded_error" or "overloaded" in etype:
        return ErrorKind.OVERLOADED
    if status == 429 or etype in ("rate_limit_error", "rate_limit_exceeded", "slow_down") \
            or code in ("rate_limit_exceeded", "slow_down", "429"):
        if "insufficient_quota" in low:
            return ErrorKind.PERMISSION
        return ErrorKind.RATE_LIMITED
    if status == 401 or etype in ("authentication_error", "invalid_api_key") \
            or code == "invalid_api_key":
        return ErrorKind.AUTH
    if status == 403 or etype == "permission_error":
        return ErrorKind.PERMISSION
    if status == 404 or etype == "not_found_error" or code == "model_not_found":
        return ErrorKind.NOT_FOUND
    if status == 408 or status == 504 or "timeout" in etype:
        return ErrorKind.TIMEOUT
    if status in (400, 413, 422) or etype in ("invalid_request_error", "request_too_large"):
        if any(m in low for m in _CONTEXT_MARKERS) or status == 413:
            return ErrorKind.CONTEXT_LENGTH
        return ErrorKind.BAD_REQUEST
    if status >= 500 or etype in ("api_error", "server_error"):
        return ErrorKind.SERVER
    if html:
        return ErrorKind.MALFORMED_RESPONSE
    if 400 <= status < 500:
        return ErrorKind.BAD_REQUEST
    return ErrorKind.MALFORMED_RESPONSE


def _text_of_html(body: str) -> str:
    import re

    title = re.search(r"(?is)<title[^>]*>(.*?)</title>", body)
    if title and title.group(1).strip():
        return " ".join(title.group(1).split())
    h1 = re.search(r"(?is)<h1[^>]*>(.*?)</h1>", body)
    if h1:
        return " ".join(re.sub(r"<[^>]+>", " ", h1.group(1)).split())
    return " ".join(re.sub(r"<[^>]+>", " ", body).split())[:200]


def error_fields(payload: Any) -> tuple[str, str, str, str | int | None]:
    """(type, code, message, raw code) of a provider error object, any dialect."""
    if not isinstance(payload, dict):
        return "", "", "", None
    err = payload.get("error", payload)
    if isinstance(err, str):
        return "", "", err, None
    if not isinstance(err, dict):
        return "", "", "", None
    etype = err.get("type") or ""
    raw_code = err.get("code")
    msg = err.get("message") or payload.get("message") or ""
    if not isinstance(msg, str):
        msg = msgspec.json.encode(msg).decode()
    meta = err.get("metadata")
    if isinstance(meta, dict) and isinstance(meta.get("raw"), str) and meta["raw"]:
        msg = f"{msg} ({meta['raw'][:200]})" if msg else meta["raw"]
    return str(etype), "" if raw_code is None else str(raw_code), msg, raw_code


def error_from_response(
    status: int,
    headers: Mapping[str, str],
    body: bytes | str,
    *,
    provider: str | None = None,
    redact: Callable[[str], str] | None = None,
) -> ProviderError:
    """Build the ``ProviderError`` for an HTTP error response (JSON, HTML or plain text)."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    lower = {k.lower(): v for k, v in headers.items()}
    ctype = lower.get("content-type", "")
    stripped = text.lstrip()
    html = "html" in ctype or stripped[:15].lower().startswith(("<!doctype", "<html"))
    etype = code = message = ""
    raw_code: str | int | None = None
    if not html and stripped[:1] in ("{", "["):
        try:
            etype, code, message, raw_code = error_fields(msgspec.json.decode(stripped))
        except msgspec.DecodeError:
            pass
    if not message:
        if html:
            message = _text_of_html(text) or "HTML error page"
        else:
            message = " ".join(text.split())[:200] or _status_phrase(status)
    kind = _kind_from(status, etype, code, message, html)
    red = redact or (lambda s: s)
    return ProviderError(
        kind,
        red(message),
        provider=provider,
        status=status,
        details=red(text[:400]),
        request_id=lower.get("request-id") or lower.get("x-request-id"),
        retry_after=parse_retry_after(lower),
        type=etype or None,
        code=raw_code,
    )


def error_from_payload(payload: Any, *, status: int | None = None, in_stream: bool = True
                       ) -> tuple[ErrorKind, str, str | None, str | int | None]:
    """Kind, message, type and code of an error object that arrived inside a response."""
    etype, code, message, raw_code = error_fields(payload)
    st = status
    if st is None and isinstance(raw_code, int) and 400 <= raw_code < 600:
        st = raw_code
    kind = _kind_from(st or 500, etype, code, message or "error", False)
    return kind, message or "provider reported an error", etype or None, raw_code


def _status_phrase(status: int) -> str:
    from http import HTTPStatus

    try:
        return f"HTTP {status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"HTTP {status}"


def error_from_event(kind: str, message: str, *, provider: str | None = None,
                     status: int | None = None, type: str | None = None,
                     code: str | int | None = None, details: str | None = None) -> ProviderError:
    """The ``ProviderError`` for an error reported inside a response (``ErrorEvent``)."""
    return ProviderError(kind, message, provider=provider, status=status, type=type, code=code,
                         details=details)
