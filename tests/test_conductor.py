"""The conductor's tool loop, limits, failover and run folder, on the scripted provider."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import trio

from runtime.crypto import TraceDecryptError, key_from_text
from runtime.errors import ErrorKind, ProviderError
from runtime.model import (
    BuiltinToolPart,
    Message,
    ReasoningPart,
    Request,
    Response,
    TextPart,
    ToolCallPart,
    ToolResultPart,
    Usage,
)
from runtime.session.traces import read_traces
from runtime.testing import ScriptedProvider
from runtime.tools import make_tool

BASE = {
    "provider": "main",
    "providers": {"main": {"kind": "scripted", "model": "scripted",
                           "script": [{"text": "unused"}]}},
    "task": "do it",
}


def calls(*items: tuple[str, str, str]) -> Response:
    parts: list[Any] = [ToolCallPart(cid, name, args) for cid, name, args in items]
    return Response("r", "scripted", parts, "tool_calls", "tool_calls", Usage(10, 5))


def answer(text: str, usage: Usage | None = None) -> Response:
    return Response("r", "scripted", [TextPart(text)], "stop", "stop", usage or Usage(10, 5))


def last_tool_results(req: Request) -> list[ToolResultPart]:
    msg = req.messages[-1]
    assert msg.role == "tool"
    return [p for p in msg.parts if isinstance(p, ToolResultPart)]


async def test_parallel_calls_results_in_call_order(write_config, run_agent) -> None:
    """Two calls of one turn run concurrently and their results reach the model in call order."""
    order: list[str] = []
    first_may_finish = trio.Event()

    async def slow(tag: str) -> str:
        """Finishes only after the other call finished."""
        await first_may_finish.wait()
        order.append(tag)
        return f"slow {tag}"

    async def fast(tag: str) -> str:
        """Finishes first."""
        order.append(tag)
        first_may_finish.set()
        return f"fast {tag}"

    seen: list[Request] = []

    def final(req: Request) -> Response:
        seen.append(req)
        return answer("all done")

    provider = ScriptedProvider("main", [
        calls(("c1", "slow", '{"tag": "a"}'), ("c2", "fast", '{"tag": "b"}')),
        final,
    ])
    run = await run_agent(write_config(BASE), providers={"main": provider},
                          extra_tools=[make_tool(slow), make_tool(fast)])
    assert run.outcome.exit_code == 0 and run.out.strip() == "all done"
    assert order == ["b", "a"]  # completion order ...
    results = last_tool_results(seen[0])
    assert [(r.call_id, r.content) for r in results] == [("c1", "slow a"), ("c2", "fast b")]
    # the journal keeps each result as soon as its call finishes (a crash keeps it)
    assert [e["call_id"] for e in run.events("tool_result")] == ["c2", "c1"]
    assert run.events("session_end")[0]["status"] == "finished"


async def test_malformed_and_invalid_arguments_are_rejected_not_run(write_config, run_agent) -> None:
    """Bad JSON and schema violations become tool_rejected + an error result; the tool never runs."""
    ran: list[str] = []

    def note(text: str, count: int) -> str:
        """Record a note."""
        ran.append(text)
        return "ok"

    seen: list[Request] = []

    def final(req: Request) -> Response:
        seen.append(req)
        return answer("gave up")

    provider = ScriptedProvider("main", [
        calls(("c1", "note", '{"text": "x", "count": '), ("c2", "note", '{"text": 3}'),
              ("c3", "nope", "{}")),
        final,
    ])
    run = await run_agent(write_config(BASE), providers={"main": provider},
                          extra_tools=[make_tool(note)])
    assert ran == []
    rejected = run.events("tool_rejected")
    assert [e["call_id"] for e in rejected] == ["c1", "c2", "c3"]
    assert all(e["errors"] for e in rejected)
    results = last_tool_results(seen[0])
    assert all(r.is_error for r in results)
    assert "JSON" in str(results[0].content)
    assert "count" in str(results[1].content) and "text" in str(results[1].content)
    assert "nope" in str(results[2].content)


async def test_hanging_tool_is_cut_at_its_timeout(write_config, run_agent, autojump_clock) -> None:
    """A tool that never returns becomes an error result after tools.timeout (virtual time)."""

    async def hang() -> str:
        """Never returns."""
        await trio.sleep_forever()
        return "unreachable"

    provider = ScriptedProvider("main", [calls(("c1", "hang", "{}")), answer("moved on")])
    cfg = dict(BASE, tools={"timeout": 5})
    start = trio.current_time()
    run = await run_agent(write_config(cfg), providers={"main": provider},
                          extra_tools=[make_tool(hang)])
    assert run.outcome.exit_code == 0
    result = run.events("tool_result")[0]
    assert result["ok"] is False and "timed out" in result["content"]
    assert trio.current_time() - start == pytest.approx(5, abs=0.5)


async def test_max_turns_stops_with_exit_4(write_config, run_agent) -> None:
    """A model that keeps calling tools is stopped at limits.max_turns with exit code 4."""

    def echo(text: str) -> str:
        """Echo."""
        return text

    provider = ScriptedProvider("main", [calls((f"c{i}", "echo", '{"text": "x"}'))
                                         for i in range(10)])
    run = await run_agent(write_config(dict(BASE, limits={"max_turns": 3})),
                          providers={"main": provider}, extra_tools=[make_tool(echo)])
    assert run.outcome.exit_code == 4 and run.outcome.status == "limit"
    assert len(provider.requests) == 3
    assert "max_turns" in run.err
    end = run.events("session_end")[0]
    assert end["status"] == "limit" and end["turns"] == 3
    assert run.summary["status"] == "limit"


async def test_cost_budget_stops_before_exceeding(write_config, run_agent) -> None:
    """max_cost_usd stops the session before a turn whose cost would pass the limit."""

    def echo(text: str) -> str:
        """Echo."""
        return text

    # 1M input tokens a turn at $1/M: each turn costs $1 (+ output)
    big = Usage(input_tokens=1_000_000, output_tokens=0)
    script = [Response("r", "priced", [ToolCallPart(f"c{i}", "echo", '{"text": "x"}')],
                       "tool_calls", "tool_calls", big) for i in range(10)]
    provider = ScriptedProvider("main", script)
    cfg = dict(BASE, limits={"max_cost_usd": 2.5},
               pricing={"priced": {"input": 1.0, "output": 1.0}})
    cfg["providers"] = {"main": dict(BASE["providers"]["main"], model="priced")}
    run = await run_agent(write_config(cfg), providers={"main": provider},
                          extra_tools=[make_tool(echo)])
    assert run.outcome.exit_code == 4
    total = run.summary["totals"]["cost_usd"]
    assert total <= 2.5
    assert len(provider.requests) == 2  # a third turn would have cost at least $1 more


async def test_failover_drops_foreign_reasoning(write_config, run_agent) -> None:
    """When the main provider fails for good, the turn goes to the fallback, which never
    receives the main provider's signed reasoning."""
    thinking = ReasoningPart(text="hmm", kind="thinking", signature="SIG", protocol="anthropic",
                             raw={"type": "thinking", "thinking": "hmm", "signature": "SIG"})
    search = BuiltinToolPart("web_search_tool_result", "srvtoolu_1", protocol="anthropic",
                             raw={"type": "web_search_tool_result", "encrypted_content": "ENC"})
    first = Response("r1", "m", [thinking, search, ToolCallPart("c1", "echo", '{"text": "a"}')],
                     "tool_use", "tool_calls", Usage(1, 1))
    main = ScriptedProvider("main", [first] + [ProviderError(ErrorKind.OVERLOADED, "busy")] * 3)
    seen: list[Request] = []

    def backup_answer(req: Request) -> Response:
        seen.append(req)
        return answer("from backup")

    backup = ScriptedProvider("backup", [backup_answer])

    def echo(text: str) -> str:
        """Echo."""
        return text

    cfg = dict(BASE, fallbacks=["backup"])
    cfg["providers"] = {
        "main": dict(BASE["providers"]["main"], retry={"max_attempts": 3, "base_delay": 0.01}),
        "backup": {"kind": "scripted", "model": "scripted", "script": [{"text": "x"}]},
    }
    run = await run_agent(write_config(cfg), providers={"main": main, "backup": backup},
                          extra_tools=[make_tool(echo)])
    assert run.outcome.exit_code == 0 and run.out.strip() == "from backup"
    sent = [p for m in seen[0].messages for p in m.parts]
    assert not any(isinstance(p, ReasoningPart | BuiltinToolPart) for p in sent)
    assert any(isinstance(p, ToolCallPart) and p.id == "c1" for p in sent)
    assert len(run.errors(2)) == 3
    assert [e["attempt"] for e in run.errors(2)] == [1, 2, 3]
    warnings = [e["message"] for e in run.events("warning")]
    assert any("failing over" in w for w in warnings)
    assert any("reasoning item(s) from another provider" in w for w in warnings)
    assert run.err.count("[provider-error] main overloaded") == 3


