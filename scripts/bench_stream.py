"""Client CPU per streamed event through the session path, against a raw floor, per protocol.

    python scripts/bench_stream.py [--events 2000] [--reps 7] [--runs 3] [--modes paced,burst,body]

A fake provider server runs in a child process (its CPU is not counted) and serves the same
pre-encoded answer of each protocol over loopback HTTP/1.1. In this process, per request:

* floor: raw ``httpx`` streaming + line split + ``msgspec.json.decode`` of each ``data:``
  line, nothing else (for ``body``: ``client.post`` + ``msgspec.json.decode`` of the body);
* session: the path a session's turn takes, on an open ``Engine``: a ``TurnRequest`` to the
  provider runtime actor (rate limiter, breaker, retry loop), ``HTTPProvider.attempt``
  (SSE decoding, the codec's state machine, assembly), the event batches on the reply
  channel, ``TurnReader`` consuming them and writing the ``request`` and ``assistant``
  records through the session's ``Recorder`` (redaction, encoding, the journal, its flush
  before the request).

Modes: ``paced``: the server writes one SSE event at a time with a short pause, as providers
do, so each network read carries about one event; ``burst``: each stream in one write, so a
read carries many events (the decoding cost alone); ``body``: a non-streamed request.

CPU time of the whole process (``time.process_time``, the journal's worker thread included)
per SSE event (per request for ``body``), median over ``--reps``; ``--runs`` runs, each with
its own server and engine, give the range. Goals (issue 11): stream <= 1.25x the floor,
non-streamed request <= 1.1x.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
import msgspec
import trio
import yaml

from runtime.accounting import Accounts
from runtime.config import load_config
from runtime.engine import Engine
from runtime.model import Message, Request
from runtime.providers import build_provider
from runtime.providers.actor import TurnRequest
from runtime.providers.kinds import KINDS
from runtime.session.journal import RunFolder, journal_actor
from runtime.session.recorder import Recorder
from runtime.session.turn import Answer, TurnReader

PROTOCOLS = ["openai-chat", "openai-responses", "anthropic"]

SERVER = r"""
import sys, importlib, msgspec
sys.path.insert(0, {root!r})
from runtime.model import Response, TextPart, ToolCallPart, Usage
from runtime.testing.script import Script, Raw
from runtime.testing.server import FakeProviderServer

def answer(words):
    text = "".join(f"word{{i}} " for i in range(words))
    return Response("r1", "bench-model", [TextPart(text), ToolCallPart(
        "call_1", "f", '{{"a": "' + "x" * 400 + '"}}')], "tool_calls", "tool_calls",
        Usage(100, words))

raws = {{}}
for proto in ("openai-chat", "openai-responses", "anthropic"):
    enc = importlib.import_module("runtime.testing.wire." + proto.replace("-", "_"))
    events = list(enc.encode_stream(answer({events}), chunk_chars=6))
    # burst: the whole stream in one write; paced: one event per write, as providers send
    raws[proto, True] = Raw(200, {{"content-type": "text/event-stream"}},
                            [b"".join(events)] if {burst} else events)
    raws[proto, False] = Raw(200, {{"content-type": "application/json"}},
                             msgspec.json.encode(enc.encode_json(answer({body_words}))))

class Forever(Script):
    def take(self, req):
        return raws[req.protocol, req.stream]

with FakeProviderServer.in_thread(Forever(), chunk_delay={delay}) as server:
    print(server.port, flush=True)
    sys.stdin.read()
"""


async def floor_stream(client: httpx.AsyncClient, url: str, body: bytes,
                       headers: dict[str, str]) -> int:
    """The floor of one streamed request: raw ``httpx``, a line split and
    ``msgspec.json.decode`` per SSE event; how many events there were."""
    n = 0
    decode = msgspec.json.decode
    async with client.stream("POST", url, content=body, headers=headers) as r:
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


async def floor_body(client: httpx.AsyncClient, url: str, body: bytes,
                     headers: dict[str, str]) -> int:
    r = await client.post(url, content=body, headers=headers)
    msgspec.json.decode(r.content)
    return 1


class SessionPath:
    """One session's turn machinery on an open engine: its recorder and journal."""

    def __init__(self, engine: Engine, rec: Recorder) -> None:
        self.engine = engine
        self.rec = rec
        self.turn = 0

    async def turn_of(self, name: str, req: Request, stream: bool) -> Answer:
        self.turn += 1
        self.rec.turn = self.turn
        rt = self.engine.runtimes[name]
        await self.rec.flush()  # as the conductor does before every request
        send, recv = trio.open_memory_channel[Any](16)
        await rt.mailbox.send(TurnRequest(req, send, self.turn, stream, estimate=10))
        got = await TurnReader(self.rec, name, req.model, self.engine.hooks).read(recv)
        if not isinstance(got, Answer):
            raise SystemExit(f"{name}: the turn failed: {got}")
        return got


