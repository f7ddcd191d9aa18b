"""Whole sessions over loopback HTTP against the fake provider, one per wire protocol."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
import trio
import yaml

from runtime.model import ReasoningPart, Response, TextPart, ToolCallPart, Usage
from runtime.testing import faults, open_fake_server
from runtime.testing.script import RecordedRequest
from tests.recordings import ROOT

KEY = "sk-session-canary-42424242"


def reasoning_for(protocol: str, turn: int) -> ReasoningPart:
    if protocol == "anthropic":
        return ReasoningPart(text=f"thinking {turn}", kind="thinking", signature=f"SIG-{turn}")
    if protocol == "openai-responses":
        return ReasoningPart(text="", kind="reasoning", id=f"rs_{turn}",
                             encrypted=f"ENC-{turn}")
    return ReasoningPart(text=f"thinking {turn}", kind="reasoning_content")


def script(protocol: str) -> list[Response]:
    def turn(n: int, *calls: tuple[str, str, dict[str, Any]]) -> Response:
        parts: list[Any] = [reasoning_for(protocol, n)]
        parts += [ToolCallPart(cid, name, json.dumps(args), item_id=f"fc_{cid}")
                  for cid, name, args in calls]
        return Response(f"resp_{n}", "model-x", parts, "tool_calls", "tool_calls",
                        Usage(100 * n, 20, cache_read_tokens=10 * n))

    return [
        turn(1, ("call_a", "write_file", {"path": "n.txt", "content": "hello"})),
        turn(2, ("call_b", "read_file", {"path": "n.txt"}), ("call_c", "list_dir", {"path": "."})),
        turn(3, ("call_d", "read_file", {"path": "n.txt"})),
        Response("resp_4", "model-x", [TextPart("The note says hello.")], "stop", "stop",
                 Usage(500, 8)),
    ]


def config(tmp_path: Path, protocol: str, base_url: str, **extra: Any) -> Path:
    cfg: dict[str, Any] = {
        "provider": "main",
        "providers": {"main": {"kind": protocol, "model": "model-x", "api_key": KEY,
                               "base_url": base_url, "retry": {"max_attempts": 3,
                                                               "base_delay": 0.01}}},
        "task": "write a note and read it back",
        "tools": {"builtin": ["read_file", "write_file", "list_dir"],
                  "workspace": str(tmp_path / "ws")},
        "logging": {"dir": str(tmp_path / "logging")},
        "reasoning": {"key_env": "TEST_TRACE_KEY"},
        **extra,
    }
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def tool_results(protocol: str, req: RecordedRequest) -> list[tuple[str, str]]:
    """(call id, content) of the tool results in a recorded request, in wire order."""
    body = req.body
    out = []
    if protocol == "openai-chat":
        tail = [m for m in body["messages"] if m["role"] == "tool"]
        out = [(m["tool_call_id"], m["content"]) for m in tail]
    elif protocol == "openai-responses":
        out = [(i["call_id"], i["output"]) for i in body["input"]
               if i.get("type") == "function_call_output"]
    else:
        for m in body["messages"]:
            if m["role"] == "user" and isinstance(m["content"], list):
                for b in m["content"]:
                    if b.get("type") == "tool_result":
                        c = b["content"]
                        out.append((b["tool_use_id"],
                                    c if isinstance(c, str) else "".join(x["text"] for x in c)))
    return out


def reasoning_sent(protocol: str, req: RecordedRequest) -> list[str]:
    """The opaque reasoning payloads a request carries back, in order."""
    body = req.body
    if protocol == "anthropic":
        return [b["signature"] for m in body["messages"] if m["role"] == "assistant"
                for b in m["content"] if b.get("type") == "thinking"]
    if protocol == "openai-responses":
        return [i["encrypted_content"] for i in body["input"] if i.get("type") == "reasoning"]
    return [m["reasoning_content"] for m in body["messages"]
            if m["role"] == "assistant" and m.get("reasoning_content")]


@pytest.mark.parametrize("protocol", ["openai-chat", "openai-responses", "anthropic"])
async def test_three_tool_turns_then_answer(protocol: str, tmp_path: Path, run_agent) -> None:
    """Three tool turns (one with two parallel calls) then an answer: results go back paired
    by call id and in call order, reasoning goes back verbatim, the run folder is complete."""
    with trio.fail_after(30):
        async with open_fake_server(script(protocol)) as server:
            proto_url = server.base_url(protocol)
            run = await run_agent(config(tmp_path, protocol, proto_url))
    assert run.outcome.exit_code == 0, run.err
    assert run.out.strip() == "The note says hello."
    reqs = server.requests
    assert len(reqs) == 4 and all(r.stream for r in reqs)
    assert tool_results(protocol, reqs[1])[-1:] == [("call_a", "wrote 5 bytes to n.txt")]
    ids = [cid for cid, _ in tool_results(protocol, reqs[2])]
    assert ids[-2:] == ["call_b", "call_c"]
    assert dict(tool_results(protocol, reqs[2]))["call_b"] == "hello"
    assert [cid for cid, _ in tool_results(protocol, reqs[3])][-1] == "call_d"
    want = {"anthropic": ["SIG-1", "SIG-2", "SIG-3"],
            "openai-responses": ["ENC-1", "ENC-2", "ENC-3"],
            "openai-chat": ["thinking 1", "thinking 2", "thinking 3"]}[protocol]
    assert reasoning_sent(protocol, reqs[3]) == want
    for r in reqs:
        auth = r.headers.get("authorization") or r.headers.get("x-api-key")
        assert auth is not None and auth.endswith(KEY)
    folder = run.run_dir
    for name in ("transcript.jsonl", "state.json", "summary.json", "reasoning.enc"):
        assert (folder / name).is_file(), name
    types = [e["type"] for e in run.transcript]
    assert types[0] == "session_start" and types[-1] == "session_end"
    assert types.count("tool_call") == 4 and types.count("tool_result") == 4
    assert types.count("turn_end") == 4
    summary = run.summary
    assert summary["status"] == "finished" and summary["turns"] == 4
    assert summary["totals"]["input_tokens"] == 100 + 200 + 300 + 500
    assert summary["totals"]["cache_read_tokens"] == 10 + 20 + 30
    blob = "".join(p.read_text(errors="replace") for p in folder.rglob("*") if p.is_file())
    assert KEY not in blob and "SIG-1" not in blob and "ENC-1" not in blob


async def test_main_py_end_to_end(tmp_path: Path) -> None:
    """`python main.py --config ...` against the fake server exits 0 and prints the answer;
    a provider error on the way is a [provider-error] line and a turn error record."""
    with trio.fail_after(60):
        async with open_fake_server([faults.server_error(), *script("anthropic")]) as server:
            path = config(tmp_path, "anthropic", server.base_url("anthropic"))
            proc = await trio.run_process(
                [sys.executable, str(ROOT / "main.py"), "--config", str(path),
                 "--run-id", "e2e"],
                capture_stdout=True, capture_stderr=True, check=False, cwd=str(tmp_path),
                env={"PATH": "/usr/bin:/bin", "TEST_TRACE_KEY": "k" * 16})
    out, err = proc.stdout.decode(), proc.stderr.decode()
    assert proc.returncode == 0, err
    assert out == "The note says hello.\n"
    assert "[provider-error] main server 500:" in err
    run_dir = tmp_path / "logging" / "e2e"
    [record] = json.loads((run_dir / "errors" / "turn_1.json").read_text())
    assert (record["kind"], record["status"], record["attempt"]) == ("server", 500, 1)
    assert record["delay"] is not None and record["details"]
    assert KEY not in out + err


@pytest.mark.parametrize("protocol", ["openai-chat", "anthropic"])
async def test_streaming_refused_falls_back_once(protocol: str, tmp_path: Path, run_agent) -> None:
    """A provider refusing streams: one [streaming-disabled] line, the session finishes with
    every later turn sent without streaming."""
    entries = [faults.streaming_refused(), *script(protocol)]
    with trio.fail_after(30):
        async with open_fake_server(entries) as server:
            run = await run_agent(config(tmp_path, protocol, server.base_url(protocol)))
    assert run.outcome.exit_code == 0, run.err
    assert run.err.count("[streaming-disabled] main:") == 1
    assert [r.stream for r in server.requests] == [True, False, False, False, False]
    assert any(e.get("code") == "streaming_disabled" for e in run.events("warning"))


async def test_echoed_secrets_never_reach_files_or_console(tmp_path: Path, run_agent) -> None:
    """A provider error echoing the API key, and a body matching a logging.redact pattern:
    neither appears in logging/ nor on stdout/stderr."""
    leak = faults.custom(500, {"error": {"message": "upstream said password=hunter2-canary"}})
    entries = [faults.echo_auth(), leak, *script("openai-chat")]
    with trio.fail_after(30):
        async with open_fake_server(entries) as server:
            path = config(tmp_path, "openai-chat", server.base_url("openai-chat"),
                          logging={"dir": str(tmp_path / "logging"),
                                   "redact": ["(?i)password=\\S+"]})
            run = await run_agent(path)
    # 401 is not retried: the session fails with exit 3, after recording the echo
    assert run.outcome.exit_code == 3
    blob = run.out + run.err + "".join(
        p.read_text(errors="replace") for p in run.run_dir.rglob("*") if p.is_file())
    assert KEY not in blob and "hunter2" not in blob
    assert "[REDACTED]" in json.dumps(run.errors(1))
    # and the pattern case, on a retryable error that the session rides through
    entries = [leak, *script("openai-chat")]
    (tmp_path / "b").mkdir()
    with trio.fail_after(30):
        async with open_fake_server(entries) as server:
            path = config(tmp_path / "b", "openai-chat", server.base_url("openai-chat"),
                          logging={"dir": str(tmp_path / "b" / "logging"),
                                   "redact": ["(?i)password=\\S+"]})
            run = await run_agent(path)
    assert run.outcome.exit_code == 0
    blob = run.out + run.err + "".join(
        p.read_text(errors="replace") for p in run.run_dir.rglob("*") if p.is_file())
    assert "hunter2" not in blob and KEY not in blob
    assert len(run.errors(1)) == 1
