"""The error taxonomy.

::

    ConductorError                     anything this project raises on purpose
    ├── ConfigError                    agent.yaml / CLI usage (exit 2)
    ├── ProviderError                  a provider call failed; ``kind`` says how
    │     kind, never retried: auth | permission | not_found | bad_request
    │           | context_length | quota (billing: no credit, spending cap reached)
    │           | malformed_response | streaming_unsupported (asked again unstreamed)
    │     kind, retried: rate_limited | overloaded | server | timeout | connection
    │           | stream_interrupted | local_resource (this machine, not the provider:
    │           open files, memory, ports; never counted by the circuit breaker)
    └── ActorFailed                    an actor died; its failure is the ``__cause__``

``runtime.error_kinds.classify`` decides the kind of every error report (an HTTP error,
an error object in a 200 body or stream) from one table of rules; ``error_from_response``
and ``error_from_payload`` build on it. All pure, so every provider and the fake server
agree. Foreign exceptions (httpx's) are mapped once, at the HTTP edge, with ``raise ...
from exc``; ``local_cause`` finds a local resource shortage (EMFILE, ENOMEM, ...) behind
one and ``local_resource_error`` reports it.
"""

from __future__ import annotations

import email.utils
import errno
import time
from collections.abc import Callable, Mapping
from typing import Any

import msgspec

from .error_kinds import (
    HINTS,
    LOCAL_ERRNOS,
    RETRYABLE,
    ErrorKind,
    Facts,
    classify,
    local_cause,
)

__all__ = [
    "HINTS",
    "RETRYABLE",
    "ActorFailed",
    "ConductorError",
    "ConfigError",
    "ErrorKind",
    "Facts",
    "ProviderError",
    "classify",
    "error_from_payload",
    "error_from_response",
    "local_cause",
    "local_resource_error",
    "parse_retry_after",
    "sole_exception",
]


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


def local_resource_error(code: int, doing: str, *, provider: str | None = None,
                         request_id: str | None = None) -> ProviderError:
    """The ``local_resource`` error for errno ``code`` met while ``doing`` something."""
    what, fix = LOCAL_ERRNOS.get(code, ("a resource of this machine ran out",
                                        "lower concurrency"))
    name = errno.errorcode.get(code, str(code))
    return ProviderError(ErrorKind.LOCAL_RESOURCE,
                         f"{what} ({name}) while {doing}: not the provider's fault",
                         provider=provider, request_id=request_id,
                         hint=f"{fix}; the request is retried and never counted against "
                              "the provider")


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
    retry_after = parse_retry_after(lower)
    kind = classify(Facts.of(status, etype, code, message, html=html,
                             retry_after=retry_after is not None))
    red = redact or (lambda s: s)
    return ProviderError(
        kind,
        red(message),
        provider=provider,
        status=status,
        details=red(text[:400]),
        request_id=lower.get("request-id") or lower.get("x-request-id"),
        retry_after=retry_after,
        type=etype or None,
        code=raw_code,
    )


def error_from_payload(payload: Any, *, status: int | None = None, in_stream: bool = True
                       ) -> tuple[ErrorKind, str, str | None, str | int | None]:
    """Kind, message, type and code of an error object that arrived inside a response (a
    200 stream or body): its HTTP-like ``code`` stands for the status when it has none."""
    etype, code, message, raw_code = error_fields(payload)
    st = status
    if st is None and isinstance(raw_code, int) and 400 <= raw_code < 600:
        st = raw_code
    kind = classify(Facts.of(st, etype, code, message))
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


def sole_exception(group: BaseExceptionGroup) -> BaseException | None:  # type: ignore[type-arg]
    """The only exception inside ``group`` (nested groups included), or None: a nursery
    whose one task failed raises that failure as itself, not wrapped in a group."""
    leaves: list[BaseException] = []
    stack: list[BaseException] = [group]
    while stack:
        exc = stack.pop()
        if isinstance(exc, BaseExceptionGroup):
            stack.extend(exc.exceptions)
        else:
            leaves.append(exc)
    return leaves[0] if len(leaves) == 1 else None
