"""End-to-end against a real model: llama.cpp's llama-server serving Gemma 3 270M.

The model is a tiny base model whose text is near nonsense: tests assert structure (events,
calls whose arguments parse, a complete run folder), never wording. Determinism comes from
temperature 0, a seed, one example exchange in the history and ``stop: ["</tool_call>"]``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from runtime.errors import ErrorKind, error_from_response
from runtime.events import Finish, TextDelta, ToolCallDelta, UsageEvent, assemble
from runtime.model import Message, Params, Request
from runtime.providers import HTTPProvider, ProviderSpec
from runtime.wire import codec_for
from runtime.wire.__main__ import decode_capture
from runtime.wire.sse import SSEDecoder
from scripts.local_model import (
    MODEL_ALIAS,
    LocalModelError,
    LocalModelServer,
    free_port,
    pid_alive,
    start_server,
    stop_process,
    supports_tools,
)

from .servers import SYSTEM, example_history

pytestmark = pytest.mark.local_model

ROOT = Path(__file__).resolve().parents[2]
COMPLETE = {"session_start", "request", "usage", "turn_end", "session_end"}


def provider_entry(server: LocalModelServer, kind: str) -> dict[str, Any]:
    params: dict[str, Any] = {"temperature": 0, "seed": 1, "max_tokens": 60,
                              "stop": ["</tool_call>"]}
    if kind == "openai-responses":  # Responses has no stop/seed: llama-server reads them anyway
        params["extra"] = {"stop": ["</tool_call>"], "seed": 1}
    entry: dict[str, Any] = {"kind": kind, "model": MODEL_ALIAS, "base_url": server.base_url(kind)}
    if kind != "local":  # the vendor kinds require a key; llama-server ignores it
        entry["api_key"] = "sk-unused-by-llama-server"
    return {**entry, "params": params, "timeout": {"connect": 5, "read": 60, "total": 120},
            "retry": {"max_attempts": 2, "base_delay": 0.1, "max_delay": 0.5}}


def test_server_is_up_with_tool_support(local_server: LocalModelServer) -> None:
    """The fixture's server answers /health and /props shows a tool-capable template."""
    health = httpx.get(local_server.root_url + "/health", timeout=5)
    assert health.status_code == 200 and health.json()["status"] == "ok"
    assert supports_tools(local_server.props)
    assert local_server.props["total_slots"] == 1
    assert local_server.props["model_alias"] == MODEL_ALIAS
    assert local_server.command.count("-t") == 1
    assert local_server.command[local_server.command.index("-t") + 1] == "1"


async def test_streamed_answer_on_chat_completions(local_server: LocalModelServer) -> None:
    """A streamed answer arrives as several text deltas over several reads; usage and the
    finish reason are decoded."""
    max_tokens = 16
    req = Request(MODEL_ALIAS, [Message.user("Say hello.")], system="You answer briefly.",
                  params=Params(temperature=0, seed=1, max_tokens=max_tokens))
    send, receive = trio.open_memory_channel[list[Any]](64)
    batches: list[list[Any]] = []

    async def consume() -> None:
        async with receive:
            async for batch in receive:
                batches.append(batch)

    with trio.fail_after(30):
        async with httpx.AsyncClient() as client, trio.open_nursery() as nursery:
            nursery.start_soon(consume)
            provider = HTTPProvider(ProviderSpec("local", "local", local_server.base_url(),
                                                 model=MODEL_ALIAS), client)
            async with send:
                resp = await provider.attempt(req, send, stream=True)
    events = [ev for batch in batches for ev in batch]
    deltas = [ev for ev in events if isinstance(ev, TextDelta)]
    assert len(deltas) >= 2 and len(batches) >= 2
    assert "".join(d.text for d in deltas) == resp.text != ""
    finishes = [ev for ev in events if isinstance(ev, Finish)]
    assert len(finishes) == 1 and finishes[0].reason in ("stop", "length")
    assert resp.finish_reason == finishes[0].reason and resp.stop == finishes[0].normalized
    usages = [ev for ev in events if isinstance(ev, UsageEvent)]
    assert len(usages) == 1 and resp.usage is not None
    assert 0 < resp.usage.output_tokens <= max_tokens
    assert resp.usage.input_tokens > 0
    assert 0 <= resp.usage.cache_read_tokens <= resp.usage.input_tokens
    if resp.finish_reason == "length":
        assert resp.usage.output_tokens == max_tokens


