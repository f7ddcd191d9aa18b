"""Provider runtimes and their registry.

``build_provider(name, config, client)`` maps a provider entry of agent.yaml to its
runtime: the HTTP runtime for the wire kinds (openai-chat, openai-responses, anthropic,
openrouter, local), the in-process scripted provider for ``scripted``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import httpx

from ..config import DEFAULT_BASE_URLS
from .actor import Provider
from .http import HTTPProvider, ProviderSpec, Timeouts

if TYPE_CHECKING:
    from ..config import ProviderConfig

__all__ = ["HTTPProvider", "Provider", "ProviderSpec", "Timeouts", "build_provider"]

def build_provider(name: str, pc: ProviderConfig, client: httpx.AsyncClient, *,
                   redact: Callable[[str], str] | None = None) -> Provider:
    """The runtime for one provider entry of the config."""
    if pc.kind == "scripted":
        from ..testing.scripted import ScriptedProvider, response_from_turn

        return ScriptedProvider(name, [response_from_turn(t, i + 1)
                                       for i, t in enumerate(pc.script)], model=pc.model or "scripted")
    spec = ProviderSpec(
        name=name, kind=pc.kind, base_url=pc.base_url or DEFAULT_BASE_URLS[pc.kind] or "",
        model=pc.model, api_key=pc.api_key or None, headers=dict(pc.headers),
        timeouts=Timeouts(pc.timeout.connect, pc.timeout.read, pc.timeout.total),
    )
    return HTTPProvider(spec, client, redact=redact)
