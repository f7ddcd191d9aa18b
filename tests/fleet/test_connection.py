"""The connection to Redis: blocking reads that are cancelled, or cut by a restart, give
their pool slot back (coredis 6.9 loses it), so a long-lived process never runs out of
connections; a script runs again after a restart; config errors name the key path."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
import trio
import trio.testing
import yaml

from runtime.config import BackendConfig, load_config
from runtime.errors import ConfigError
from runtime.fleet.connection import DOWN, open_backend, retrying

from .redis_proc import RedisProcess


async def test_cancelled_blocking_reads_do_not_use_up_the_pool(
        backend_config: BackendConfig) -> None:
    """Ten cancelled blocking reads on a pool of four connections: commands still run."""
    async with open_backend(backend_config, max_connections=4) as backend:
        for i in range(10):
            with trio.move_on_after(0.01):
                await backend.redis.xread({backend.keys.k("nothing"): "0-0"}, block=5000)
            with trio.fail_after(5):
                assert await backend.redis.incr(backend.keys.k("n")) == i + 1


async def test_a_restart_is_ridden_out(tmp_path: Path) -> None:
    """Redis killed and restarted: calls fail as DOWN meanwhile, then scripts and blocking
    reads work again on the same client without leaking connections."""
    server = RedisProcess(tmp_path / "r", persistent=True)
    server.start()
    cfg = BackendConfig(url=server.url, prefix="rs", lease_timeout=2)
    try:
        with trio.fail_after(60):
            await _restarts(server, cfg)
    finally:
        server.stop()


async def _restarts(server: RedisProcess, cfg: BackendConfig) -> None:
    async with open_backend(cfg, max_connections=3) as backend:
        assert await backend.run("budget", [backend.keys.k("a"), backend.keys.k("b"),
                                            backend.keys.k("c")], ["charge", 1.5])
        for _ in range(4):
            async with trio.open_nursery() as nursery:
                async def read() -> None:
                    try:
                        await backend.redis.xread({backend.keys.k("s"): "$"}, block=5000)
                    except DOWN:
                        pass
                nursery.start_soon(read)
                await trio.testing.wait_all_tasks_blocked()  # the read is out
                server.stop(signal.SIGKILL)
            with pytest.raises(DOWN):
                await backend.redis.get(backend.keys.k("a"))
            assert not await backend.ping()
            server.start()
            total = await retrying(backend, lambda: backend.run(
                "budget", [backend.keys.k("a"), backend.keys.k("b"), backend.keys.k("c")],
                ["charge", 1.0]))
            assert backend.healthy
        assert float(total[0]) == 5.5  # the append-only file kept every charge


@pytest.mark.parametrize(("section", "path", "words"), [
    ({"url": "http://x:1/0"}, "backend.url", "not a Redis URL"),
    ({"url": "redis://127.0.0.1:6379/0", "prefix": "a b"}, "backend.prefix", "prefix"),
    ({"url": "redis://127.0.0.1:6379/0", "lease_timeout": 0.5}, "backend.lease_timeout",
     ">= 1"),
    ({"uri": "redis://x"}, "backend", "uri"),
])
def test_backend_config_errors_name_the_key(tmp_path: Path, section: dict[str, object],
                                            path: str, words: str) -> None:
    """A bad backend: section is an error naming its key path and what is wrong."""
    cfg = {"provider": "s", "providers": {"s": {"kind": "scripted", "script": [{"text": "x"}]}},
           "backend": section, "tools": {"workspace": str(tmp_path)}}
    (tmp_path / "agent.yaml").write_text(yaml.safe_dump(cfg))
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path / "agent.yaml", environ={})
    assert path in str(err.value) and words in str(err.value)


def test_without_backend_nothing_changes(tmp_path: Path) -> None:
    """No backend: section: the config has none and budgets are off (the embedded default)."""
    cfg = {"provider": "s", "providers": {"s": {"kind": "scripted", "script": [{"text": "x"}]}},
           "tools": {"workspace": str(tmp_path)}}
    (tmp_path / "agent.yaml").write_text(yaml.safe_dump(cfg))
    loaded = load_config(tmp_path / "agent.yaml", environ={})
    assert loaded.backend is None and not loaded.budgets.active


def test_budgets_need_prices(tmp_path: Path) -> None:
    """budgets: with a model nobody priced is an error naming the model and the fix."""
    cfg = {"provider": "m", "providers": {"m": {"kind": "openai-chat", "model": "mystery",
                                                "api_key": "k"}},
           "budgets": {"daily_usd": 5}, "tools": {"workspace": str(tmp_path)}}
    (tmp_path / "agent.yaml").write_text(yaml.safe_dump(cfg))
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path / "agent.yaml", environ={})
    assert "providers.m.model" in str(err.value) and "budgets" in str(err.value)
