"""Workers in one trio run against a real Redis and the fake provider over loopback HTTP:
queued sessions run and finish once, a non-idempotent tool runs once per call, a session
whose worker vanished is resumed from its journal in Redis, a fenced worker writes
nothing, cancellation and approvals reach the worker through Redis."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import trio
import yaml

from runtime.config import BackendConfig, load_config
from runtime.engine import Engine
from runtime.fleet.connection import Backend, open_backend
from runtime.fleet.journal import read_stream
from runtime.fleet.queue import SessionQueue
from runtime.fleet.worker import Worker
from runtime.testing import open_fake_server

from .fake_provider import Endless

ENV = {"TEST_TRACE_KEY": "fleet-test-trace-key"}


def write_agent(tmp: Path, name: str, base_url: str, backend: BackendConfig,
                **extra: Any) -> Path:
    cfg: dict[str, Any] = {
        "provider": "main",
        "providers": {"main": {"kind": "openai-chat", "model": "m", "api_key": "k",
                               "base_url": base_url,
                               "retry": {"max_attempts": 6, "base_delay": 0.01,
                                         "max_delay": 0.05}}},
        "tools": {"python": ["tests.fleet.count_tool:count"],
                  "workspace": str(tmp / "workspace")},
        "logging": {"dir": str(tmp / name / "logging")},
        "reasoning": {"encrypt": True, "key_env": "TEST_TRACE_KEY"},
        "backend": {"url": backend.url, "prefix": backend.prefix,
                    "lease_timeout": backend.lease_timeout},
        **extra,
    }
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


async def wait_done(backend: Backend, queue: SessionQueue, run_ids: list[str]) -> None:
    """Until every session has ended (the events stream says so)."""
    await queue.ended(set(run_ids), block_ms=200)


async def test_queued_sessions_run_once_each(tmp_path: Path, backend_config: BackendConfig,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Ten sessions on two workers: each finishes once, each tool call ran once."""
    counts = tmp_path / "count.txt"
    monkeypatch.setenv("COUNT_FILE", str(counts))
    async with open_fake_server(Endless(str(tmp_path / "provider.log"), faults=True)) as fake, \
            open_backend(backend_config) as backend:
        queue = SessionQueue(backend)
        ids = [await queue.enqueue(f"task {i}") for i in range(10)]
        stop = trio.Event()
        async with trio.open_nursery() as nursery:
            for name in ("a", "b"):
                cfg = load_config(write_agent(tmp_path, name, fake.base_url("openai-chat"),
                                              backend_config), environ=ENV)
                nursery.start_soon(_worker, cfg, backend, name, stop)
            with trio.fail_after(60):
                await wait_done(backend, queue, ids)
            stop.set()
        labels = counts.read_text().split()
        assert len(labels) == len(set(labels))
        ran = set(labels)
        for rid in ids:
            info = await queue.info(rid)
            assert info["status"] == "finished" and info["finishes"] == "1"
            records = [json.loads(e.value) for e in await read_stream(backend, rid)
                       if e.field == b"l"]
            assert [r["seq"] for r in records] == list(range(1, len(records) + 1))
            assert sum(r["type"] == "session_end" for r in records) == 1
            ok = [r for r in records if r["type"] == "tool_result" and r["ok"]]
            assert ok and all(r["content"].split()[-1] in ran for r in ok)


async def _worker(cfg: Any, backend: Backend, name: str, stop: trio.Event,
                  **options: Any) -> None:
    async with Engine.open(cfg, backend=backend, environ=ENV) as engine:
        await Worker(engine, backend, name=name, concurrency=3, block_ms=200,
                     **options).run(stop, grace=5)
