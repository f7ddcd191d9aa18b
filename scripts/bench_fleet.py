"""The fleet's throughput and the Redis limiter's cost per request, as a table.

    python scripts/bench_fleet.py [--redis URL] [--sessions 200] [--workers 2]
                                  [--concurrency 16] [--calls 5000]

Without ``--redis`` a ``redis-server`` is started on a free loopback port (no persistence,
a temporary folder) and stopped by PID at the end.

* **limiter latency**: what each provider request waits for before it goes out with a
  shared limiter and breaker (``admit`` + ``reserve``: two scripts, asked at once as the
  actor does, so one round trip), and
  all four calls a request makes (with ``record`` + ``settle`` after it); p50/p99 over
  ``--calls`` requests, next to the in-process limiter and a plain ``GET`` (the floor of
  one round trip through the client). Goal: < 1 ms at p99 on loopback.
* **sessions per second**: ``--workers`` worker processes (``python main.py worker``)
  against the fake provider (one answer per session, in this process), ``--sessions``
  queued at once; from the first enqueue to the last session ended.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import trio
import yaml

from runtime.config import BackendConfig
from runtime.fleet.connection import open_backend
from runtime.fleet.limiter import RedisBreaker, RedisLimiter
from runtime.fleet.queue import SessionQueue
from runtime.model import Response, TextPart, Usage
from runtime.providers.actor import ActorOptions, admit_and_reserve
from runtime.resilience.breaker import CircuitBreaker, Verdict
from runtime.resilience.gates import LocalBreaker, LocalLimiter
from runtime.resilience.ratelimit import RateLimiter
from runtime.testing import FakeProviderServer, Script

ROOT = Path(__file__).resolve().parent.parent
GOAL_MS = 1.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start_redis(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    if shutil.which("redis-server") is None:
        raise SystemExit("redis-server is not installed (apt-get install -y redis-server) "
                         "and no --redis URL was given")
    port = free_port()
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                             "--save", "", "--appendonly", "no", "--dir", str(folder)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc, f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.02)
    proc.kill()
    raise SystemExit("redis-server did not start")


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


async def limiter_latency(url: str, calls: int) -> list[tuple[str, float, float]]:
    """(path, p50 ms, p99 ms) per path."""
    cfg = BackendConfig(url=url, prefix="bench" + str(os.getpid()))
    rows: list[tuple[str, float, float]] = []
    local_l, local_b = LocalLimiter(RateLimiter(1e9, 1e12)), LocalBreaker(CircuitBreaker())
    async with open_backend(cfg) as backend:
        shared_l = RedisLimiter(backend, "bench", 1e9, 1e12)
        shared_b = RedisBreaker(backend, "bench")
        for name, lim, brk in (("in-process", local_l, local_b),
                               ("redis", shared_l, shared_b)):
            before: list[float] = []
            whole: list[float] = []
            opts = ActorOptions(limiter=lim, breaker=brk)
            for i in range(calls + 100):
                now = trio.current_time()
                t0 = time.perf_counter()
                if getattr(brk, "remote", False):
                    gate, _ = await admit_and_reserve(opts, 500)  # as the actor does: at once
                else:
                    gate = await brk.admit(now)
                    await lim.reserve(500, now)
                t1 = time.perf_counter()
                await brk.record(Verdict.SUCCESS, now, probe=gate.probe)
                await lim.settle(400, now, estimate=500)
                t2 = time.perf_counter()
                if i >= 100:  # warmed up: connections open, scripts loaded
                    before.append((t1 - t0) * 1000)
                    whole.append((t2 - t0) * 1000)
            rows.append((f"{name}: before a request (admit + reserve)",
                         pct(before, 0.5), pct(before, 0.99)))
            rows.append((f"{name}: per request, all four calls",
                         pct(whole, 0.5), pct(whole, 0.99)))
        floor: list[float] = []
        for i in range(calls + 100):
            t0 = time.perf_counter()
            await backend.redis.get(backend.keys.k("floor"))
            if i >= 100:
                floor.append((time.perf_counter() - t0) * 1000)
        rows.append(("redis: one GET (the round trip's floor)", pct(floor, 0.5),
                     pct(floor, 0.99)))
    return rows


class Answers(Script):
    def take(self, req: Any) -> Any:
        return Response(parts=[TextPart("done")], stop="stop", finish_reason="stop",
                        usage=Usage(input_tokens=20, output_tokens=2))


def worker_config(tmp: Path, name: str, base_url: str, url: str, prefix: str) -> Path:
    cfg = {"provider": "main",
           "providers": {"main": {"kind": "openai-chat", "model": "m", "api_key": "k",
                                  "base_url": base_url}},
           "tools": {"workspace": str(tmp / "workspace")},
           "logging": {"dir": str(tmp / name)}, "reasoning": {"encrypt": False},
           "backend": {"url": url, "prefix": prefix}}
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


async def throughput(url: str, prefix: str, sessions: int) -> tuple[float, float]:
    """(seconds, sessions per second) for ``sessions`` queued at once."""
    async with open_backend(BackendConfig(url=url, prefix=prefix)) as backend:
        queue = SessionQueue(backend)
        await queue.ensure_group()
        t0 = time.perf_counter()
        ids = {await queue.enqueue(f"task {i}") for i in range(sessions)}
        with trio.fail_after(600):
            await queue.ended(ids)
        elapsed = time.perf_counter() - t0
    return elapsed, sessions / elapsed


def start_workers(tmp: Path, base_url: str, url: str, prefix: str, workers: int,
                  concurrency: int) -> list[subprocess.Popen[bytes]]:
    procs = []
    for i in range(workers):
        config = worker_config(tmp, f"w{i}", base_url, url, prefix)
        procs.append(subprocess.Popen(
            [sys.executable, str(ROOT / "main.py"), "worker", "--config", str(config),
             "--concurrency", str(concurrency), "--name", f"w{i}", "--grace", "2"],
            cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    return procs


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            os.kill(p.pid, signal.SIGTERM)
    for p in procs:
        p.wait(timeout=30)


def table(title: str, header: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=title, title_justify="left")
    for h in header:
        t.add_column(h)
    for row in rows:
        t.add_row(*(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row))
    Console().print(t)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--redis", help="redis://HOST:PORT/DB (default: start one)")
    p.add_argument("--sessions", type=int, default=200)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--calls", type=int, default=5000)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        server = None
        url = args.redis
        if url is None:
            server, url = start_redis(tmp)
        try:
            rows = trio.run(limiter_latency, url, args.calls)
            redis_p99 = max(p99 for name, _, p99 in rows if name.startswith("redis: before"))
            table(f"limiter latency, ms ({args.calls} requests; goal < {GOAL_MS} ms at p99 "
                  f"before a request: {'met' if redis_p99 < GOAL_MS else 'NOT met'})",
                  ("path", "p50", "p99"), rows)
            prefix = f"benchq{os.getpid()}"
            with FakeProviderServer.in_thread(Answers(), chunk_chars=64) as fake:
                procs = start_workers(tmp, fake.base_url("openai-chat"), url, prefix,
                                      args.workers, args.concurrency)
                try:
                    seconds, rate = trio.run(throughput, url, prefix, args.sessions)
                finally:
                    stop(procs)
            table("sessions", ("sessions", "workers", "concurrency", "seconds",
                               "sessions/s"),
                  [(args.sessions, args.workers, args.concurrency, seconds, rate)])
        finally:
            if server is not None:
                os.kill(server.pid, signal.SIGTERM)
                server.wait(timeout=10)


if __name__ == "__main__":
    main()
