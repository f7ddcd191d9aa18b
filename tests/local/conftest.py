"""One llama-server for every local-model test: started once per session on a free
127.0.0.1 port, checked for tool support, stopped by its PID at the end."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts.local_model import LocalModelServer, supports_tools

from .servers import running_server


@pytest.fixture(scope="session")
def local_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalModelServer]:
    """The running server; skips (with the reason) only when binary or model is missing."""
    with running_server(tmp_path_factory.mktemp("llama") / "llama-server.log") as server:
        assert supports_tools(server.props), server.props.get("chat_template_caps")
        yield server


@pytest.fixture
def captures() -> Path:
    return Path(__file__).parent / "captures"