async def test_provider_failure_without_fallback_exits_3(write_config, run_agent) -> None:
    """A non-retryable failure with no fallback ends the session with exit 3 and a record."""
    main = ScriptedProvider("main", [ProviderError(ErrorKind.AUTH, "bad key", status=401)])
    run = await run_agent(write_config(BASE), providers={"main": main})
    assert run.outcome.exit_code == 3
    assert len(main.requests) == 1  # auth is never retried
    [rec] = run.errors(1)
    assert (rec["kind"], rec["status"], rec["attempt"]) == ("auth", 401, 1)
    assert rec["hint"]
    assert run.events("session_end")[0]["status"] == "provider_failed"


async def test_reasoning_traces_encrypted_and_tamper_evident(write_config, run_agent) -> None:
    """reasoning.enc decrypts with the key to the exact signed trace; a changed byte fails."""
    thinking = ReasoningPart(text="secret plan", kind="thinking", signature="SIG123")
    provider = ScriptedProvider("main", [Response("r", "m", [thinking, TextPart("ok")], "stop",
                                                  "stop", Usage(1, 1))])
    run = await run_agent(write_config(BASE), providers={"main": provider})
    enc = run.run_dir / "reasoning.enc"
    key = key_from_text("unit-test-trace-key")
    [record] = list(read_traces(enc, key, run.run_dir.name))
    assert record["reasoning"]["signature"] == "SIG123"
    assert b"SIG123" not in enc.read_bytes() and b"secret plan" not in enc.read_bytes()
    state = (run.run_dir / "state.json").read_text()
    assert "SIG123" not in state
    data = bytearray(enc.read_bytes())
    data[-5] ^= 0x01
    enc.write_bytes(bytes(data))
    with pytest.raises(TraceDecryptError):
        list(read_traces(enc, key, run.run_dir.name))
    with pytest.raises(TraceDecryptError):
        list(read_traces(run.run_dir / "reasoning.enc", key_from_text("other"), run.run_dir.name))


