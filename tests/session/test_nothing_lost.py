"""Nothing lost: an interrupted answer is recorded, bad bytes never break the journal, a
folder that cannot be written is reported as such, totals add up across resumes."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import trio
import yaml

from runtime.config import load_config
from runtime.engine import Engine, new_run_id, valid_run_id
from runtime.model import ReasoningPart, Request, Response, TextPart, ToolCallPart, Usage
from runtime.session.records import TextDelta
from runtime.testing import ScriptedProvider, open_fake_server
from runtime.tools import make_tool

ENV = {"TEST_TRACE_KEY": "nothing-lost-key"}
LONG = "word " * 400


def config(tmp_path: Path, provider: dict[str, Any], **extra: Any) -> Any:
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump({
        "provider": "main", "providers": {"main": provider}, "task": "go",
        "tools": {"workspace": str(tmp_path / "ws"), **extra.pop("tools", {})},
        "logging": {"dir": str(tmp_path / "logs")},
        "reasoning": {"key_env": "TEST_TRACE_KEY"}, **extra}))
    (tmp_path / "ws").mkdir(exist_ok=True)
    return load_config(path, environ=ENV)


def transcript(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (run_dir / "transcript.jsonl").read_text().splitlines()]


async def test_an_answer_cut_by_ctrl_c_is_recorded_with_its_tokens(tmp_path: Path,
                                                                   autojump_clock: Any) -> None:
    """Cancelled mid-stream: the partial text is an ``assistant`` record with status
    interrupted and its estimated tokens a ``usage`` record; after a resume the summary
    counts both runs."""
    answer = Response("r1", "gpt-4o", [TextPart(LONG)], "stop", "stop", Usage(50, 400))
    done = Response("r2", "gpt-4o", [TextPart("short")], "stop", "stop", Usage(60, 2))
    async with open_fake_server([answer, done], chunk_chars=20, chunk_delay=0.05) as server:
        cfg = config(tmp_path, {"kind": "openai-chat", "model": "gpt-4o", "api_key": "k-123456",
                                "base_url": server.base_url("openai-chat")})
        async with Engine.open(cfg, environ=ENV) as engine:
            s = await engine.start("tell me a long story")
            seen = ""
            async for ev in s.events(deltas=True):
                if isinstance(ev, TextDelta):
                    seen += ev.text
                    if len(seen) > 100:
                        s.cancel("interrupted")
            first = await s.result()
            assert first.status == "interrupted" and first.exit_code == 130
            records = transcript(s.run_dir)
            [partial] = [r for r in records if r["type"] == "assistant"]
            assert partial["status"] == "interrupted"
            assert len(seen) <= len(partial["text"]) < len(LONG)
            assert LONG.startswith(partial["text"])
            [usage] = [r for r in records if r["type"] == "usage"]
            assert usage["estimated"] and usage["output_tokens"] >= len(seen) // 4
            assert usage["cost_usd"] > 0
            summary1 = json.loads((s.run_dir / "summary.json").read_text())
            resumed = await engine.start("go on, briefly", resume=s.run_id)
            assert (await resumed.result()).status == "finished"
    summary = json.loads((s.run_dir / "summary.json").read_text())
    assert summary["runs"] == 2
    assert summary["totals"]["output_tokens"] == usage["output_tokens"] + 2
    assert summary["totals"]["cost_usd"] > summary1["totals"]["cost_usd"]
    assert summary["providers"]["main"]["attempts"] == 2


async def test_bytes_that_are_not_utf8_never_break_the_journal(tmp_path: Path) -> None:
    """A file name with a \\xff byte listed by list_dir, a tool returning lone surrogates
    and provider text with a lone surrogate: the run closes normally, every line is JSON."""
    ws = tmp_path / "ws"
    ws.mkdir()
    (Path(os.fsdecode(bytes(ws) + b"/bad\xffname.txt"))).write_text("x")

    def mangle() -> str:
        """Return text a careless decoder made."""
        return "lone \udcff surrogate and \ud800 high"

    provider = ScriptedProvider("main", [
        Response("r1", "m", [ToolCallPart("c1", "list_dir", '{"path": "."}'),
                             ToolCallPart("c2", "mangle", "{}")], "tool_calls", "tool_calls",
                 Usage(1, 1)),
        Response("r2", "m", [ReasoningPart("thought \udcff", kind="thinking", signature="S"),
                             TextPart("provider said \ud800 this")], "stop", "stop",
                 Usage(1, 1)),
    ])
    cfg = config(tmp_path, {"kind": "scripted", "model": "m", "script": [{"text": "-"}]},
                 tools={"builtin": ["list_dir"]})
    async with Engine.open(cfg, environ=ENV, providers={"main": provider},
                           tools=[make_tool(mangle)]) as engine:
        s = await engine.start("look")
        result = await s.result()
    assert result.status == "finished", result.message
    records = transcript(s.run_dir)  # every line parses
    assert records[-1]["type"] == "session_end"
    listing = next(r for r in records if r["type"] == "tool_result" and r["call_id"] == "c1")
    assert "name.txt" in listing["content"] and listing["ok"]
    mangled = next(r for r in records if r["type"] == "tool_result" and r["call_id"] == "c2")
    assert "surrogate" in mangled["content"]
    assert (s.run_dir / "summary.json").is_file() and (s.run_dir / "state.json").is_file()


async def test_a_run_folder_that_cannot_be_written_says_so(tmp_path: Path) -> None:
    """The folder disappears mid-run (a full disk, a removed mount): the session ends with
    status error saying the folder could not be written; it never claims to be closed."""
    holder: dict[str, Path] = {}

    def vanish() -> str:
        """Remove the run folder."""
        shutil.rmtree(holder["dir"])
        return "gone"

    provider = ScriptedProvider("main", [
        Response("r1", "m", [ToolCallPart("c1", "vanish", "{}")], "tool_calls", "tool_calls",
                 Usage(1, 1)),
        Response("r2", "m", [TextPart("done")], "stop", "stop", Usage(1, 1))])
    cfg = config(tmp_path, {"kind": "scripted", "model": "m", "script": [{"text": "-"}]})
    async with Engine.open(cfg, environ=ENV, providers={"main": provider},
                           tools=[make_tool(vanish)]) as engine:
        s = await engine.start("go")
        holder["dir"] = s.run_dir
        result = await s.result()
    assert result.status == "error" and result.exit_code == 1
    assert "could not be written" in result.message and "not closed" in result.message


def test_run_ids_are_validated_and_never_collide() -> None:
    """Ids are folder names that cannot climb out of logging/; 20,000 made at once differ."""
    for bad in ("../x", "a/b", ".", "..", "", "x\x00y", "-lead", "a b"):
        assert not valid_run_id(bad), bad
    for good in ("bug-1", "20261130-010203-abcdef", "v1.2_final"):
        assert valid_run_id(good)
    ids = [new_run_id() for _ in range(20_000)]
    assert len(set(ids)) == len(ids) and all(valid_run_id(i) for i in ids)


async def test_a_given_run_id_that_climbs_out_is_refused(tmp_path: Path) -> None:
    """--run-id ../escape is a configuration error naming --run-id; nothing is created."""
    cfg = config(tmp_path, {"kind": "scripted", "model": "m", "script": [{"text": "-"}]})
    async with Engine.open(cfg, environ=ENV) as engine:
        try:
            await engine.start("go", run_id="../escape")
        except Exception as exc:
            assert type(exc).__name__ == "ConfigError" and "--run-id" in str(exc)
        else:
            raise AssertionError("expected a ConfigError")
    assert not (tmp_path / "escape").exists()


async def test_requests_see_the_journal_on_disk(tmp_path: Path) -> None:
    """Everything the run saw is on disk before the next request goes out."""
    lines_at_request: list[int] = []
    holder: dict[str, Path] = {}

    def answer(req: Request) -> Response:
        lines_at_request.append(len(transcript(holder["dir"])))
        n = len(lines_at_request)
        if n < 3:
            return Response(f"r{n}", "m", [ToolCallPart(f"c{n}", "list_dir", "{}")],
                            "tool_calls", "tool_calls", Usage(1, 1))
        return Response("rz", "m", [TextPart("done")], "stop", "stop", Usage(1, 1))

    cfg = config(tmp_path, {"kind": "scripted", "model": "m", "script": [{"text": "-"}]},
                 tools={"builtin": ["list_dir"]})
    async with Engine.open(cfg, environ=ENV, providers={"main": ScriptedProvider(
            "main", [answer] * 3)}) as engine:
        s = await engine.start("go")
        holder["dir"] = s.run_dir
        await trio.lowlevel.checkpoint()
        assert (await s.result()).status == "finished"
    records = transcript(s.run_dir)
    ends = [i for i, r in enumerate(records) if r["type"] == "turn_end"]
    # before request n+1, turn n's turn_end was already on disk
    assert lines_at_request[1] > ends[0] and lines_at_request[2] > ends[1]


async def test_a_watcher_joining_mid_answer_gets_what_already_streamed(tmp_path: Path,
                                                                       autojump_clock: Any) -> None:
    """A second reader that subscribes while the answer streams first gets the text so far
    as one delta, then the rest live: it sees the whole answer, each piece once."""
    answer = Response("r1", "gpt-4o", [TextPart(LONG)], "stop", "stop", Usage(50, 400))
    async with open_fake_server([answer], chunk_chars=20, chunk_delay=0.05) as server:
        cfg = config(tmp_path, {"kind": "openai-chat", "model": "gpt-4o", "api_key": "k-123456",
                                "base_url": server.base_url("openai-chat")})
        async with Engine.open(cfg, environ=ENV) as engine:
            s = await engine.start("tell me a long story")
            first = ""
            late = ""
            resumed = ""
            request_seq = 0
            async with trio.open_nursery() as nursery:

                async def join_late() -> None:
                    nonlocal late
                    async for ev in s.events(deltas=True):
                        if isinstance(ev, TextDelta):
                            late += ev.text

                async def reconnect() -> None:  # it saw the answer begin: no head for it
                    nonlocal resumed
                    async for ev in s.events(since=request_seq, deltas=True):
                        if isinstance(ev, TextDelta):
                            resumed += ev.text

                async for ev in s.events(deltas=True):
                    if ev.type == "request":
                        request_seq = ev.seq
                    if isinstance(ev, TextDelta):
                        first += ev.text
                        if len(first) > 200 and not nursery.child_tasks:
                            nursery.start_soon(join_late)
                            nursery.start_soon(reconnect)
            assert (await s.result()).status == "finished"
    assert first == LONG and late == LONG
    assert resumed and LONG.endswith(resumed) and len(resumed) < len(LONG) - 200
