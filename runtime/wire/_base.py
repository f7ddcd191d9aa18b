"""What every wire codec shares: the codec interface and the malformed-input error.

A codec module (``openai_chat``, ``openai_responses``, ``anthropic``) provides:

* ``PROTOCOL``: its protocol name;
* ``url(base_url) -> str``: the endpoint for a base URL (see ARCHITECTURE.md, "Base URLs");
* ``headers(api_key) -> dict[str, str]``: auth and protocol headers;
* ``encode_request(req, *, stream, dialect=None) -> dict``: the JSON body of a request;
* ``decode_body(body: bytes) -> list[Event]``: a non-streamed JSON body as events;
* ``StreamDecoder``: ``feed(SSEEvent) -> list[Event]`` and ``close() -> list[Event]``.

Codecs are pure: no I/O, no trio, no httpx. Every surprise in provider input becomes a
``ProviderError`` of kind ``malformed_response`` that says what was expected.
"""

from __future__ import annotations

from typing import Any, Protocol

import msgspec

from ..errors import ErrorKind, ProviderError
from ..events import Event
from ..model import Request
from .sse import SSEEvent

__all__ = ["Codec", "StreamDecoderProtocol", "json_of", "malformed"]


class StreamDecoderProtocol(Protocol):
    sse_events: int

    def feed(self, ev: SSEEvent) -> list[Event]: ...

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
        text = data if isinstance(data, str) else data.decode("utf-8", "replace")
        raise malformed(f"{what} is not valid JSON: {exc}", details=text) from exc
