"""Pure wire codecs, one module per protocol (sans I/O: no trio, no httpx).

``codec_for(protocol)`` returns the codec module of ``openai-chat``, ``openai-responses`` or
``anthropic``; the OpenRouter and local dialects are ``openai-chat`` with a ``dialect``.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..errors import ProviderError
    from ..events import Event

__all__ = ["PROTOCOLS", "codec_for", "decode_all"]

PROTOCOLS = {
    "openai-chat": "openai_chat",
    "openai-responses": "openai_responses",
    "anthropic": "anthropic",
}


def codec_for(protocol: str) -> ModuleType:
    """The codec module for a protocol name; ``KeyError`` names the known ones."""
    try:
        name = PROTOCOLS[protocol]
    except KeyError:
        raise KeyError(
            f"unknown protocol {protocol!r}; known: {', '.join(PROTOCOLS)}"
        ) from None
    return importlib.import_module(f"{__name__}.{name}")


def decode_all(protocol: str, body: bytes, *, stream: bool
               ) -> tuple[list[Event], int, ProviderError | None]:
    """Decode a complete captured body (an event stream or a JSON body) as a client would:
    the normalized events, the number of SSE events dispatched, and the ``ProviderError``
    that stopped decoding (malformed input, a stream cut before its end), if any; the events
    decoded before it are kept."""
    from ..errors import ProviderError
    from .sse import SSEDecoder

    codec = codec_for(protocol)
    events: list[Event] = []
    sse_count = 0
    try:
        if not stream:
            events += codec.decode_body(body)
            return events, 0, None
        sse = SSEDecoder()
        dec = codec.StreamDecoder()
        for sev in [*sse.feed(body), *sse.close()]:
            sse_count += 1
            events += dec.feed(sev)
        events += dec.close()
    except ProviderError as exc:
        return events, sse_count, exc
    return events, sse_count, None
