"""The fleet as it runs: a real redis-server, the fake provider and worker processes
started by the test and stopped by PID. 100 sessions with provider faults and a worker
killed with SIGKILL mid-run all finish exactly once; a shared 60 requests/minute limit
holds across three workers in the provider's own log; a Redis restart loses no session."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import pytest
import trio

from runtime.config import BackendConfig
from runtime.fleet.connection import Backend, open_backend
from runtime.fleet.journal import follow, read_stream
from runtime.fleet.queue import SessionQueue

from ..server.client import Api, records
from ..server.conftest import Served, server_section
from ..test_ratelimit import _max_in_window
from .procs import Proc, agent_config, fake_provider, worker
from .redis_proc import RedisProcess

pytestmark = pytest.mark.slow


async def _until_done(queue: SessionQueue, ids: list[str], seconds: float) -> None:
    with trio.fail_after(seconds):
        await queue.ended(set(ids))


async def _records(backend: Backend, rid: str) -> list[dict[str, Any]]:
    return [json.loads(e.value) for e in await read_stream(backend, rid) if e.field == b"l"]


def _start_fleet(tmp: Path, backend: BackendConfig, n: int, *, faults: bool,
                 **extra: Any) -> tuple[Proc, list[Proc]]:
    provider, base_url = fake_provider(tmp, faults=faults)
    workers = [worker(tmp, agent_config(tmp, f"w{i}", base_url, backend, **extra), f"w{i}")
               for i in range(n)]
    return provider, workers


async def test_a_hundred_sessions_survive_a_killed_worker(
        tmp_path: Path, backend_config: BackendConfig) -> None:
    """One serve and three workers; 100 sessions created over HTTP, each watched over SSE;
    one worker killed with SIGKILL mid-run: every session finishes exactly once, the
    counting tool ran at most once per call and exactly once per call that has a result,
    and every SSE watcher saw every record of its session in order."""
    gate = tmp_path / "count.gate"
    gate.touch()  # tool calls wait in the tool until the worker has been killed
    provider, workers = _start_fleet(tmp_path, backend_config, 3, faults=True)
    serve_cfg = agent_config(tmp_path, "serve", "http://127.0.0.1:9/v1", backend_config,
                             server=server_section())
    served = Served(serve_cfg)
    api = Api(served.url)
    try:
        async with open_backend(backend_config) as backend:
            queue = SessionQueue(backend)
            ids = [(await api.create(f"count something ({i})"))["id"] for i in range(100)]
            seen: dict[str, list[dict[str, Any]]] = {}
            tools_on = trio.Event()

            async def watch(sid: str) -> None:
                events = await api.events(sid)
                seen[sid] = records(events)
                assert events[-1].event == "session_end"

            async def spot(sid: str) -> None:  # a tool call under way on w0
                async for rec, _line in follow(backend, sid, block_ms=500):
                    if rec.type == "tool_start" and not tools_on.is_set():
                        if (await queue.info(sid)).get("worker") == "w0":
                            tools_on.set()

            async with trio.open_nursery() as nursery:
                for sid in ids:
                    nursery.start_soon(watch, sid)
                    nursery.start_soon(spot, sid)
                with trio.fail_after(60):
                    await tools_on.wait()
                workers[0].signal(signal.SIGKILL)
                workers[0].wait(30)
                gate.unlink()
                await _until_done(queue, ids, 150)
            for w in workers[1:]:
                w.stop()
                assert w.popen.returncode == 0, w.output()[-3000:]
            labels = (tmp_path / "count.txt").read_text().split()
            assert len(labels) == len(set(labels)), "a tool call ran twice"
            resumed = interrupted = 0
            for sid in ids:
                info = await queue.info(sid)
                assert info["done"] == "1" and info["finishes"] == "1", info
                assert info["status"] == "finished", info
                resumed += int(info["claims"]) > 1
                journal = await _records(backend, sid)
                seqs = [r["seq"] for r in journal]
                assert seqs == list(range(1, len(seqs) + 1))
                assert seen[sid] == journal, "a watcher missed or reordered records"
                assert [r["type"] for r in journal].count("session_end") == 1
                _check_calls(journal, set(labels))
                interrupted += sum(1 for r in journal if r["type"] == "tool_result"
                                   and r.get("interrupted"))
            assert resumed >= 1, "the killed worker held no session"
            assert interrupted >= 1, "no call of the killed worker was reported interrupted"
            assert (await queue.depth())[0] == 0
            views = [await api.get(sid) for sid in ids]
            assert {v["status"] for v in views} == {"finished"}
            assert all(v["answer"] for v in views)
            ready = await api.http.get("/ready")
            assert (ready.status_code, ready.json()) == (200, {"status": "ok", "backend": "ok"})
    finally:
        await api.aclose()
        served.stop()
        for p in [*workers, provider]:
            p.stop()


def _check_calls(records: list[dict[str, Any]], ran: set[str]) -> None:
    """Every call with a result other than "interrupted" ran exactly once; every call that
    ran has a tool_start in the journal."""
    started = {r["call_id"] for r in records if r["type"] == "tool_start"}
    labels = {p["id"]: json.loads(p["arguments"])["label"] for r in records
              if r["type"] == "assistant" and r.get("status") == "complete"
              for p in r.get("parts") or () if p["type"] == "tool_call"}
    for r in records:
        if r["type"] == "tool_result" and not r.get("interrupted"):
            assert r["ok"] and labels.get(r["call_id"]) in ran, records
    for call_id, label in labels.items():
        if label in ran:
            assert call_id in started


async def test_a_shared_limit_holds_across_three_workers(
        tmp_path: Path, backend_config: BackendConfig) -> None:
    """60 requests a minute shared by three workers: in the provider's own log no window
    holds more than the bucket allows (60 + 1 a second), so no 60 s window more than 120."""
    rpm = 60
    provider, workers = _start_fleet(tmp_path, backend_config, 3, faults=False,
                                     provider={"rate_limit": {"requests_per_minute": rpm}})
    try:
        async with open_backend(backend_config) as backend:
            queue = SessionQueue(backend)
            ids = [await queue.enqueue(f"count ({i})") for i in range(40)]
            await _until_done(queue, ids, 120)
    finally:
        for p in [*workers, provider]:
            p.stop()
    times = sorted(float(t) for t in (tmp_path / "provider.log").read_text().split())
    assert len(times) >= 80
    grants = [(t, 1.0) for t in times]
    assert _max_in_window(grants, 60.0) <= 2 * rpm
    for i, start in enumerate(times):  # every window: capacity + rate * length (+ clock slack)
        for j in range(i, len(times)):
            assert j - i + 1 <= rpm + (times[j] - start) * rpm / 60.0 + 2
    assert times[-1] - times[0] >= (len(times) - rpm) * 60.0 / rpm - 2


async def test_redis_restarted_during_the_run(tmp_path: Path) -> None:
    """Redis (with its append-only file) is killed mid-run and restarted once every worker
    has noticed: every worker reconnects and every session finishes exactly once."""
    server = RedisProcess(tmp_path / "redis", persistent=True)
    server.start()
    cfg = BackendConfig(url=server.url, prefix="restart", lease_timeout=2.0)
    provider, workers = _start_fleet(tmp_path, cfg, 3, faults=True)
    try:
        async with open_backend(cfg) as backend:
            queue = SessionQueue(backend)
            for w in workers:  # every worker is up
                await trio.to_thread.run_sync(w.wait_for, "worker_started", 60)
            ids = [await queue.enqueue(f"count ({i})") for i in range(30)]
            with trio.fail_after(60):  # sessions are under way
                async for _rec, _line in follow(backend, ids[3]):
                    break
            server.stop(signal.SIGKILL)
            for w in workers:  # Redis stays down until every worker has noticed
                await trio.to_thread.run_sync(w.wait_for, "redis_lost", 60)
            server.start()
            await _until_done(queue, ids, 150)
            for rid in ids:
                info = await queue.info(rid)
                assert info["finishes"] == "1" and info["status"] == "finished", info
                assert [r["type"] for r in await _records(backend, rid)].count(
                    "session_end") == 1
    finally:
        for p in [*workers, provider]:
            p.stop()
        server.stop()
    for w in workers:
        assert w.popen.returncode == 0, w.output()[-3000:]
        events = [json.loads(line).get("event") for line in w.output().splitlines()
                  if line.startswith("{")]
        assert "redis_lost" in events and "redis_back" in events, w.output()[-3000:]
        assert events.index("redis_back") > events.index("redis_lost")
