"""A llama.cpp server's context window, read once from its ``GET /props``.

The one piece of the context package that does I/O: the engine calls ``fetch_props_window``
once per ``local`` provider (or any OpenAI-compatible base URL that may be llama-server)
and passes the answer to ``context_window(props=...)``. httpx's exceptions are mapped here,
once, to the project's ``ProviderError``.
"""

from __future__ import annotations

import httpx

from ..errors import ErrorKind, ProviderError
from .windows import window_from_props

__all__ = ["fetch_props_window", "props_url"]


def props_url(base_url: str) -> str:
    """``/props`` sits at the server root: ``http://127.0.0.1:8080/v1`` ->
    ``http://127.0.0.1:8080/props``."""
    root = base_url.rstrip("/")
    if root.endswith("/v1"):
        root = root[: -len("/v1")]
    return root + "/props"


async def fetch_props_window(client: httpx.AsyncClient, base_url: str, *,
                             http_timeout: float = 10.0, provider: str | None = None) -> int | None:
    """The server's ``n_ctx`` (tokens per slot), or None when it answers without one (a
    404 or a JSON without ``n_ctx``: not a llama.cpp server). A server that cannot be
    reached or answers garbage is a ``ProviderError`` (``connection``, ``timeout``,
    ``malformed_response``)."""
    url = props_url(base_url)
    try:
        resp = await client.get(url, timeout=http_timeout)
    except httpx.TimeoutException as exc:
        raise ProviderError(ErrorKind.TIMEOUT, f"GET {url} timed out",
                            provider=provider) from exc
    except httpx.HTTPError as exc:
        raise ProviderError(ErrorKind.CONNECTION, f"GET {url} failed: {exc}",
                            provider=provider) from exc
    if resp.status_code == 404:
        return None
    if resp.status_code != 200:
        raise ProviderError(ErrorKind.SERVER if resp.status_code >= 500 else
                            ErrorKind.BAD_REQUEST, f"GET {url} answered {resp.status_code}",
                            provider=provider, status=resp.status_code,
                            details=resp.text[:400])
    try:
        payload = resp.json()
    except ValueError as exc:
        raise ProviderError(ErrorKind.MALFORMED_RESPONSE, f"GET {url} is not JSON",
                            provider=provider, status=200, details=resp.text[:400]) from exc
    return window_from_props(payload)