@pytest.mark.parametrize("kind", ["local", "anthropic", "openai-responses"])
async def test_tool_session(kind: str, local_server: LocalModelServer, write_config: Any,
                            run_agent: Any, tmp_path: Path) -> None:
    """A whole session on each route: the model calls the built-in read_file, the call is
    validated and run on the workspace, its result goes back, and the loop ends within its
    turn limit with a complete run folder."""
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    note = f"note for {kind}"
    (workspace / "notes.txt").write_text(note)
    max_turns = 2
    path = write_config({
        "provider": "main",
        "providers": {"main": provider_entry(local_server, kind)},
        "system": SYSTEM,
        "tools": {"builtin": ["read_file"], "workspace": str(workspace), "timeout": 10},
        "limits": {"max_turns": max_turns},
    })
    with trio.fail_after(90):
        run = await run_agent(path, task="Read notes.txt.", history=example_history())
    assert run.outcome.exit_code in (0, 4), run.err
    transcript = run.transcript
    assert COMPLETE <= {e["type"] for e in transcript}
    assert transcript[-1]["type"] == "session_end"
    assert not run.events("provider_error"), run.events("provider_error")
    summary = run.summary
    assert 1 <= summary["turns"] <= max_turns
    assert summary["status"] == transcript[-1]["status"]
    assert summary["exit_code"] == run.outcome.exit_code

    calls = run.events("tool_call")
    assert calls and calls[0]["turn"] == 1, [e["type"] for e in transcript]
    first = calls[0]
    assert first["name"] == "read_file" and first["call_id"] != "call_example"
    args = first["arguments"]
    args = json.loads(args) if isinstance(args, str) else args
    assert isinstance(args, dict) and isinstance(args.get("path"), str)
    results = {e["call_id"]: e for e in run.events("tool_result")}
    rejected = {e["call_id"] for e in run.events("tool_rejected")}
    assert all(c["call_id"] in results or c["call_id"] in rejected for c in calls)
    result = results[first["call_id"]]
    if args["path"] == "notes.txt":  # what the example teaches: the real file was read
        assert result["ok"] is True and result["content"] == note
    # the result went back: the next turn's request followed it
    requests = run.events("request")
    assert [r["turn"] for r in requests] == list(range(1, summary["turns"] + 1))
    assert summary["turns"] == 2
    if run.outcome.exit_code == 0:
        assert run.events("assistant")[-1]["text"] == run.outcome.answer


def test_main_py_with_config_local_yaml(local_server: LocalModelServer, tmp_path: Path) -> None:
    """``python main.py --config config/local.yaml`` exits 0 with a non-empty answer and
    leaves a complete run folder."""
    env = {**os.environ, "CONDUCTOR_LOCAL_URL": local_server.base_url("local"),
           "CONDUCTOR_TRACE_KEY": "local-model-test-key"}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "main.py"), "--config", str(ROOT / "config" / "local.yaml"),
         "--run-id", "local-run"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip()
    run_dir = tmp_path / "logging" / "local-run"
    transcript = [json.loads(line) for line in
                  (run_dir / "transcript.jsonl").read_text().splitlines()]
    assert COMPLETE <= {e["type"] for e in transcript}
    assert transcript[-1]["type"] == "session_end" and transcript[-1]["status"] == "finished"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["turns"] == 1
    assert (run_dir / "state.json").exists()
    answers = [e for e in transcript if e["type"] == "assistant"]
    assert answers and answers[-1]["text"].strip()


# ---- quirks of the real server, from bytes it sent (tests/local/captures/) ---------------

def sse_data(path: Path) -> list[dict[str, Any]]:
    """The JSON payloads of an SSE capture, parsed independently of the codecs."""
    out = []
    for line in path.read_text().splitlines():
        if line.startswith("data: ") and line != "data: [DONE]":
            out.append(json.loads(line[len("data: "):]))
    return out


def stream_events(protocol: str, body: bytes) -> list[Any]:
    dec = codec_for(protocol).StreamDecoder()
    sse = SSEDecoder()
    events = [ev for sev in [*sse.feed(body), *sse.close()] for ev in dec.feed(sev)]
    return events + list(dec.close())


