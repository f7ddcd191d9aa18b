"""Service mode under load: N concurrent sessions through the HTTP API on one process.

    python scripts/bench_service.py [--sessions 200] [--words 40]

Starts the fake provider (its own process, answering over loopback HTTP) and
``python main.py serve`` as a subprocess with ``server.max_sessions`` = N, then, all at
once, N clients each create a session (``POST /v1/sessions``), watch its event stream
(``GET /v1/sessions/{id}/events``) to the end and check that it finished. Reported:

* time to first event: from the start of the POST to the first SSE event received
  (p50, p99);
* session time: from the POST to the end of its stream (p50, p99);
* CPU per session: the serve process's user + system CPU over the run, divided by N;
* errors: any answer other than 201, a stream without ``session_end``, a status other
  than ``finished`` (the script exits 1 when there is one).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
import trio
import yaml

from runtime.accounting import percentile
from runtime.wire.sse import SSEDecoder

ROOT = Path(__file__).resolve().parent.parent
# the fake provider, in its own process (its CPU is neither the server's nor the clients')
FAKE = r"""
import sys
sys.path.insert(0, {root!r})
import trio
from runtime.model import Response, TextPart, Usage
from runtime.testing.server import serve_fake_provider

n, words = int(sys.argv[1]), int(sys.argv[2])
answer = Response(parts=[TextPart(" ".join(f"word{{i}}" for i in range(words)))],
                  stop="end_turn", usage=Usage(50, words))

async def main():
    async with trio.open_nursery() as nursery:
        server = await nursery.start(lambda task_status: serve_fake_provider(
            [answer] * n, chunk_chars=16, task_status=task_status))
        print(server.base_url("openai-chat"), flush=True)

