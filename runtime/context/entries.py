"""The engine's side of context management, per provider entry (see ``runtime.engine``).

* ``window_source``: where the entry's window comes from (``source.WindowSource``);
* ``read_props``: the ``/props`` reads of llama.cpp servers, side by side, at engine open
  and when a session starts;
* ``vendor_params`` / ``with_betas``: what ``context.strategy: provider`` adds to the
  entry's requests (``vendor.vendor_options``): the vendor's context-management options in
  its params, for the model of each session, and on Anthropic the beta headers they need,
  for every model the entry allows (headers are fixed when the entry's client is built).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import msgspec
import trio

from ..model import Params
from ..providers.kinds import KINDS
from .fit import ContextPolicy
from .source import WindowSource
from .vendor import merge_beta, vendor_options

if TYPE_CHECKING:
    import httpx

    from ..config import ProviderConfig

__all__ = ["read_props", "vendor_params", "window_source", "with_betas"]


def window_source(name: str, pc: ProviderConfig, client: httpx.AsyncClient | None
                  ) -> WindowSource | None:
    """Where the entry's window comes from; None for an in-process provider without a
    ``context_window`` (a script has no window)."""
    kind = KINDS[pc.kind]
    if kind.in_process and pc.context_window is None:
        return None
    base = pc.base_url or kind.base_url
    return WindowSource(name, pc.context_window, dict(pc.headers),
                        props_base=base if pc.kind == "local" else None, client=client)


async def read_props(sources: Iterable[WindowSource | None]) -> None:
    """Read the ``/props`` of the llama.cpp servers still to be read, side by side; a
    server that is not up is not an error (``WindowSource.read_props``)."""
    pending = [w for w in sources if w is not None and w.props_state == "pending"]
    if not pending:
        return
    now = trio.current_time()
    async with trio.open_nursery() as nursery:
        for w in pending:
            nursery.start_soon(w.read_props, now)


def _window(window: WindowSource | None, model: str, policy: ContextPolicy) -> int | None:
    size = window.resolve(model)[0] if window is not None else None
    return size if size is not None and size > policy.reserve_output else None


def vendor_params(pc: ProviderConfig, model: str, window: WindowSource | None,
                  policy: ContextPolicy) -> Params:
    """The entry's params for ``model``, with the vendor's own context management under
    ``strategy: provider`` (it needs the window: nothing when that is unknown)."""
    protocol = KINDS[pc.kind].protocol
    size = _window(window, model, policy)
    if policy.strategy != "provider" or protocol is None or size is None:
        return pc.params
    opts = vendor_options(protocol, model, policy, size,
                          thinking=pc.params.thinking_budget is not None)
    return opts.params(pc.params)


def with_betas(pc: ProviderConfig, window: WindowSource | None,
               policy: ContextPolicy) -> ProviderConfig:
    """``pc`` with the ``anthropic-beta`` values that ``strategy: provider`` needs for any
    model of the entry (itself when none)."""
    if policy.strategy != "provider" or KINDS[pc.kind].protocol != "anthropic":
        return pc
    betas: list[str] = []
    for model in dict.fromkeys([pc.model, *pc.models]):
        size = _window(window, model, policy)
        if size is not None:
            betas += vendor_options("anthropic", model, policy, size,
                                    thinking=pc.params.thinking_budget is not None).betas
    if not betas:
        return pc
    return msgspec.structs.replace(pc, headers=merge_beta(pc.headers, tuple(betas)))
