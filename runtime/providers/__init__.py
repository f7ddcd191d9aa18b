"""Provider runtimes and their registry.

``build_provider(name, config, client)`` maps a provider entry of agent.yaml to its
runtime: the HTTP runtime for the kinds that speak a wire protocol, the in-process
scripted provider for ``scripted`` (the kinds are described in ``kinds``, the one table).
Names are resolved on first use, so ``runtime.providers.kinds`` (pure) can be imported
without trio or httpx.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from .._lazy import lazy_exports
from .kinds import KINDS

if TYPE_CHECKING:
    import httpx

    from ..config import ProviderConfig
    from .actor import Provider as Provider
    from .http import HTTPProvider as HTTPProvider
    from .http import ProviderSpec as ProviderSpec
    from .http import Timeouts as Timeouts
    from .scripted import ScriptedProvider as ScriptedProvider

__all__ = ["HTTPProvider", "Provider", "ProviderSpec", "ScriptedProvider", "Timeouts",
           "build_provider"]

_WHERE = {"HTTPProvider": "http", "ProviderSpec": "http", "Timeouts": "http",
          "Provider": "actor", "ScriptedProvider": "scripted"}


__getattr__ = lazy_exports(__name__, _WHERE, globals())


def build_provider(name: str, pc: ProviderConfig, client: httpx.AsyncClient, *,
                   redact: Callable[[str], str] | None = None,
                   pool_size: int | None = None) -> Provider:
    """The runtime for one provider entry of the config; ``pool_size``: the connections of
    ``client``'s pool (to tell the requests that wait for one)."""
    kind = KINDS[pc.kind]
    if kind.in_process:
        from .scripted import ScriptedProvider, response_from_turn

        return ScriptedProvider(name, [response_from_turn(t, i + 1)
                                       for i, t in enumerate(pc.script)],
                                model=pc.model or kind.name)
    from .http import HTTPProvider, ProviderSpec, Timeouts

    spec = ProviderSpec(
        name=name, kind=pc.kind, base_url=pc.base_url or kind.base_url or "",
        model=pc.model, api_key=pc.api_key or None, headers=dict(pc.headers),
        timeouts=Timeouts(pc.timeout.connect, pc.timeout.read, pc.timeout.total),
        pool_size=pool_size, http2=pc.http2,
    )
    return HTTPProvider(spec, client, redact=redact)
