"""The context window of the real llama-server, read from its /props."""

from __future__ import annotations

import httpx
import pytest

from runtime.context import fetch_props_window, window_from_props
from scripts.local_model import LocalModelServer

pytestmark = pytest.mark.local_model


async def test_props_of_the_real_llama_server(local_server: LocalModelServer) -> None:
    """The real llama-server's /props gives the -c it was started with."""
    async with httpx.AsyncClient() as client:
        n_ctx = await fetch_props_window(client, local_server.base_url("local"))
    assert n_ctx == window_from_props(local_server.props)
    cmd = local_server.command
    assert n_ctx == int(cmd[cmd.index("-c") + 1])