trio.run(main)
"""
KEY = "bench-key-0123456789abcdef"


def _cpu(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _config(folder: Path, base_url: str, sessions: int) -> Path:
    cfg = {
        "provider": "main",
        "providers": {"main": {"kind": "openai-chat", "model": "bench-model",
                               "api_key": "sk-bench-0123456789", "base_url": base_url,
                               "retry": {"max_attempts": 1}}},
        "logging": {"dir": str(folder / "logging")},
        "tools": {"workspace": str(folder / "workspace")},
        "reasoning": {"encrypt": False},
        "server": {"port": 0, "max_sessions": sessions, "max_queue": sessions,
                   "rate_limit": {"requests_per_minute": 100 * sessions},
                   "api_keys": [{"name": "bench", "sha256": hashlib.sha256(KEY.encode())
                                 .hexdigest(), "scopes": ["sessions:read", "sessions:write"]}]},
    }
    (folder / "workspace").mkdir()
    path = folder / "agent.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


class Serve:
    def __init__(self, config: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "main.py", "serve", "--config", str(config), "--log-format",
             "json"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.url = ""
        ready = threading.Event()

        def read() -> None:
            assert self.proc.stderr is not None
            for raw in self.proc.stderr:
                try:
                    line = json.loads(raw)
                except ValueError:
                    continue
                if line.get("event") == "listening":
                    self.url = line["url"]
                    ready.set()

        threading.Thread(target=read, daemon=True).start()
        if not ready.wait(60):
            self.stop()
            raise SystemExit("serve did not start")

    def stop(self) -> int:
        os.kill(self.proc.pid, signal.SIGTERM)
        return self.proc.wait(timeout=60)


async def _one(client: httpx.AsyncClient, n: int, go: trio.Event,
               out: list[dict[str, object]]) -> None:
    await go.wait()
    t0 = time.perf_counter()
    result: dict[str, object] = {"error": None}
    try:
        resp = await client.post("/v1/sessions", json={"task": f"session {n}"})
        if resp.status_code != 201:
            raise RuntimeError(f"create: {resp.status_code} {resp.text[:200]}")
        sid = resp.json()["id"]
        result["created"] = time.perf_counter() - t0
        dec = SSEDecoder()
        first: float | None = None
        end = None
        async with client.stream("GET", f"/v1/sessions/{sid}/events") as stream:
            async for chunk in stream.aiter_raw():
                for ev in dec.feed(chunk):
                    if first is None:
                        first = time.perf_counter() - t0
                    if ev.event == "session_end":
                        end = json.loads(ev.data)
        if end is None or end["status"] != "finished":
            raise RuntimeError(f"session {sid} ended without finishing: {end}")
        result.update(first=first, total=time.perf_counter() - t0)
    except Exception as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"
    out.append(result)


async def _run(url: str, sessions: int) -> tuple[list[dict[str, object]], float]:
    limits = httpx.Limits(max_connections=2 * sessions + 10, max_keepalive_connections=0)
    results: list[dict[str, object]] = []
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=120,
                                 headers={"authorization": f"Bearer {KEY}"}) as client:
        go = trio.Event()
        async with trio.open_nursery() as nursery:
            for n in range(sessions):
                nursery.start_soon(_one, client, n, go, results)
            await trio.sleep(0.5)  # every client is waiting at the gate
            t0 = time.perf_counter()
            go.set()
        return results, time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sessions", type=int, default=200)
    ap.add_argument("--words", type=int, default=40, help="words in each answer")
    args = ap.parse_args()
    n = args.sessions
    fake = subprocess.Popen([sys.executable, "-c", FAKE.format(root=str(ROOT)), str(n),
                             str(args.words)], stdout=subprocess.PIPE, text=True)
    try:
        assert fake.stdout is not None
        base_url = fake.stdout.readline().strip()
        with tempfile.TemporaryDirectory() as tmp:
            serve = Serve(_config(Path(tmp), base_url, n))
            try:
                cpu0, client0, fake0 = _cpu(serve.proc.pid), time.process_time(), _cpu(fake.pid)
                results, wall = trio.run(_run, serve.url, n)
                cpu = _cpu(serve.proc.pid) - cpu0
                client_cpu = time.process_time() - client0
                fake_cpu = _cpu(fake.pid) - fake0
            finally:
                code = serve.stop()
    finally:
        fake.terminate()
        fake.wait(timeout=30)
    errors = [r["error"] for r in results if r["error"]]
    firsts = [float(r["first"]) for r in results if not r["error"]]  # type: ignore[arg-type]
    totals = [float(r["total"]) for r in results if not r["error"]]  # type: ignore[arg-type]
    creates = [float(r["created"]) for r in results if not r["error"]]  # type: ignore[arg-type]

    def ms(v: float | None) -> str:
        return "-" if v is None else f"{v * 1000:.1f}"

    rows = [
        ("sessions (concurrent)", str(n)),
        ("errors", str(len(errors))),
        ("POST /v1/sessions p50 (ms)", ms(percentile(creates, 50))),
        ("POST /v1/sessions p99 (ms)", ms(percentile(creates, 99))),
        ("time to first event p50 (ms)", ms(percentile(firsts, 50))),
        ("time to first event p99 (ms)", ms(percentile(firsts, 99))),
        ("session time p50 (ms)", ms(percentile(totals, 50))),
        ("session time p99 (ms)", ms(percentile(totals, 99))),
        ("server CPU per session (ms)", f"{cpu / n * 1000:.2f}"),
        ("server CPU, all sessions (s)", f"{cpu:.2f}"),
        ("clients' CPU / fake provider's CPU (s)", f"{client_cpu:.2f} / {fake_cpu:.2f}"),
        ("wall time, all sessions (s)", f"{wall:.2f}"),
        ("serve exit code after SIGTERM", str(code)),
    ]
    width = max(len(k) for k, _ in rows)
    print(f"| {'measure'.ljust(width)} | value |")
    print(f"| {'-' * width} | ----- |")
    for k, v in rows:
        print(f"| {k.ljust(width)} | {v} |")
    for e in errors[:10]:
        print(f"error: {e}", file=sys.stderr)
    return 1 if errors or code != 0 else 0


if __name__ == "__main__":
    sys.exit(main())
