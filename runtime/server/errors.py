"""The service's errors: one exception for every refusal, one JSON shape on the wire (pure).

Every error response is ``{"error": {"kind": ..., "message": ...}}`` (a validation error
also names the ``field``). ``ApiError`` carries the HTTP status, the kind, the message and
the headers that go with it (``WWW-Authenticate``, ``Retry-After``); handlers raise it and
the app turns it into the response, so no handler builds an error body by hand.

Kinds: ``unauthorized`` 401, ``forbidden`` 403, ``not_found`` 404, ``method_not_allowed``
405, ``conflict`` 409, ``payload_too_large`` 413, ``unsupported_media_type`` 415,
``validation`` 422, ``rate_limited`` 429, ``queue_full`` 429, ``internal`` 500,
``unavailable`` 503.
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

__all__ = ["ApiError", "ErrorBody", "ErrorDetail", "error_json"]


class ErrorDetail(msgspec.Struct, omit_defaults=True):
    kind: str
    message: str
    field: str | None = None


class ErrorBody(msgspec.Struct):
    """What every error response carries."""

    error: ErrorDetail


class ApiError(Exception):
    """A refusal with its HTTP status (see the module docstring)."""

    def __init__(self, status: int, kind: str, message: str, *,
                 headers: Mapping[str, str] | None = None, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind
        self.message = message
        self.headers = dict(headers or {})
        self.field = field

    def body(self) -> bytes:
        return error_json(self.kind, self.message, self.field)


_encoder = msgspec.json.Encoder()


def error_json(kind: str, message: str, field: str | None = None) -> bytes:
    return _encoder.encode(ErrorBody(ErrorDetail(kind, message, field)))
