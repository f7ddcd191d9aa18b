"""One llama-server for every local-model test: started once per session on a free
127.0.0.1 port, checked for tool support, stopped by its PID at the end."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts.local_model import (
    LocalModelServer,
    LocalModelUnavailable,
    find_binary,
    find_model,
    pid_alive,
    start_server,
    supports_tools,
)


@pytest.fixture(scope="session")
def local_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalModelServer]:
    """The running server; skips (with the reason) only when binary or model is missing."""
    try:
        find_binary()
        find_model()
    except LocalModelUnavailable as exc:
        pytest.skip(f"local model tier not installed: {exc}")
    log = tmp_path_factory.mktemp("llama") / "llama-server.log"
    server = start_server(log_path=log)
    assert supports_tools(server.props), server.props.get("chat_template_caps")
    try:
        yield server
    finally:
        code = server.stop()
        assert not pid_alive(server.pid), f"llama-server {server.pid} still running"
        assert code == 0, f"llama-server exited with {code}:\n{server.log_tail()}"


@pytest.fixture
def captures() -> Path:
    return Path(__file__).parent / "captures"
