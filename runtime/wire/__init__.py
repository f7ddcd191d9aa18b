"""Pure wire codecs, one module per protocol (sans I/O: no trio, no httpx).

``codec_for(protocol)`` returns the codec module of ``openai-chat``, ``openai-responses`` or
``anthropic``; the OpenRouter and local dialects are ``openai-chat`` with a ``dialect``.

``function_arguments(call)`` is the JSON every protocol sends for a call's arguments (``{}``
for arguments that are not a JSON object, such as a call cut off by the token limit) and
``arguments_replaced(call)`` says when it had to replace what the model sent.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..errors import ProviderError
    from ..events import Event

from ._base import arguments_replaced as arguments_replaced
from ._base import function_arguments as function_arguments

__all__ = ["PROTOCOLS", "arguments_replaced", "codec_for", "decode_all", "function_arguments"]

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
