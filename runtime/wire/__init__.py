"""Pure wire codecs, one module per protocol (sans I/O: no trio, no httpx).

``codec_for(protocol)`` returns the codec module of ``openai-chat``, ``openai-responses`` or
``anthropic``; the OpenRouter and local dialects are ``openai-chat`` with a ``dialect``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["PROTOCOLS", "codec_for"]

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
