"""The response cache in whole sessions: read-through, record then replay, replay misses."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import trio
import yaml

from runtime.cli import main
from runtime.model import Response, TextPart, ToolCallPart, Usage
from runtime.session.compare import comparable
from runtime.testing import open_fake_server


def tool_session() -> list[Response]:
    """Five turns: four tool calls (real built-in tools), then an answer."""
    calls = [("write_file", {"path": "a.txt", "content": "alpha"}),
             ("read_file", {"path": "a.txt"}), ("list_dir", {"path": "."}),
             ("read_file", {"path": "a.txt"})]
    out = [Response(f"r{i}", "m", [TextPart(f"step {i}"), ToolCallPart(
        f"call_{i}", name, json.dumps(args))], "tool_calls", "tool_calls", Usage(50 + i, 10))
        for i, (name, args) in enumerate(calls, 1)]
    out.append(Response("r5", "m", [TextPart("a.txt holds alpha")], "stop", "stop", Usage(90, 5)))
    return out


def write(tmp_path: Path, base_url: str, mode: str, name: str, **extra: Any) -> Path:
    cfg = {
        "provider": "main",
        "providers": {"main": {"kind": "openai-chat", "model": "m", "api_key": "key-abc-123",
                               "base_url": base_url}},
        "task": "note alpha and check it",
        "tools": {"builtin": ["read_file", "write_file", "list_dir"],
                  "workspace": str(tmp_path / f"ws-{name}")},
        "cache": {"mode": mode, "path": str(tmp_path / "cache"), **extra},
        "logging": {"dir": str(tmp_path / "logs")},
        "reasoning": {"key_env": "TEST_TRACE_KEY"},
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


async def test_read_through_twice_sends_nothing_the_second_time(tmp_path: Path,
                                                                run_agent) -> None:
    """The second read-through run is served from the cache: zero requests, same answer."""
    with trio.fail_after(30):
        async with open_fake_server(tool_session()) as server:
            url = server.base_url("openai-chat")
            first = await run_agent(write(tmp_path, url, "read-through", "one"))
            sent = server.request_count
            second = await run_agent(write(tmp_path, url, "read-through", "two"))
    assert sent == 5 and server.request_count == 5
    assert first.outcome.exit_code == second.outcome.exit_code == 0
    assert first.out == second.out == "a.txt holds alpha\n"
    assert [e["outcome"] for e in second.events("cache")] == ["hit"] * 5
    assert second.summary["providers"]["main"]["cache"] == {"hits": 5, "misses": 0}
    assert first.summary["providers"]["main"]["cache"] == {"hits": 0, "misses": 5}
    assert second.summary["totals"]["cost_usd"] == 0


async def test_record_then_replay_is_identical_without_network(tmp_path: Path,
                                                               run_agent) -> None:
    """record-only, then --cache replay with the server gone: the same tool calls, the same
    tool results (the tools really run again) and the same answer."""
    with trio.fail_after(30):
        async with open_fake_server(tool_session()) as server:
            url = server.base_url("openai-chat")
            recorded = await run_agent(write(tmp_path, url, "record-only", "rec"))
    assert recorded.outcome.exit_code == 0
    replayed = await run_agent(write(tmp_path, url, "replay", "rep"))  # server is closed now
    assert replayed.outcome.exit_code == 0, replayed.err
    # the README's recipe: `python main.py compare` finds nothing that differs
    out, err = io.StringIO(), io.StringIO()
    code = main(["compare", str(recorded.run_dir), str(replayed.run_dir)], stdout=out,
                stderr=err)
    assert code == 0 and out.getvalue().startswith("same:"), out.getvalue() + err.getvalue()
    assert len(comparable(recorded.run_dir.joinpath("transcript.jsonl").read_bytes()
                          .splitlines())) > 10
    assert (tmp_path / "ws-rep" / "a.txt").read_text() == "alpha"  # tools ran again
    assert [e["outcome"] for e in recorded.events("cache")] == ["store"] * 5


async def test_replay_miss_names_the_differing_path(tmp_path: Path, run_agent) -> None:
    """A replay whose request differs fails the turn naming the key and the differing path."""
    with trio.fail_after(30):
        async with open_fake_server(tool_session()) as server:
            url = server.base_url("openai-chat")
            await run_agent(write(tmp_path, url, "record-only", "rec"))
    path = write(tmp_path, url, "replay", "changed")
    run = await run_agent(path, task="note beta instead")
    assert run.outcome.exit_code == 3
    [record] = run.errors(1)
    assert "replay cache miss" in record["message"] and "messages[0]" in record["message"]


async def test_hash_prompts_keeps_prompt_text_out_of_the_cache(tmp_path: Path,
                                                               run_agent) -> None:
    """With hash_prompts the task text (a canary) is nowhere in the cache files."""
    canary = "CANARY-PROMPT-9f8e7d"
    with trio.fail_after(30):
        async with open_fake_server(tool_session()) as server:
            path = write(tmp_path, server.base_url("openai-chat"), "record-only", "h",
                         hash_prompts=True)
            run = await run_agent(path, task=f"remember {canary}")
    assert run.outcome.exit_code == 0
    files = [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]
    assert files
    assert not any(canary.encode() in p.read_bytes() for p in files)
    assert any(b"a.txt holds alpha" in p.read_bytes() for p in files)


def test_compare_shows_what_differs_and_ignores_the_rest(tmp_path: Path) -> None:
    """Two journals that differ in an answer and in ids/times: only the answer is reported."""
    def run(name: str, answer: str, ts: float) -> Path:
        folder = tmp_path / name
        folder.mkdir()
        lines = [{"type": "session_start", "ts": ts, "run_id": name, "turn": 0, "seq": 1,
                  "task": "t"},
                 {"type": "request", "ts": ts, "run_id": name, "turn": 1, "seq": 2,
                  "request_id": f"req_{name}"},
                 {"type": "assistant", "ts": ts + 1, "run_id": name, "turn": 1, "seq": 3,
                  "text": answer, "request_id": f"req_{name}", "duration": ts}]
        (folder / "transcript.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
        return folder

    a, b, c = run("a", "yes", 1.0), run("b", "yes", 9.0), run("c", "no", 1.0)
    out = io.StringIO()
    assert main(["compare", str(a), str(b)], stdout=out, stderr=io.StringIO()) == 0
    out = io.StringIO()
    assert main(["compare", str(a), str(c)], stdout=out, stderr=io.StringIO()) == 1
    diff = out.getvalue()
    assert '-{"text": "yes"' in diff and '+{"text": "no"' in diff and "req_" not in diff
    err = io.StringIO()
    assert main(["compare", str(a), str(tmp_path / "nope")], stdout=io.StringIO(),
                stderr=err) == 2
    assert "no transcript.jsonl" in err.getvalue()
