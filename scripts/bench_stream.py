"""Client CPU per streamed chunk: the provider runtime against a raw floor, per protocol.

    python scripts/bench_stream.py [--events 2000] [--reps 7] [--burst]

A fake provider server runs in a child process (so its CPU is not counted) and serves the
same pre-encoded event stream of each protocol over loopback. In this process, per request:

By default the server writes one SSE event at a time with a short pause, as providers do,
so each network read carries one event (the "per chunk" of the target); ``--burst`` writes
each stream at once, which shows the decoding cost alone.

* floor: raw ``httpx`` streaming + line split + ``msgspec.json.decode`` of each ``data:``
  line, nothing else;
* runtime: ``HTTPProvider.attempt`` (SSE decoder, codec state machine, typed decoding,
  assembly) delivering every normalized event on a bounded trio memory channel to a
  consumer task.

CPU time (``time.process_time``) per SSE event is reported as the median over ``--reps``
runs, with the ratio runtime / floor. Target: <= 1.25x.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
import msgspec
import trio

from runtime.events import Event
from runtime.model import Request
from runtime.providers import HTTPProvider, ProviderSpec
from runtime.providers.kinds import KINDS

PROTOCOLS = ["openai-chat", "openai-responses", "anthropic"]

SERVER = r"""
import sys, time, importlib
sys.path.insert(0, {root!r})
from runtime.model import Response, TextPart, ToolCallPart, Usage
from runtime.testing.script import Script, Raw
from runtime.testing.server import FakeProviderServer

n = {events}
text = "".join(f"word{{i}} " for i in range(n))
resp = Response("r1", "bench-model", [TextPart(text), ToolCallPart("call_1", "f", '{{"a": "' + "x" * 400 + '"}}')],
                "tool_calls", "tool_calls", Usage(100, n))
raws = {{}}
for proto in ("openai-chat", "openai-responses", "anthropic"):
    enc = importlib.import_module("runtime.testing.wire." + proto.replace("-", "_"))
    events = list(enc.encode_stream(resp, chunk_chars=6))
    # burst: the whole stream in one write; paced: one event per write, as providers send
    raws[proto] = Raw(200, {{"content-type": "text/event-stream"}},
                      [b"".join(events)] if {burst} else events)

class Forever(Script):
    def take(self, req):
        return raws[req.protocol]

with FakeProviderServer.in_thread(Forever(), chunk_delay={delay}) as server:
    print(server.port, flush=True)
    sys.stdin.read()
"""


async def floor_once(client: httpx.AsyncClient, url: str, body: bytes) -> int:
    n = 0
    decode = msgspec.json.decode
    async with client.stream("POST", url, content=body,
                             headers={"content-type": "application/json"}) as r:
        buf = b""
        async for chunk in r.aiter_bytes():
            buf += chunk
            lines = buf.split(b"\n")
            buf = lines.pop()
            for line in lines:
                if line.startswith(b"data:"):
                    data = line[5:].strip()
                    if data != b"[DONE]":
                        decode(data)
                        n += 1
    return n


async def runtime_once(provider: HTTPProvider, req: Request) -> int:
    count = 0
    send, recv = trio.open_memory_channel[list[Event]](64)

    async def consume() -> None:
        nonlocal count
        async with recv:
            async for batch in recv:
                count += len(batch)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(consume)
        async with send:
            await provider.attempt(req, send, stream=True)
    return count


async def bench(port: int, reps: int) -> list[tuple[str, float, float, int, int]]:
    rows = []
    async with httpx.AsyncClient(timeout=60) as client:
        for proto in PROTOCOLS:
            base = f"http://127.0.0.1:{port}" + ("/v1" if KINDS[proto].openai_base else "")
            provider = HTTPProvider(ProviderSpec("bench", proto, base, "m", api_key="k"), client)
            req = Request("m", [])
            body = provider.encode(req, stream=True)
            sse_events = await floor_once(client, provider.url, body)  # warm-up + count
            await runtime_once(provider, req)
            floor, ours = [], []
            delivered = 0
            for _ in range(reps):
                t = time.process_time()
                await floor_once(client, provider.url, body)
                floor.append((time.process_time() - t) / sse_events)
                t = time.process_time()
                delivered = await runtime_once(provider, req)
                ours.append((time.process_time() - t) / sse_events)
            rows.append((proto, statistics.median(floor), statistics.median(ours), sse_events,
                         delivered))
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=2000, help="words of text per response")
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--burst", action="store_true",
                    help="send each stream in one write (many events per network read) "
                         "instead of one event per write")
    ap.add_argument("--delay", type=float, default=0.0002,
                    help="seconds between two events in paced mode")
    args = ap.parse_args()
    root = str(Path(__file__).resolve().parent.parent)
    server = subprocess.Popen([sys.executable, "-c", SERVER.format(
        root=root, events=args.events, burst=args.burst, delay=0.0 if args.burst else args.delay)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        rows = trio.run(bench, port, args.reps)
    finally:
        assert server.stdin is not None
        server.stdin.close()
        server.wait(timeout=10)
    mode = "burst (many events per read)" if args.burst else "paced (one event per read)"
    print(f"mode: {mode}; CPU time of this process per SSE event, median of {args.reps} runs")
    print(f"{'protocol':<18}{'sse events':>11}{'floor us/chunk':>16}{'runtime us/chunk':>18}"
          f"{'ratio':>8}{'events out':>12}")
    worst = 0.0
    for proto, floor, ours, n, delivered in rows:
        ratio = ours / floor
        worst = max(worst, ratio)
        print(f"{proto:<18}{n:>11}{floor * 1e6:>16.2f}{ours * 1e6:>18.2f}{ratio:>7.2f}x{delivered:>12}")
    print(f"worst ratio {worst:.2f}x (target <= 1.25x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
