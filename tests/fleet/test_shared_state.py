"""State the fleet shares besides the queue: the response cache in Redis (hits across
engines, TTL, the size cap, the same keys as the local cache) and budgets counted across
engines (a request that would cross one is not sent; the session ends with ``limit``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import trio
import yaml

from runtime.cache import key_material, key_of_material
from runtime.cache_store import ResponseCache
from runtime.config import BackendConfig, load_config
from runtime.engine import Engine
from runtime.fleet.cache import RedisCacheStore
from runtime.fleet.connection import open_backend
from runtime.model import Message, Request, Response, TextPart, Usage
from runtime.testing import open_fake_server

ENV = {"TEST_TRACE_KEY": "fleet-test-trace-key"}


def _config(tmp: Path, base_url: str, backend: BackendConfig | None, **extra: Any) -> Path:
    cfg: dict[str, Any] = {
        "provider": "main",
        "providers": {"main": {"kind": "openai-chat", "model": "m", "api_key": "k",
                               "base_url": base_url}},
        "tools": {"workspace": str(tmp / "workspace")},
        "logging": {"dir": str(tmp / "logging")},
        "reasoning": {"encrypt": True, "key_env": "TEST_TRACE_KEY"},
        **extra,
    }
    if backend is not None:
        cfg["backend"] = {"url": backend.url, "prefix": backend.prefix}
    path = tmp / "agent.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _answer(text: str) -> Response:
    return Response(parts=[TextPart(text)], stop="stop", finish_reason="stop",
                    usage=Usage(input_tokens=20, output_tokens=5))


async def _one(path: Path, task: str) -> Any:
    cfg = load_config(path, environ=ENV)
    async with Engine.open(cfg, environ=ENV) as engine:
        session = await engine.start(task, on_approval="deny")
        return await session.result()


async def test_two_engines_share_the_response_cache(
        tmp_path: Path, backend_config: BackendConfig) -> None:
    """The answer one engine stored is a hit for another (another process): the provider
    is asked once."""
    async with open_fake_server([_answer("cached answer")]) as fake:
        path = _config(tmp_path, fake.base_url("openai-chat"), backend_config,
                       cache={"mode": "read-through"})
        first = await _one(path, "the same question")
        second = await _one(path, "the same question")
        assert first.answer == second.answer == "cached answer"
        assert fake.request_count == 1


async def test_cache_entries_have_a_ttl_and_a_size_cap(
        backend_config: BackendConfig) -> None:
    """Entries carry the configured TTL; past max_bytes the least recently used go first;
    keys are the local cache's canonical keys."""
    async with open_backend(backend_config) as backend:
        store = RedisCacheStore(backend, max_bytes=3000, ttl=60.0)
        cache = ResponseCache(store, "read-through")  # type: ignore[arg-type]
        reqs = [Request(model="m", messages=[Message.user(f"q{i} " + "x" * 300)])
                for i in range(8)]
        for i, req in enumerate(reqs):
            key = await cache.store("openai-chat", req, _answer(f"a{i}"))
            assert key == key_of_material(key_material("openai-chat", req))
            if i == 0:
                await cache.lookup("openai-chat", reqs[0])  # used again: kept longer
        stats = await store.stats()
        assert stats.total_bytes <= 3000 and stats.entries < 8
        ttl = await backend.redis.pttl(backend.keys.cache_entry(
            key_of_material(key_material("openai-chat", reqs[-1]))))
        assert 0 < ttl <= 60_000
        assert (await cache.lookup("openai-chat", reqs[-1]))[1] is not None
        assert (await cache.lookup("openai-chat", reqs[1]))[1] is None  # evicted first
        hit = (await cache.lookup("openai-chat", reqs[-1]))[1]
        assert hit is not None and msgspec.json.encode(hit.parts) == msgspec.json.encode(
            _answer(f"a{len(reqs) - 1}").parts)


async def test_a_daily_budget_is_counted_across_engines(
        tmp_path: Path, backend_config: BackendConfig) -> None:
    """Two engines (two processes) spend the day's budget; the next session's request is
    not sent, and it ends with limit (exit 4) naming budgets.daily_usd."""
    async with open_fake_server([_answer(f"answer {i}") for i in range(5)]) as fake:
        path = _config(tmp_path, fake.base_url("openai-chat"), backend_config,
                       pricing={"m": {"input": 10000, "output": 10000}},
                       budgets={"daily_usd": 0.5})
        assert (await _one(path, "one")).status == "finished"      # $0.25
        assert (await _one(path, "two")).status == "finished"      # $0.50: all of it
        third = await _one(path, "three")
        assert (third.status, third.exit_code) == ("limit", 4)
        assert "daily budget reached" in third.message and "budgets.daily_usd" in third.message
        assert fake.request_count == 2


async def test_without_a_backend_budgets_count_in_the_process(tmp_path: Path) -> None:
    """budgets: without backend: sessions of one engine share the day's budget; another
    engine (another process) counts its own."""
    async with open_fake_server([_answer(f"answer {i}") for i in range(5)]) as fake:
        path = _config(tmp_path, fake.base_url("openai-chat"), None,
                       pricing={"m": {"input": 10000, "output": 10000}},
                       budgets={"daily_usd": 0.25})
        cfg = load_config(path, environ=ENV)
        async with Engine.open(cfg, environ=ENV) as engine:
            results = []
            for task in ("one", "two"):
                session = await engine.start(task, on_approval="deny")
                results.append(await session.result())
        assert [r.status for r in results] == ["finished", "limit"]
        async with Engine.open(cfg, environ=ENV) as engine:
            session = await engine.start("three", on_approval="deny")
            with trio.fail_after(30):
                assert (await session.result()).status == "finished"  # a new process
        assert fake.request_count == 2
