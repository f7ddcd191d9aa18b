"""More sessions than open files: a process under ``ulimit -n 256`` runs 300 concurrent sessions
through one engine. Sessions beyond the budget wait for a connection of the pool or a file slot
of the journal, or fail alone with a local error (``local_resource``); the others finish, and
no shared circuit breaker opens."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import trio

from runtime.model import Response, TextPart, ToolCallPart, Usage
from runtime.testing import open_fake_server

ROOT = Path(__file__).resolve().parent.parent
SESSIONS = 300
LIMIT = 256

CHILD = r'''
import json, resource, sys
from pathlib import Path
_, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, ({limit}, hard))
import trio, yaml
from runtime.config import load_config
from runtime.engine import Engine
from runtime.tools.registry import Tool

async def noop() -> str:
    return "ok"

async def main():
    tmp = Path(sys.argv[1])
    path = tmp / "agent.yaml"
    path.write_text(yaml.safe_dump({{
        "provider": "main",
        "providers": {{"main": {{"kind": "openai-chat", "model": "m", "api_key": "sk-fd-0000",
                               "base_url": sys.argv[2], "timeout": {{"total": 600}}}}}},
        "logging": {{"dir": str(tmp / "logs")}}, "tools": {{"workspace": str(tmp)}},
        "reasoning": {{"encrypt": False}}}}))
    cfg = load_config(path, environ={{}})
    tool = Tool("noop", "Does nothing.", {{"type": "object", "properties": {{}}}}, noop,
                read_only=True)
    results = []
    async with Engine.open(cfg, tools=[tool]) as engine:
        async def one(i):
            s = await engine.start(f"task {{i}}")
            results.append(await s.result())
        async with trio.open_nursery() as nursery:
            for i in range({sessions}):
                nursery.start_soon(one, i)
        breaker = engine.runtimes["main"].options.breaker.local  # the pure state machine
        state = breaker.state(trio.current_time()).value
    kinds, warnings = [], []
    for r in results:
        for line in (r.run_dir / "transcript.jsonl").read_text().splitlines():
            rec = json.loads(line)
            if rec["type"] == "provider_error":
                kinds.append(rec["kind"])
            elif rec["type"] == "warning":
                warnings.append(rec["code"])
    print(json.dumps({{"statuses": [r.status for r in results],
                      "messages": [r.message for r in results if r.status != "finished"],
                      "complete": sum((r.run_dir / "summary.json").exists() for r in results),
                      "breaker": state, "error_kinds": kinds, "warnings": warnings,
                      "soft_limit": resource.getrlimit(resource.RLIMIT_NOFILE)[0]}}))

trio.run(main)
'''


def _by_turn(req: Any) -> Response:
    """A tool call for a request without a tool result, else the answer."""
    if any(m.get("role") == "tool" for m in req.body.get("messages", [])):
        return Response("r2", "m", [TextPart("done, in a few words")], "stop", "stop",
                        Usage(10, 5))
    return Response("r1", "m", [TextPart("using the tool"), ToolCallPart("c1", "noop", "{}")],
                    "tool_calls", "tool_calls", Usage(10, 5))


async def test_300_sessions_under_ulimit_256_finish_or_fail_alone(tmp_path: Path) -> None:
    """Under RLIMIT_NOFILE 256, 300 concurrent two-turn sessions: each ends finished (having
    waited for a connection or a file slot) or failed with a local_resource error, every run
    folder is closed, and the provider's breaker never opens (no circuit warning)."""
    with trio.fail_after(600):
        async with open_fake_server([_by_turn] * (2 * SESSIONS)) as server:
            done = await trio.run_process(
                [sys.executable, "-c", CHILD.format(limit=LIMIT, sessions=SESSIONS),
                 str(tmp_path), server.base_url("openai-chat")],
                cwd=str(ROOT), capture_stdout=True, capture_stderr=True, check=False)
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    got = json.loads(done.stdout.decode().strip().splitlines()[-1])
    assert got["soft_limit"] == LIMIT
    assert len(got["statuses"]) == got["complete"] == SESSIONS
    assert set(got["statuses"]) <= {"finished", "provider_failed"}
    assert all("local_resource" in m or "open files" in m for m in got["messages"])
    assert set(got["error_kinds"]) <= {"local_resource"}
    assert got["breaker"] == "closed"
    assert not [w for w in got["warnings"] if w.startswith("circuit")]
    # more sessions than descriptors, and they did get through
    assert got["statuses"].count("finished") > LIMIT