async def test_resume_continues_the_conversation(write_config, run_agent, tmp_path: Path) -> None:
    """--resume rebuilds the conversation (signed reasoning included) and goes on."""
    thinking = ReasoningPart(text="t", kind="thinking", signature="SIG", protocol="anthropic")
    first = ScriptedProvider("main", [
        Response("r", "m", [thinking, ToolCallPart("c1", "echo", '{"text": "a"}')], "tool_use",
                 "tool_calls", Usage(1, 1)),
    ])

    def echo(text: str) -> str:
        """Echo."""
        return text

    path = write_config(dict(BASE, limits={"max_turns": 1}))
    run1 = await run_agent(path, providers={"main": first}, extra_tools=[make_tool(echo)])
    assert run1.outcome.exit_code == 4
    seen: list[Request] = []

    def final(req: Request) -> Response:
        seen.append(req)
        return answer("resumed")

    second = ScriptedProvider("main", [final])
    run2 = await run_agent(write_config(dict(BASE, limits={"max_turns": 5})),
                           providers={"main": second}, extra_tools=[make_tool(echo)],
                           resume=run1.run_dir.name)
    assert run2.outcome.exit_code == 0 and run2.run_dir == run1.run_dir
    msgs: list[Message] = seen[0].messages
    assert [m.role for m in msgs] == ["user", "assistant", "tool"]
    restored = msgs[1].parts[0]
    assert isinstance(restored, ReasoningPart) and restored.signature == "SIG"
    turns = [e["turn"] for e in run2.events("request")]
    assert turns == [1, 2]  # one transcript: the first run, then the resumed one
    assert [e["status"] for e in run2.events("session_end")] == ["limit", "finished"]


