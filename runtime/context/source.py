"""Where one provider entry's context window comes from (the engine's side; one per entry,
shared by every session that uses it).

In order: ``providers.<name>.context_window`` in agent.yaml (``config``), a llama.cpp
server's ``GET /props`` (``props``: for ``kind: local``), the known-model table
(``table``: ``windows.WindowTable``, which a 1M-context beta header widens); else the window
is ``unknown`` and nothing is fitted. ``/props`` is read when the engine opens; a server
that is not up yet is not an error: the table serves meanwhile and the read is tried again
when a session starts, before a request once ``PROPS_RETRY`` seconds have passed, and after
the server refused a request as too long. A server that answers without ``n_ctx`` (404:
not llama.cpp) is not asked again.

The only I/O is ``read_props`` (through ``props.fetch_props_window``); time comes from the
caller (``now``), so this module imports no trio.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Literal

import attrs

from ..errors import ProviderError
from .windows import WindowTable, beta_values

if TYPE_CHECKING:
    import httpx

__all__ = ["PROPS_RETRY", "PropsState", "WindowSource"]

PROPS_RETRY = 30.0   # seconds between two reads of a /props that could not be read
PROPS_TIMEOUT = 5.0  # seconds one read may take

PropsState = Literal["none", "pending", "read", "absent"]


@attrs.define(eq=False)
class WindowSource:
    """One provider entry's window (see the module docstring). ``props_state``: ``none``
    (not a llama.cpp server), ``pending`` (not read yet: ``props_error`` says why),
    ``read``, ``absent`` (the server has no ``n_ctx``)."""

    provider: str
    override: int | None = None
    headers: Mapping[str, str] = attrs.field(factory=dict)
    props_base: str | None = None
    client: httpx.AsyncClient | None = None
    table: WindowTable = attrs.field(factory=WindowTable)
    props: int | None = None
    props_state: PropsState = "none"
    props_error: str | None = None
    last_try: float | None = None
    _busy: bool = False

    def __attrs_post_init__(self) -> None:
        if self.props_base is not None and self.client is not None \
                and self.props_state == "none":
            self.props_state = "pending"

    def resolve(self, model: str) -> tuple[int | None, str]:
        """``(window, source)`` for ``model``: source is ``config``, ``props``, ``table`` or
        ``unknown`` (window None)."""
        if self.override is not None:
            return self.override, "config"
        if self.props is not None:
            return self.props, "props"
        window = self.table.window(model, betas=beta_values(self.headers))
        return (window, "table") if window is not None else (None, "unknown")

    def due(self, now: float) -> bool:
        """``/props`` is still to be read and the last try is ``PROPS_RETRY`` s old."""
        return self.props_state == "pending" and (
            self.last_try is None or now - self.last_try >= PROPS_RETRY)

    async def read_props(self, now: float, *, http_timeout: float = PROPS_TIMEOUT) -> bool:
        """Read the server's ``/props`` if it is still to be read (a failure is kept in
        ``props_error``, never raised); returns whether the window changed."""
        if self.props_state != "pending" or self.client is None or self.props_base is None \
                or self._busy:
            return False
        from .props import fetch_props_window

        self._busy, self.last_try = True, now
        try:
            n_ctx = await fetch_props_window(self.client, self.props_base,
                                             http_timeout=http_timeout, provider=self.provider)
        except ProviderError as exc:
            self.props_error = str(exc)
            return False
        finally:
            self._busy = False
        self.props_error = None
        if n_ctx is None:
            self.props_state = "absent"
            return False
        self.props_state = "read"
        changed, self.props = n_ctx != self.props, n_ctx
        return changed