def _config(root: Path, port: int) -> Any:
    providers = {}
    for proto in PROTOCOLS:
        base = f"http://127.0.0.1:{port}" + ("/v1" if KINDS[proto].openai_base else "")
        providers[proto] = {"kind": proto, "base_url": base, "model": "bench-model",
                            "api_key": "sk-bench-not-a-real-key-000"}
    path = root / "agent.yaml"
    path.write_text(yaml.safe_dump({
        "provider": PROTOCOLS[0], "providers": providers,
        "logging": {"dir": str(root / "logging")},
        "tools": {"workspace": str(root)}, "reasoning": {"encrypt": False}}))
    return load_config(path, environ={})


async def bench(port: int, reps: int, modes: list[str]) -> dict[tuple[str, str], tuple[float, float]]:
    out: dict[tuple[str, str], tuple[float, float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-stream-") as tmp:
        cfg = _config(Path(tmp), port)
        async with Engine.open(cfg) as engine, trio.open_nursery() as nursery:
            folder = RunFolder(Path(tmp) / "run")
            folder.create(exist_ok=False)
            journal = await nursery.start(lambda task_status: journal_actor(
                folder, slots=engine.file_slots, task_status=task_status))
            rec = Recorder("bench", journal, engine.redactor, Accounts())
            path = SessionPath(engine, rec)
            async with httpx.AsyncClient(timeout=60) as client:
                for proto in PROTOCOLS:
                    provider = engine.runtimes[proto]
                    http = _http_of(engine, proto)
                    req = Request("bench-model", [Message.user("Say many words.")])
                    for mode in modes:
                        stream = mode != "body"
                        floor_once = floor_stream if stream else floor_body
                        body = http.encode(req, stream=stream)
                        headers = dict(http._headers)
                        per = await floor_once(client, http.url, body, headers)  # warm-up, count
                        await path.turn_of(provider.name, req, stream)
                        floor, ours = [], []
                        for _ in range(reps):
                            t = time.process_time()
                            await floor_once(client, http.url, body, headers)
                            floor.append((time.process_time() - t) / per)
                            t = time.process_time()
                            await path.turn_of(provider.name, req, stream)
                            ours.append((time.process_time() - t) / per)
                        out[proto, mode] = (statistics.median(floor), statistics.median(ours))
            await rec.flush()
            await journal.aclose()
    return out


def _http_of(engine: Engine, name: str) -> Any:
    """An ``HTTPProvider`` like the one the engine's actor runs for ``name``: the floor
    sends what it sends (URL, body, headers)."""
    rt = engine.runtimes[name]
    return build_provider(name, rt.config, rt.client)  # type: ignore[arg-type]


def run_once(args: argparse.Namespace, burst: bool, modes: list[str]
             ) -> dict[tuple[str, str], tuple[float, float]]:
    root = str(Path(__file__).resolve().parent.parent)
    server = subprocess.Popen([sys.executable, "-c", SERVER.format(
        root=root, events=args.events, body_words=args.body_words, burst=burst,
        delay=0.0 if burst else args.delay)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        return trio.run(bench, port, args.reps, modes)
    finally:
        assert server.stdin is not None
        server.stdin.close()
        server.wait(timeout=10)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=2000, help="words of text per streamed answer")
    ap.add_argument("--body-words", type=int, default=100,
                    help="words of text per non-streamed answer")
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--modes", default="paced,burst,body")
    ap.add_argument("--delay", type=float, default=0.0002,
                    help="seconds between two events in paced mode")
    args = ap.parse_args()
    modes = args.modes.split(",")
    runs: list[dict[tuple[str, str], tuple[float, float]]] = []
    for _ in range(args.runs):
        got: dict[tuple[str, str], tuple[float, float]] = {}
        if "paced" in modes:
            got.update(run_once(args, False, ["paced"]))
        rest = [m for m in modes if m != "paced"]
        if rest:
            got.update(run_once(args, True, rest))
        runs.append(got)
    unit = {"paced": "us/event", "burst": "us/event", "body": "us/request"}
    goal = {"paced": 1.25, "burst": 1.25, "body": 1.1}
    print(f"CPU of this process, median of {args.reps} requests, {args.runs} runs (min-max)")
    print(f"{'mode':<7}{'protocol':<18}{'unit':>11}{'floor':>17}{'session':>17}"
          f"{'ratio':>15}{'goal':>8}")
    for mode in modes:
        for proto in PROTOCOLS:
            f = [r[proto, mode][0] * 1e6 for r in runs]
            s = [r[proto, mode][1] * 1e6 for r in runs]
            ratio = [r[proto, mode][1] / r[proto, mode][0] for r in runs]
            # a space before each figure: one as wide as its field still stands apart
            print(f"{mode:<7}{proto:<18}{unit[mode]:>11} {min(f):>7.2f}-{max(f):<8.2f}"
                  f" {min(s):>7.2f}-{max(s):<8.2f} {min(ratio):>6.2f}-{max(ratio):.2f}x"
                  f"{goal[mode]:>7.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
