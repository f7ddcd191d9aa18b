"""Many concurrent sessions in one process: CPU per streamed chunk, memory, descriptors, errors.

    python scripts/bench_sessions.py [--sizes 1,10,100,1000] [--turns 3] [--deltas 100]
                                     [--fd-limit 1024 --limited 2000] [--runs 1]

A fake provider server runs in a child process (its CPU is not counted) and answers every
session the same conversation: ``--turns`` - 1 answers of ``--deltas`` text deltas plus a call
of a no-op tool, then a final answer of ``--deltas`` deltas. Each size runs in a fresh child
process (so memory is measured from a clean start) that first opens an engine, then:

* floor: as many tasks as sessions, each sending ``--turns`` streamed requests with raw
  ``httpx`` (one client with the engine's pool limits) + line split + ``msgspec.json.decode``;
* sessions: that many ``engine.start`` at once, each to its end (run folders, transcripts,
  summaries, tools, the journal: everything a session does).

It reports the whole process's CPU (``time.process_time``) per SSE event for each and their
ratio, the peak RSS above the engine's baseline divided by the sessions, the peak number of
open descriptors, and the sessions that did not finish. With ``--fd-limit N`` a last child
runs ``--limited`` sessions under ``RLIMIT_NOFILE`` = N: every session must finish (they wait
for a connection of the pool or a file slot of the journal) and no circuit breaker opens.
Goals (issue 11): CPU per chunk <= 3x the floor at 1,000 sessions, <= 250 KB per session.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SERVER = r"""
import sys
sys.path.insert(0, {root!r})
from runtime.model import Response, TextPart, ToolCallPart, Usage
from runtime.testing.script import Script
from runtime.testing.server import FakeProviderServer

TURNS, DELTAS = {turns}, {deltas}
TEXT = "abcdefg " * DELTAS   # chunk_chars=8: one delta per word

class Conversation(Script):
    '''Turn n of a session (n - 1 tool results in the request) gets answer n.'''
    def take(self, req):
        turn = 1 + sum(1 for m in req.body.get("messages", []) if m.get("role") == "tool")
        if turn < TURNS:
            return Response(f"r{{turn}}", "m", [TextPart(TEXT), ToolCallPart(
                f"call_{{turn}}", "noop", "{{}}")], "tool_calls", "tool_calls", Usage(100, 50))
        return Response(f"r{{turn}}", "m", [TextPart(TEXT)], "stop", "stop", Usage(100, 50))

with FakeProviderServer.in_thread(Conversation(), chunk_chars=8) as server:
    print(server.port, flush=True)
    sys.stdin.read()