def test_chat_stream_quirks(captures: Path) -> None:
    """Chat stream: a null-content role chunk first, unprefixed 32-char tool-call ids,
    arguments a few characters a chunk, junk text beside the call, usage in a chunk with
    ``choices: []`` and an extra ``timings`` key."""
    path = captures / "chat_stream_tool_call.sse"
    chunks = sse_data(path)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": None}
    raw_calls = [tc for c in chunks for ch in c["choices"]
                 for tc in ch["delta"].get("tool_calls") or []]
    raw_id = raw_calls[0]["id"]
    raw_args = "".join(tc["function"].get("arguments", "") for tc in raw_calls)
    raw_text = "".join(ch["delta"].get("content") or "" for c in chunks for ch in c["choices"])
    usage = next(c for c in chunks if "usage" in c)
    assert usage["choices"] == [] and "timings" in usage
    view = decode_capture("openai-chat", path.read_bytes())
    assert view["error"] is None
    assert [(c["id"], c["name"]) for c in view["tool_calls"]] == [(raw_id, "get_time")]
    assert not raw_id.startswith("call_") and len(raw_id) == 32
    assert view["tool_calls"][0]["arguments"] == json.loads(raw_args)
    assert view["text"] == raw_text
    assert view["finish_reason"] == "tool_calls"
    u = usage["usage"]
    assert view["usage"]["input_tokens"] == u["prompt_tokens"]
    assert view["usage"]["output_tokens"] == u["completion_tokens"]
    assert view["usage"]["cache_read_tokens"] == u["prompt_tokens_details"]["cached_tokens"]
    deltas = [ev for ev in stream_events("openai-chat", path.read_bytes())
              if isinstance(ev, ToolCallDelta)]
    assert len(deltas) == len([tc for tc in raw_calls if tc["function"].get("arguments")]) > 1


def test_chat_body_with_text_beside_tool_call(captures: Path) -> None:
    """Non-streamed: ``content`` holds text next to ``tool_calls``; both are kept."""
    path = captures / "chat_tool_call.json"
    raw = json.loads(path.read_bytes())
    msg = raw["choices"][0]["message"]
    view = decode_capture("openai-chat", path.read_bytes())
    assert view["text"] == msg["content"]
    assert [c["id"] for c in view["tool_calls"]] == [tc["id"] for tc in msg["tool_calls"]]
    assert view["finish_reason"] == "tool_calls"


def test_messages_stream_quirks(captures: Path) -> None:
    """/v1/messages: chatcmpl- message id, unprefixed tool id, no ping, tool_use start without
    ``input``, the text block stopped only after the tool block started, and input_tokens
    without the cached part (the canonical usage adds it back)."""
    path = captures / "messages_stream_tool_use.sse"
    events = sse_data(path)
    types = [e["type"] for e in events]
    assert "ping" not in types
    start = events[0]["message"]
    assert start["id"].startswith("chatcmpl-")
    tool_start = next(e for e in events if e["type"] == "content_block_start"
                      and e["content_block"]["type"] == "tool_use")
    assert "input" not in tool_start["content_block"]
    text_stop = next(i for i, e in enumerate(events)
                     if e["type"] == "content_block_stop" and e["index"] == 0)
    assert events.index(tool_start) < text_stop  # overlapping blocks
    raw_args = "".join(e["delta"]["partial_json"] for e in events
                       if e["type"] == "content_block_delta"
                       and e["delta"]["type"] == "input_json_delta")
    view = decode_capture("anthropic", path.read_bytes())
    assert view["error"] is None
    call_id = tool_start["content_block"]["id"]
    assert [(c["id"], c["name"]) for c in view["tool_calls"]] == [(call_id, "get_time")]
    assert not call_id.startswith("toolu_")
    assert view["tool_calls"][0]["arguments"] == json.loads(raw_args)
    assert view["text"] == "".join(e["delta"]["text"] for e in events
                                   if e["type"] == "content_block_delta"
                                   and e["delta"]["type"] == "text_delta")
    assert view["finish_reason"] == "tool_use"
    u = start["usage"]
    assert view["usage"]["input_tokens"] == u["input_tokens"] + u["cache_read_input_tokens"]
    assert view["usage"]["cache_read_tokens"] == u["cache_read_input_tokens"]
    assert view["usage"]["output_tokens"] == next(
        e for e in events if e["type"] == "message_delta")["usage"]["output_tokens"]


def test_responses_stream_function_call(captures: Path) -> None:
    """/v1/responses: the tool call's id is its ``call_id`` and ``fc_`` id is kept apart."""
    path = captures / "responses_stream_function_call.sse"
    events = sse_data(path)
    done = next(e for e in events if e["type"] == "response.completed")["response"]
    item = next(i for i in done["output"] if i["type"] == "function_call")
    view = decode_capture("openai-responses", path.read_bytes())
    assert view["error"] is None
    assert [(c["id"], c["name"]) for c in view["tool_calls"]] == [(item["call_id"], item["name"])]
    assert view["tool_calls"][0]["arguments"] == json.loads(item["arguments"])
    assert view["finish_reason"] == done["status"] == "completed"
    assert view["usage"]["input_tokens"] == done["usage"]["input_tokens"]
    assert view["usage"]["output_tokens"] == done["usage"]["output_tokens"]
    resp = assemble(stream_events("openai-responses", path.read_bytes()), "openai-responses")
    assert resp.stop == "tool_calls"
    assert [c.item_id for c in resp.tool_calls] == [item["id"]]


