"""Tests of the test doubles shipped in ``runtime.testing``.

Helpers shared by the fake-server tests live here: a route per protocol and a streaming POST
that returns status, headers and the raw body chunks as the client received them.
"""

from __future__ import annotations

from typing import Any

import httpx

from runtime.testing.server import FakeProviderServer

ROUTE = {
    "openai-chat": "/chat/completions",
    "openai-responses": "/responses",
    "anthropic": "/v1/messages",
}
PROTOCOLS = tuple(ROUTE)


def url(server: FakeProviderServer, protocol: str) -> str:
    """The endpoint a client of ``protocol`` posts to."""
    return server.base_url(protocol) + ROUTE[protocol]


async def post(client: httpx.AsyncClient, server: FakeProviderServer, protocol: str,
               body: dict[str, Any], **kw: Any) -> tuple[httpx.Response, list[bytes]]:
    """POST ``body`` and read the raw body; returns the response and its chunks."""
    chunks: list[bytes] = []
    async with client.stream("POST", url(server, protocol), json=body, **kw) as r:
        async for chunk in r.aiter_raw():
            chunks.append(chunk)
    return r, chunks
