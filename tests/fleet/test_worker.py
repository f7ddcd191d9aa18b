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

from runtime.config import BackendConfig, load_config
from runtime.engine import Engine
from runtime.fleet.connection import Backend, open_backend
from runtime.fleet.journal import follow, read_stream
from runtime.fleet.queue import SessionQueue
from runtime.fleet.worker import Worker
from runtime.testing import open_fake_server

from .fake_provider import Endless
from .procs import agent_config

ENV = {"TEST_TRACE_KEY": "fleet-test-trace-key"}


def write_agent(tmp: Path, name: str, base_url: str, backend: BackendConfig,
                **extra: Any) -> Path:
    """``procs.agent_config`` with the quicker retries of in-process workers."""
    provider = {"retry": {"max_attempts": 6, "base_delay": 0.01, "max_delay": 0.05},
                **extra.pop("provider", {})}
    return agent_config(tmp, name, base_url, backend, provider=provider, **extra)


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
                  concurrency: int = 3, **options: Any) -> None:
    async with Engine.open(cfg, backend=backend, environ=ENV) as engine:
        await Worker(engine, backend, name=name, concurrency=concurrency, block_ms=200,
                     **options).run(stop, grace=5)


async def test_a_fenced_owner_writes_nothing_more(backend_config: BackendConfig) -> None:
    """Once another worker has taken a session (its lease had run out), the old owner's
    appends, renewals and finish are refused, and its flush says so."""
    from runtime.fleet.journal import RedisTee
    from runtime.fleet.queue import Claim, Taken
    from runtime.session.journal import JournalError

    async with open_backend(backend_config) as backend:
        queue = SessionQueue(backend)
        rid = await queue.enqueue("task")
        [claim] = await queue.claim_new("old", 1, 100)
        old = await queue.take(claim, "old")
        assert isinstance(old, Taken)
        async with trio.open_nursery() as nursery:
            tee = RedisTee(backend, rid, old.token)
            await nursery.start(tee.run)
            await tee.line(1, b'{"type":"session_start","seq":1}')
            await tee.flush()
            assert await queue.take(Claim(claim.entry_id, rid), "new") == 0  # lease alive
            await backend.redis.delete([backend.keys.lease(rid)])   # the lease runs out
            new = await queue.take(Claim(claim.entry_id, rid), "new")
            assert isinstance(new, Taken) and new.token != old.token
            await tee.line(2, b'{"type":"user","seq":2}')
            with pytest.raises(JournalError, match="taken over"):
                await tee.flush()
            assert tee.fenced
            tee.close()
        assert [e.seq for e in await read_stream(backend, rid)] == [1]
        assert not await queue.renew(old, "old")
        assert await queue.finish(old, status="finished", exit_code=0) == 0
        assert await queue.renew(new, "new")
        assert await queue.finish(new, status="finished", exit_code=0) == 1
        assert await queue.finish(new, status="finished", exit_code=0) == -1
        info = await queue.info(rid)
        assert (info["finishes"], info["claims"]) == ("1", "2")


async def _until(backend: Backend, rid: str, kind: str, after: int = 0) -> dict[str, Any]:
    """The first record of ``kind`` after position ``after`` (waiting for it)."""
    async for rec, line in follow(backend, rid, after, block_ms=200):
        if rec.type == kind:
            return dict(json.loads(line))
    raise AssertionError(f"the session ended without a {kind} record")


async def test_serve_reaches_the_running_session_through_redis(
        tmp_path: Path, backend_config: BackendConfig,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Approve a call, send the next message of a keep_open session and cancel it, from
    another connection (as serve does); a queued session is cancelled at once."""
    counts = tmp_path / "count.txt"
    monkeypatch.setenv("COUNT_FILE", str(counts))
    async with open_fake_server(Endless(str(tmp_path / "provider.log"), faults=False)) as fake, \
            open_backend(backend_config) as backend:
        queue = SessionQueue(backend)
        waiting = await queue.enqueue("never runs")
        assert await queue.cancel(waiting) == "cancelled"
        assert (await _until(backend, waiting, "session_end"))["status"] == "cancelled"
        rid = await queue.enqueue("count once", keep_open=True)
        cfg = load_config(write_agent(tmp_path, "a", fake.base_url("openai-chat"),
                                      backend_config, **{"tools": {
                                          "python": ["tests.fleet.count_tool:count"],
                                          "approval": {"count": "ask"},
                                          "workspace": str(tmp_path / "ws")}}), environ=ENV)
        stop = trio.Event()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_worker, cfg, backend, "a", stop)
            with trio.fail_after(30):
                ask = await _until(backend, rid, "approval_request")
                await queue.approve(rid, ask["call_id"], True, by="ops")
                first = await _until(backend, rid, "session_start")
                answered = await _until(backend, rid, "turn_end", ask["seq"])
                answered = await _until(backend, rid, "turn_end", answered["seq"])
                await queue.send(rid, "and again")
                user = await _until(backend, rid, "user", answered["seq"])
                assert user["text"] == "and again" and first["seq"] == 1
                again = await _until(backend, rid, "approval_request", user["seq"])
                assert again["call_id"] != ask["call_id"]   # the second call waits
                assert await queue.cancel(rid) == "requested"
                end = await _until(backend, rid, "session_end")
                await queue.ended({rid, waiting}, block_ms=100)
            stop.set()
        assert end["status"] == "cancelled"
        info = await queue.info(rid)
        assert (info["status"], info["finishes"]) == ("cancelled", "1")
        assert len(counts.read_text().split()) == 1
        decisions = [json.loads(e.value) for e in await read_stream(backend, rid)
                     if b'"approval"' in e.value]
        assert decisions and decisions[0]["by"] == "ops" and decisions[0]["allow"]


async def test_a_stopping_worker_hands_its_sessions_to_another(
        tmp_path: Path, backend_config: BackendConfig,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker that stops while a session waits for an approval hands it back; another
    worker resumes it from the journal in Redis and it finishes once."""
    monkeypatch.setenv("COUNT_FILE", str(tmp_path / "count.txt"))
    async with open_fake_server(Endless(str(tmp_path / "provider.log"), faults=False)) as fake, \
            open_backend(backend_config) as backend:
        queue = SessionQueue(backend)
        rid = await queue.enqueue("count once")
        configs = [load_config(write_agent(tmp_path, n, fake.base_url("openai-chat"),
                                           backend_config, **{"tools": {
                                               "python": ["tests.fleet.count_tool:count"],
                                               "approval": {"count": "ask"},
                                               "workspace": str(tmp_path / "ws")}}),
                               environ=ENV) for n in ("a", "b")]
        with trio.fail_after(30):
            stop_a = trio.Event()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_worker, configs[0], backend, "a", stop_a)
                first = await _until(backend, rid, "approval_request")
                stop_a.set()   # grace 5 s: the approval does not come, it is handed back
            assert (await queue.info(rid))["status"] == "queued"
            stop_b = trio.Event()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_worker, configs[1], backend, "b", stop_b)
                again = await _until(backend, rid, "approval_request", first["seq"])
                await queue.approve(rid, again["call_id"], True)
                await _until(backend, rid, "session_end", again["seq"])
                await queue.ended({rid}, block_ms=100)
                stop_b.set()
        info = await queue.info(rid)
        assert (info["status"], info["finishes"], info["claims"]) == ("finished", "1", "2")
        records = [json.loads(e.value) for e in await read_stream(backend, rid)
                   if e.field == b"l"]
        assert [r["type"] for r in records].count("session_end") == 1
        assert [r["resumed"] for r in records if r["type"] == "session_start"] == [False, True]