"""


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def _child(port: int, sessions: int, turns: int, floor: bool) -> dict[str, Any]:
    """One measurement in this (child) process."""
    import httpx
    import msgspec
    import trio
    import yaml

    from runtime.config import load_config
    from runtime.engine import Engine
    from runtime.model import Message, Request
    from runtime.providers import build_provider
    from runtime.tools.registry import Tool
    from scripts.bench_stream import floor_stream

    async def noop() -> str:
        return "ok"

    tools = [Tool("noop", "Does nothing.", {"type": "object", "properties": {}}, noop,
                  read_only=True)]
    out: dict[str, Any] = {"sessions": sessions}
    with tempfile.TemporaryDirectory(prefix="bench-sessions-") as tmp:
        path = Path(tmp) / "agent.yaml"
        path.write_text(yaml.safe_dump({
            "provider": "main",
            "providers": {"main": {"kind": "openai-chat", "model": "m", "api_key": "sk-x-000000",
                                   "base_url": f"http://127.0.0.1:{port}/v1",
                                   "timeout": {"total": 3600}}},
            "limits": {"max_turns": turns + 2},
            "logging": {"dir": str(Path(tmp) / "logging")},
            "tools": {"workspace": tmp}, "reasoning": {"encrypt": False}}))
        cfg = load_config(path, environ={})
        peak = {"rss": 0, "fds": 0}

        async def sample(stop: trio.Event) -> None:
            while not stop.is_set():
                peak["rss"] = max(peak["rss"], _rss())
                peak["fds"] = max(peak["fds"], _fds())
                with trio.move_on_after(0.05):
                    await stop.wait()

        async with Engine.open(cfg, tools=tools) as engine:
            # warm-up: imports, the pool's first connection, the worker threads
            warm = await engine.start("warm up")
            await warm.result()
            base_rss = _rss()
            stop = trio.Event()
            results: list[Any] = []
            async with trio.open_nursery() as nursery:
                nursery.start_soon(sample, stop)
                t = time.process_time()

                async def one() -> None:
                    s = await engine.start("Use the tool, then answer.")
                    results.append(await s.result())

                async with trio.open_nursery() as runs:
                    for _ in range(sessions):
                        runs.start_soon(one)
                out["session_cpu"] = time.process_time() - t
                stop.set()
            out["rss_per_session"] = (peak["rss"] - base_rss) / sessions
            out["peak_fds"] = peak["fds"]
            failed = [r for r in results if r.status != "finished"]
            out["failed"] = len(failed)
            out["failures"] = sorted({r.message or r.status for r in failed})[:5]
            gate = engine.runtimes["main"].options.breaker  # the async protocol's wrapper
            local = getattr(gate, "local", None)
            out["breaker"] = (local.state(trio.current_time()).value if local is not None
                              else "none")
            out["circuit_warnings"] = 0
            for r in results:
                text = (r.run_dir / "transcript.jsonl").read_text()
                out["circuit_warnings"] += text.count('"circuit_')
            rt = engine.runtimes["main"]
            if floor:
                http = build_provider("main", rt.config, rt.client)  # type: ignore[arg-type]
                first = msgspec.json.decode(http.encode(Request("m", [Message.user("hi")]),
                                                        stream=True))
                # the body of turn k carries k - 1 tool results, as the session's do
                bodies = [msgspec.json.encode({**first, "messages": first["messages"] + [
                    {"role": "tool", "tool_call_id": f"call_{i}", "content": "ok"}
                    for i in range(k)]}) for k in range(turns)]
                headers = dict(http._headers)  # type: ignore[attr-defined]
                limits = _limits_of(rt.client)
                counted = [0]

                async def raw(client: httpx.AsyncClient) -> None:
                    for body in bodies:
                        # awaited first: `counted[0] += await ...` would read the count
                        # before the await and lose the other tasks' events meanwhile
                        n = await floor_stream(client, http.url,  # type: ignore[attr-defined]
                                               body, headers)
                        counted[0] += n

                async with httpx.AsyncClient(limits=limits, timeout=3600) as client:
                    await raw(client)  # warm-up
                    per_session, counted[0] = counted[0], 0
                    t = time.process_time()
                    async with trio.open_nursery() as nursery:
                        for _ in range(sessions):
                            nursery.start_soon(raw, client)
                    out["floor_cpu"] = time.process_time() - t
                if counted[0] != per_session * sessions:
                    raise SystemExit(f"the floor counted {counted[0]} events, not "
                                     f"{per_session} for each of {sessions} sessions")
                out["events"] = counted[0]
    return out


def _limits_of(client: Any) -> Any:
    """The pool limits of the engine's client, for the floor's client."""
    import httpx

    pool = client._transport._pool
    return httpx.Limits(max_connections=pool._max_connections,
                        max_keepalive_connections=pool._max_keepalive_connections,
                        keepalive_expiry=pool._keepalive_expiry)


def child_main(args: argparse.Namespace) -> int:
    import trio

    if args.fd_limit:
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (args.fd_limit, hard))
    got = trio.run(_child, args.port, args.child, args.turns, not args.fd_limit)
    print(json.dumps(got), flush=True)
    return 0


def _run_child(port: int, sessions: int, args: argparse.Namespace, fd_limit: int = 0
               ) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", str(sessions), "--port", str(port),
           "--turns", str(args.turns), "--deltas", str(args.deltas)]
    if fd_limit:
        cmd += ["--fd-limit", str(fd_limit)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"child for {sessions} sessions failed:\n{done.stderr[-3000:]}")
    got: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    got["fd_limit"] = fd_limit
    return got


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1,10,100,1000")
    ap.add_argument("--turns", type=int, default=3)
    ap.add_argument("--deltas", type=int, default=100)
    ap.add_argument("--fd-limit", type=int, default=0)
    ap.add_argument("--limited", type=int, default=2000)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--child", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child_main(args)
    root = str(Path(__file__).resolve().parent.parent)
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER.format(root=root, turns=args.turns, deltas=args.deltas)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    rows: list[dict[str, Any]] = []
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        for _ in range(args.runs):
            for n in (int(x) for x in args.sizes.split(",") if x):
                rows.append(_run_child(port, n, args))
        if args.fd_limit:
            rows.append(_run_child(port, args.limited, args, args.fd_limit))
    finally:
        assert server.stdin is not None
        server.stdin.close()
        server.wait(timeout=30)
    print(f"{args.turns} turns, {args.deltas} text deltas per answer; CPU of the whole process")
    print(f"{'sessions':>9}{'ulimit -n':>10}{'floor us/ev':>12}{'ours us/ev':>11}{'ratio':>8}"
          f"{'KB/session':>11}{'peak fds':>9}{'failed':>7}{'breaker':>9}")
    for r in rows:
        if "floor_cpu" in r:
            events = r["events"]
            floor, ours = r["floor_cpu"] / events * 1e6, r["session_cpu"] / events * 1e6
            cells = f"{floor:>12.1f}{ours:>11.1f}{ours / floor:>7.2f}x"
        else:
            cells = f"{'-':>12}{'-':>11}{'-':>8}"
        print(f"{r['sessions']:>9}{r['fd_limit'] or '-':>10}{cells}"
              f"{r['rss_per_session'] / 1024:>11.0f}{r['peak_fds']:>9}{r['failed']:>7}"
              f"{r['breaker']:>9}")
        for f in r["failures"]:
            print(f"          failure: {f[:150]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