async def test_redaction_of_keys_and_patterns(write_config, run_agent) -> None:
    """A canary key and a redact-pattern match never reach the run folder or the console."""
    canary = "sk-canary-key-0123456789abcdef"
    err = ProviderError(ErrorKind.AUTH, f"key {canary} rejected; password=hunter2",
                        status=401, details=f'{{"key": "{canary}", "password=hunter2"}}')
    provider = ScriptedProvider("main", [err])
    cfg = dict(BASE, logging={"redact": ["(?i)password=\\S+"]})
    cfg["providers"] = {"main": dict(BASE["providers"]["main"], api_key="${CANARY}")}
    run = await run_agent(write_config(cfg), providers={"main": provider},
                          environ={"CANARY": canary})
    assert run.outcome.exit_code == 3
    blob = run.out + run.err
    for f in run.run_dir.rglob("*"):
        if f.is_file():
            blob += f.read_bytes().decode("utf-8", "replace")
    assert canary not in blob and "hunter2" not in blob
    assert "[REDACTED]" in json.dumps(run.errors(1))


async def test_trace_export_is_plain_and_fails_on_tampering(write_config, run_agent) -> None:
    """`python -m runtime.traces` prints readable reasoning only; a changed byte is exit 1."""
    import sys

    thinking = ReasoningPart(text="plan: read then answer", kind="thinking", signature="SIG-XYZ")
    provider = ScriptedProvider("main", [Response("r", "m", [thinking, TextPart("ok")], "stop",
                                                  "stop", Usage(1, 1))])
    run = await run_agent(write_config(BASE), providers={"main": provider})
    env = {"PATH": "/usr/bin:/bin", "TEST_TRACE_KEY": "unit-test-trace-key"}
    cmd = [sys.executable, "-m", "runtime.traces", str(run.run_dir), "--key-env", "TEST_TRACE_KEY"]
    root = Path(__file__).resolve().parent.parent
    proc = await trio.run_process(cmd, capture_stdout=True, capture_stderr=True, env=env,
                                  cwd=root, check=False)
    assert proc.returncode == 0, proc.stderr
    [entry] = json.loads(proc.stdout)
    assert entry["text"] == "plan: read then answer" and entry["opaque"] is True
    assert b"SIG-XYZ" not in proc.stdout
    enc = run.run_dir / "reasoning.enc"
    data = bytearray(enc.read_bytes())
    data[20] ^= 0xFF
    enc.write_bytes(bytes(data))
    bad = await trio.run_process(cmd, capture_stdout=True, capture_stderr=True, env=env,
                                 cwd=root, check=False)
    assert bad.returncode == 1 and b"authentication" in bad.stderr


async def test_a_crashing_provider_actor_still_closes_the_run_folder(
        write_config, run_agent, tmp_path: Path) -> None:
    """A bug inside a provider runtime (not a ProviderError) is not lost: the session stops,
    the failure propagates with its cause, and the run folder still ends with session_end
    and summary.json."""

    class Broken(ScriptedProvider):
        async def attempt(self, req: Request, send: Any = None, *, stream: bool = True) -> Any:
            raise RuntimeError("bug in a provider runtime")

    with pytest.raises(BaseExceptionGroup) as info:
        await run_agent(write_config(BASE), providers={"main": Broken("main", [])})
    assert info.group_contains(RuntimeError, match="bug in a provider runtime")
    [run_dir] = list((tmp_path / "logging").iterdir())
    lines = [json.loads(x) for x in (run_dir / "transcript.jsonl").read_text().splitlines()]
    assert lines[-1]["type"] == "session_end" and lines[-1]["status"] == "error"
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "error"
