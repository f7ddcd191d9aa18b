"""Fixtures of the fleet tests: a real redis-server per test session (skipped, with the
reason, only when the Debian package is not installed) and a backend on a fresh prefix."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime.config import BackendConfig

from .redis_proc import RedisProcess, redis_available


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisProcess]:
    """A redis-server on a free loopback port, no persistence, stopped by PID."""
    if not redis_available():
        pytest.skip("redis-server is not installed (apt-get install -y redis-server)")
    server = RedisProcess(tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def backend_config(redis_server: RedisProcess) -> BackendConfig:
    """A backend section on its own key prefix (tests never see each other's keys)."""
    return BackendConfig(url=redis_server.url, prefix="t" + secrets.token_hex(4),
                         lease_timeout=2.0)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path
