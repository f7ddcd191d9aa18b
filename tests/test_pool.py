"""The HTTP connection pool of a provider: its settings in agent.yaml reach httpx, every
session's summary.json counts how its requests got their connections (and the counts add up
to what the server saw), and a request that waits for a busy pool waits within its
timeout.total, not timeout.connect."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import trio
import yaml

from runtime.config import load_config
from runtime.engine import Engine, _fd_budget, pool_limits
from runtime.errors import ConfigError
from runtime.model import Response, TextPart, ToolCallPart, Usage
from runtime.testing import open_fake_server
from runtime.tools.registry import Tool

ENV = {"TEST_TRACE_KEY": "pool-tests"}


async def _noop() -> str:
    return "ok"


NOOP = Tool("noop", "Does nothing.", {"type": "object", "properties": {}}, _noop,
            read_only=True)


def _tool_turn(n: int) -> Response:
    return Response(f"r{n}", "m", [TextPart("using the tool"), ToolCallPart(
        f"c{n}", "noop", "{}")], "tool_calls", "tool_calls", Usage(10, 5))


def _answer(n: int) -> Response:
    return Response(f"r{n}", "m", [TextPart("the answer, in a few words")], "stop", "stop",
                    Usage(10, 5))


def _by_turn(req: Any) -> Response:
    """A tool turn for a request without a tool result, else the answer."""
    done = any(m.get("role") == "tool" for m in req.body.get("messages", []))
    return _answer(2) if done else _tool_turn(1)


def _config(tmp_path: Path, base_url: str, **provider: Any) -> Any:
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump({
        "provider": "main",
        "providers": {"main": {"kind": "openai-chat", "model": "m", "api_key": "sk-pool-0000",
                               "base_url": base_url, **provider}},
        "logging": {"dir": str(tmp_path / "logs")},
        "tools": {"workspace": str(tmp_path)},
        "reasoning": {"key_env": "TEST_TRACE_KEY"}}))
    return load_config(path, environ=ENV)


async def _sessions(cfg: Any, n: int) -> list[Any]:
    async with Engine.open(cfg, tools=[NOOP], environ=ENV) as engine:
        sessions = [await engine.start(f"task {i}") for i in range(n)]
        return [await s.result() for s in sessions]


def _pool(result: Any) -> dict[str, int]:
    summary = json.loads((result.run_dir / "summary.json").read_text())
    return summary["providers"]["main"]["pool"]  # type: ignore[no-any-return]


def _records(result: Any, kind: str) -> list[dict[str, Any]]:
    lines = (result.run_dir / "transcript.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["type"] == kind]


async def test_pool_stats_add_up_to_what_the_server_saw(tmp_path: Path,
                                                       autojump_clock: Any) -> None:
    """Six sessions of two turns on a pool of two connections: at most two connections
    reach the server, and over the summaries requests = new + reused, the new connections
    are the server's connections, the requests its requests, and some requests waited."""
    script = [_by_turn] * 12
    with trio.fail_after(600):
        async with open_fake_server(script, chunk_delay=0.5) as server:
            cfg = _config(tmp_path, server.base_url("openai-chat"),
                          pool={"max_connections": 2})
            results = await _sessions(cfg, 6)
    assert [r.status for r in results] == ["finished"] * 6
    pools = [_pool(r) for r in results]
    for p in pools:
        assert p["requests"] == p["new_connections"] + p["reused_connections"] == 2
    assert server.connections <= 2
    assert sum(p["new_connections"] for p in pools) == server.connections
    assert sum(p["requests"] for p in pools) == server.request_count == 12
    assert sum(p["waits"] for p in pools) >= 1
    waited = [a for r in results for a in _records(r, "assistant") if a["pool_wait"]]
    assert waited and all(a["pool_wait"] > 0 for a in waited)


async def test_no_keepalive_means_a_new_connection_per_request(tmp_path: Path) -> None:
    """With pool.max_keepalive 0 every request opens its own connection, and the summary
    says so."""
    with trio.fail_after(60):
        async with open_fake_server([_tool_turn(1), _tool_turn(2), _answer(3)]) as server:
            cfg = _config(tmp_path, server.base_url("openai-chat"), pool={"max_keepalive": 0})
            [result] = await _sessions(cfg, 1)
    assert result.status == "finished"
    assert server.connections == 3
    assert _pool(result) == {"requests": 3, "new_connections": 3, "reused_connections": 0,
                             "waits": 0, "wait_s": 0.0}


async def test_keepalive_reuses_one_connection(tmp_path: Path) -> None:
    """By default the turns of a session reuse one keep-alive connection."""
    with trio.fail_after(60):
        async with open_fake_server([_tool_turn(1), _tool_turn(2), _answer(3)]) as server:
            cfg = _config(tmp_path, server.base_url("openai-chat"))
            [result] = await _sessions(cfg, 1)
    assert server.connections == 1
    assert _pool(result)["new_connections"] == 1
    assert _pool(result)["reused_connections"] == 2