def test_responses_status_completed_when_cut_off(captures: Path) -> None:
    """/v1/responses says ``completed`` even when ``max_output_tokens`` cut the answer: the
    codec reports what the server sent (it cannot know the limit) and decodes the text."""
    path = captures / "responses_cut_by_max_output_tokens.json"
    raw = json.loads(path.read_bytes())
    view = decode_capture("openai-responses", path.read_bytes())
    assert view["finish_reason"] == raw["status"] == "completed"
    assert "incomplete_details" not in raw
    assert view["text"] == raw["output"][0]["content"][0]["text"]
    assert view["usage"]["output_tokens"] == raw["usage"]["output_tokens"]


def test_context_overflow_is_a_context_length_error(captures: Path) -> None:
    """llama-server's 400 ``exceed_context_size_error`` (every route) is a context-length
    error, so the hint says to shorten the conversation."""
    body = (captures / "error_exceed_context_size.json").read_bytes()
    assert json.loads(body)["error"]["type"] == "exceed_context_size_error"
    err = error_from_response(400, {"content-type": "application/json; charset=utf-8"}, body)
    assert err.status == 400 and not err.retryable
    assert err.kind is ErrorKind.CONTEXT_LENGTH, err.kind


# ---- the server helper itself, with stand-in processes (no model needed) ----------------

FAKE_SERVER = """\
import http.server, json, sys
argv = sys.argv
port = int(argv[argv.index("--port") + 1])
with open(argv[argv.index("-m") + 1], "a") as f:
    f.write(" ".join(argv[1:]) + "\\n")
MODE = {mode!r}
if MODE != "serve":
    print("error: couldn't bind HTTP server socket" if MODE == "bind" else "boom", flush=True)
    sys.exit(3)
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({{"status": "ok"}} if self.path == "/health" else
                          {{"chat_template_caps": {{"supports_tools": False}}}}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
http.server.HTTPServer(("127.0.0.1", port), H).serve_forever()
"""


def fake_binary(tmp_path: Path, mode: str) -> tuple[Path, Path]:
    """An executable standing in for llama-server; it logs its argv to the "model" file."""
    exe = tmp_path / f"fake-llama-{mode}"
    exe.write_text(f"#!{sys.executable}\n" + FAKE_SERVER.format(mode=mode))
    exe.chmod(0o755)
    calls = tmp_path / f"calls-{mode}.txt"
    calls.touch()
    return exe, calls


def test_start_reports_early_exit_with_log(tmp_path: Path) -> None:
    """A server that dies while starting is an error carrying its exit code and log."""
    exe, calls = fake_binary(tmp_path, "crash")
    with pytest.raises(LocalModelError, match=r"exited with 3(.|\n)*boom"):
        start_server(binary=exe, model=calls, template=calls, port=free_port(),
                     log_path=tmp_path / "log")
    assert len(calls.read_text().splitlines()) == 1


def test_lost_port_race_is_retried_on_new_ports(tmp_path: Path) -> None:
    """A bind failure on a chosen free port is retried on another port, then reported."""
    exe, calls = fake_binary(tmp_path, "bind")
    with pytest.raises(LocalModelError, match="bind"):
        start_server(binary=exe, model=calls, template=calls, attempts=3,
                     log_path=tmp_path / "log")
    argvs = calls.read_text().splitlines()
    assert len(argvs) == 3
    assert all("-t 1" in a and "--no-repack" in a and "--chat-template-file" in a for a in argvs)


def test_server_without_tool_support_is_refused_and_stopped(tmp_path: Path) -> None:
    """/health ok but /props without tool support: an error, and the process is gone."""
    exe, calls = fake_binary(tmp_path, "serve")
    with pytest.raises(LocalModelError, match="without tool support"):
        start_server(binary=exe, model=calls, template=calls, log_path=tmp_path / "log",
                     startup_timeout=20)
    pids = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]
    alive = [pid for pid in pids if pid_alive(pid) and str(exe) in _cmdline(pid)]
    assert alive == []


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def test_stop_escalates_to_sigkill() -> None:
    """A process that ignores SIGTERM is killed after the grace period and reaped."""
    code = ("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "print('ready', flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
    assert pid_alive(proc.pid)
    assert stop_process(proc, timeout=0.3) == -signal.SIGKILL
    assert not pid_alive(proc.pid)
    proc.stdout.close()