async def test_a_pool_wait_longer_than_timeout_connect_does_not_fail(
        tmp_path: Path, autojump_clock: Any) -> None:
    """One connection, timeout.connect 1 s, two sessions whose answers take ~5 s: the second
    waits ~5 s for the connection and still gets its answer, with no provider error."""
    with trio.fail_after(600):
        async with open_fake_server([_answer(1), _answer(2)], chunk_delay=1.0) as server:
            cfg = _config(tmp_path, server.base_url("openai-chat"),
                          pool={"max_connections": 1},
                          timeout={"connect": 1, "read": 30, "total": 120})
            results = await _sessions(cfg, 2)
    assert [r.status for r in results] == ["finished", "finished"]
    assert not [e for r in results for e in _records(r, "provider_error")]
    pools = [_pool(r) for r in results]
    assert sorted(p["waits"] for p in pools) == [0, 1]
    assert max(p["wait_s"] for p in pools) > 1.0
    assert server.connections == 1


async def test_pool_and_http2_settings_reach_httpx(tmp_path: Path) -> None:
    """providers.<name>.pool and http2 configure the provider's one httpx client."""
    cfg = _config(tmp_path, "http://127.0.0.1:9/v1", http2=True,
                  pool={"max_connections": 7, "max_keepalive": 3, "keepalive_expiry": 11})
    async with Engine.open(cfg, environ=ENV) as engine:
        client = engine.runtimes["main"].client
        assert client is not None
        pool = client._transport._pool  # type: ignore[attr-defined]
        assert (pool._max_connections, pool._max_keepalive_connections,
                pool._keepalive_expiry, pool._http2) == (7, 3, 11.0, True)


async def test_pool_limits_default_to_the_open_file_budget(tmp_path: Path) -> None:
    """Without pool settings the limits come from the open-file budget, HTTP/1.1 only."""
    cfg = _config(tmp_path, "http://127.0.0.1:9/v1")
    async with Engine.open(cfg, environ=ENV) as engine:
        client = engine.runtimes["main"].client
        assert client is not None
        pool = client._transport._pool  # type: ignore[attr-defined]
        share = max(4, _fd_budget() // 2)  # the one provider's half of the budget
        assert pool._max_connections == min(100, share) and not pool._http2
        assert pool._max_keepalive_connections == min(20, share)


@pytest.mark.parametrize(("pool", "connections", "expected"), [
    ({}, 6, (6, 6)),                                        # a small budget bounds both
    ({}, 1000, (100, 20)),                                  # the caps of a large one
    ({"max_connections": 3}, 1000, (3, 3)),                 # keep-alive within the set most
    ({"max_keepalive": 0}, 1000, (100, 0)),                 # no keep-alive at all
    ({"max_connections": 50, "max_keepalive": 10}, 6, (50, 10)),  # set limits win
])
def test_pool_limits_fill_what_the_entry_leaves_unset_from_its_share(
        tmp_path: Path, pool: dict[str, Any], connections: int,
        expected: tuple[int, int]) -> None:
    """pool_limits takes providers.<name>.pool as set and derives the rest from the entry's
    share of the open-file budget: at most 100 connections and 20 kept alive."""
    cfg = _config(tmp_path, "http://127.0.0.1:9/v1", pool=pool)
    limits = pool_limits(cfg.providers["main"], connections)
    assert (limits.max_connections, limits.max_keepalive_connections) == expected
    assert limits.keepalive_expiry == 5.0


@pytest.mark.parametrize(("provider", "path", "words"), [
    ({"pool": {"max_connections": 2, "max_keepalive": 3}}, "providers.main.pool.max_keepalive",
     "above max_connections"),
    ({"pool": {"max_connections": 0}}, "providers.main.pool.max_connections", ">= 1"),
    ({"pool": {"keepalive_expiry": -1}}, "providers.main.pool.keepalive_expiry", "> 0"),
    ({"pool": {"max_conections": 2}}, "providers.main.pool.max_conections", "max_connections"),
    ({"http2": "yes"}, "providers.main.http2", "bool"),
])
def test_bad_pool_settings_name_their_key(tmp_path: Path, provider: dict[str, Any], path: str,
                                         words: str) -> None:
    """A bad pool or http2 setting is a config error naming its key path."""
    with pytest.raises(ConfigError) as info:
        _config(tmp_path, "http://127.0.0.1:9/v1", **provider)
    assert info.value.path == path
    assert words in str(info.value)


@pytest.mark.parametrize("key", ["http2", "pool"])
def test_http_settings_on_a_scripted_provider_are_errors(tmp_path: Path, key: str) -> None:
    """http2 and pool belong to HTTP providers; on a scripted one they are errors."""
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump({
        "provider": "main", "tools": {"workspace": str(tmp_path)},
        "providers": {"main": {"kind": "scripted", "script": [{"text": "hi"}],
                               key: True if key == "http2" else {"max_connections": 2}}}}))
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    assert info.value.path == f"providers.main.{key}"
