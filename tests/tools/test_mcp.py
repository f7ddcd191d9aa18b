"""MCP tools against real servers from PyPI (mcp-server-time, mcp-server-git) and a small
streamable-HTTP server built on the SDK: listing, calls, sessions, crashes, clean shutdown."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anyio
import mcp_types as mt
import msgspec
import pytest
import structlog
import trio
import trio.testing

from runtime.config import load_config
from runtime.engine import run_session
from runtime.model import Request, Response, TextPart, ToolCallPart, ToolResultPart, Usage
from runtime.testing import ScriptedProvider
from runtime.tools import Tool, ToolError
from runtime.tools.mcp import (
    McpServer,
    McpServerConfig,
    McpStartError,
    mcp_tools,
    open_mcp_servers,
    open_mcp_tools,
)
from runtime.tools.mcp_content import exposed_name, result_text
from runtime.tools.mcp_streams import EofWatch
from tests.conftest import Run

TIME = McpServerConfig(command=sys.executable, args=["-m", "mcp_server_time"])
GIT = McpServerConfig(command=sys.executable, args=["-m", "mcp_server_git"])


def children(marker: str) -> list[int]:
    """PIDs of this process's children whose command line contains ``marker``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == os.getpid() and marker.encode() in cmdline:
            found.append(int(entry))
    return found


def gone(pids: list[int]) -> bool:
    """True when none of ``pids`` exists any more (not even as a zombie)."""
    return not any(Path(f"/proc/{pid}").exists() for pid in pids)


def environ_of(pid: int) -> dict[bytes, bytes]:
    """The environment a running process was started with."""
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.split(b"=", 1) for item in raw if b"=" in item)


def by_name(tools: list[Tool], name: str) -> Tool:
    return next(t for t in tools if t.name == name)


@pytest.fixture
def repo(tmp_path: Path) -> tuple[Path, str, str]:
    """A fresh git repository with an unusual branch name and one untracked file."""
    path = tmp_path / "repo"
    path.mkdir()
    branch = f"branch-{secrets.token_hex(3)}"
    subprocess.run(["git", "init", "-q", "-b", branch, str(path)], check=True)
    note = f"note-{secrets.token_hex(3)}.txt"
    (path / note).write_text("hello\n")
    return path, branch, note


async def test_lists_and_calls_tools_of_both_servers(repo: tuple[Path, str, str]) -> None:
    """Both servers start in the caller's nursery, their tools carry the servers' schemas,
    real calls answer, and cancelling the nursery leaves no server process behind."""
    path, branch, note = repo
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            tools: list[Tool] = await nursery.start(mcp_tools, {"time": TIME, "git": GIT})
            pids = children("mcp_server_time") + children("mcp_server_git")
            assert len(pids) == 2
            names = [t.name for t in tools]
            assert "time__get_current_time" in names and "git__git_status" in names
            assert all(n.split("__", 1)[0] in ("time", "git") for n in names)
            now = by_name(tools, "time__get_current_time")
            assert now.parameters["type"] == "object" and "timezone" in now.parameters["required"]
            assert "repo_path" in by_name(tools, "git__git_status").parameters["required"]

            tokyo = json.loads(await now.call({"timezone": "Asia/Tokyo"}))
            assert tokyo["timezone"] == "Asia/Tokyo"
            stamp = dt.datetime.fromisoformat(tokyo["datetime"])
            assert stamp.utcoffset() == dt.timedelta(hours=9)

            status = await by_name(tools, "git__git_status").call({"repo_path": str(path)})
            assert branch in status and note in status

            with pytest.raises(ToolError, match="Invalid timezone"):  # isError -> ToolError
                await now.call({"timezone": "Nowhere/Atlantis"})
            nursery.cancel_scope.cancel()
    assert gone(pids)


async def test_session_calls_mcp_tools_and_validates_their_arguments(
        write_config: Callable[..., Path],
        repo: tuple[Path, str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """A scripted session calls both servers' tools: results reach the model, a call that
    breaks the tool's schema is rejected without reaching the server, approval globs apply,
    and the server env reaches the child (over a minimal environment) but stays out of the
    run folder and the logs."""
    path, branch, note = repo
    monkeypatch.setenv("CONDUCTOR_PARENT_ONLY", "should-not-leak")
    secret = "tok-" + secrets.token_hex(8)
    config = write_config({
        "provider": "main",
        "providers": {"main": {"kind": "scripted", "model": "scripted",
                               "script": [{"text": "unused"}]}},
        "task": "What time is it in Tokyo, and what is the state of the repo?",
        "tools": {
            "mcp": {"time": {"command": sys.executable, "args": ["-m", "mcp_server_time"],
                             "env": {"TIME_API_TOKEN": secret}},
                    "git": {"command": sys.executable, "args": ["-m", "mcp_server_git"]}},
            "approval": {"time__convert_time": "deny", "git__*": "auto"},
        },
    })
    environ = {"TEST_TRACE_KEY": "unit-test-trace-key"}
    cfg = load_config(config, environ=environ)
    # the servers are driven through the public API here, so run_session must not start
    # cfg.tools.mcp a second time (the approval rules stay as loaded)
    session_cfg = msgspec.structs.replace(cfg, tools=msgspec.structs.replace(cfg.tools, mcp={}))
    calls = [
        ToolCallPart("c1", "time__get_current_time", '{"timezone": "Asia/Tokyo"}'),
        ToolCallPart("c2", "git__git_status", json.dumps({"repo_path": str(path)})),
        ToolCallPart("c3", "time__get_current_time", '{"timezone": 9}'),
        ToolCallPart("c4", "time__convert_time", json.dumps(
            {"source_timezone": "UTC", "time": "12:00", "target_timezone": "Asia/Tokyo"})),
    ]

    def final(req: Request) -> Response:
        return Response("r2", "scripted", [TextPart("done")], "stop", "stop", Usage(10, 2))

    provider = ScriptedProvider("main", [
        Response("r1", "scripted", list(calls), "tool_calls", "tool_calls", Usage(10, 5)), final])
    seen: list[tuple[str, dict[str, Any]]] = []
    with trio.fail_after(25), structlog.testing.capture_logs() as logs:
        async with open_mcp_servers(cfg.tools.mcp) as servers:
            for server in servers:
                real = server.call

                async def spy(tool: str, arguments: dict[str, Any], *, _real: Any = real,
                              _name: str = server.name) -> str:
                    seen.append((f"{_name}__{tool}", arguments))
                    return await _real(tool, arguments)

                monkeypatch.setattr(server, "call", spy)
            tools = [t for s in servers for t in s.tools]
            [pid] = children("mcp_server_time")
            env = environ_of(pid)
            outcome, run_dir = await run_session(
                session_cfg, task=cfg.task, environ=environ, providers={"main": provider},
                tools=tools)
            run = Run(outcome, run_dir, "", outcome.message)
    assert run.outcome.exit_code == 0, run.err
    assert sorted(seen) == [("git__git_status", {"repo_path": str(path)}),
                            ("time__get_current_time", {"timezone": "Asia/Tokyo"})]
    results = {e["call_id"]: e for e in run.events("tool_result")}
    assert results["c1"]["ok"] and results["c2"]["ok"]
    rejected = {e["call_id"]: e for e in run.events("tool_rejected")}
    assert set(rejected) == {"c3", "c4"}
    assert any("timezone" in err for err in rejected["c3"]["errors"])
    fed = {p.call_id: p for p in provider.requests[1].messages[-1].parts
           if isinstance(p, ToolResultPart)}
    assert [fed[c].is_error for c in ("c1", "c2", "c3", "c4")] == [False, False, True, True]
    assert json.loads(str(fed["c1"].content))["timezone"] == "Asia/Tokyo"
    assert branch in str(fed["c2"].content) and note in str(fed["c2"].content)
    assert {s.name for s in servers} == {"time", "git"} and all(s.state == "closed"
                                                                for s in servers)
    assert env[b"TIME_API_TOKEN"] == secret.encode()
    assert b"PATH" in env and b"HOME" in env and b"CONDUCTOR_PARENT_ONLY" not in env
    for file in run.run_dir.rglob("*"):
        if file.is_file():
            assert secret.encode() not in file.read_bytes(), file
    assert secret not in repr(logs)


async def test_agent_yaml_mcp_servers_run_for_the_session(
        write_config: Callable[..., Path], run_agent: Callable[..., Any]) -> None:
    """run_session starts the servers of tools.mcp itself, offers their tools, and leaves no
    server process behind when the session ends."""
    during: list[int] = []

    def answer(req: Request) -> Response:
        during.extend(children("mcp_server_time"))
        return Response("r2", "scripted", [TextPart("done")], "stop", "stop", Usage(10, 2))

    first = Response("r1", "scripted", [ToolCallPart("c1", "time__get_current_time",
                                                      '{"timezone": "Asia/Tokyo"}')],
                     "tool_calls", "tool_calls", Usage(10, 5))
    provider = ScriptedProvider("main", [first, answer])
    config = write_config({
        "provider": "main",
        "providers": {"main": {"kind": "scripted", "model": "scripted",
                               "script": [{"text": "unused"}]}},
        "task": "What time is it in Tokyo?",
        "tools": {"mcp": {"time": {"command": sys.executable,
                                   "args": ["-m", "mcp_server_time"]}}},
    })
    with trio.fail_after(20):
        run = await run_agent(config, providers={"main": provider})
    assert run.outcome.exit_code == 0, run.err
    [result] = run.events("tool_result")
    assert result["ok"] and json.loads(result["content"])["timezone"] == "Asia/Tokyo"
    assert "time__get_current_time" in [t.name for t in provider.requests[0].tools]
    assert len(during) == 1 and gone(during)


async def _crash_in_flight(tool: Tool, pid: int) -> str:
    """Freeze the server, start a call, kill the server while the call waits for its
    answer; return the call's error text."""
    errors: list[str] = []

    async def call() -> None:
        try:
            await tool.call({"timezone": "Asia/Tokyo"})
        except ToolError as exc:
            errors.append(str(exc))

    os.kill(pid, signal.SIGSTOP)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(call)
        await trio.testing.wait_all_tasks_blocked()
        os.kill(pid, signal.SIGKILL)
    assert len(errors) == 1, "the call in flight must fail"
    return errors[0]


async def test_crash_restarts_once_then_stays_down() -> None:
    """A crash fails the call in flight and the next call restarts the server; a second
    crash (here while idle, noticed at once) leaves it down, with a clear error for every
    later call, and no process behind."""
    with trio.fail_after(20):
        async with open_mcp_servers({"time": TIME}) as [server]:
            tool = by_name(server.tools, "time__get_current_time")
            [first] = children("mcp_server_time")
            message = await _crash_in_flight(tool, first)
            assert message.startswith("MCP server time crashed:")
            assert "restarted for the next call" in message

            assert json.loads(await tool.call({"timezone": "Europe/Paris"}))["timezone"] \
                == "Europe/Paris"
            assert server.restarts == 1 and server.state == "up"
            [second] = children("mcp_server_time")
            assert second != first and gone([first])

            os.kill(second, signal.SIGKILL)  # idle: noticed without a call in flight
            await server.wait_until("down")
            for _ in range(2):
                with pytest.raises(ToolError, match=r"MCP server time is down: .*crashed again"):
                    await tool.call({"timezone": "Asia/Tokyo"})
            assert gone([second]) and children("mcp_server_time") == []
    assert server.state == "down"
    with pytest.raises(ToolError, match="is down"):
        await tool.call({"timezone": "Asia/Tokyo"})


async def test_servers_that_do_not_start_are_reported_by_name() -> None:
    """A missing command, a server that exits at once and one that never answers are each
    named in one McpStartError, and the process that did start is not left behind."""
    missing = "/nonexistent/mcp-server-" + secrets.token_hex(3)
    configs = {
        "silent": McpServerConfig(command=sys.executable,
                                  args=["-c", "import sys; sys.stdin.read()"]),
        "quits": McpServerConfig(command=sys.executable, args=["-c", "pass"]),
        "missing": McpServerConfig(command=missing),
    }
    with trio.fail_after(15), pytest.raises(McpStartError) as info:
        async with open_mcp_servers(configs, start_timeout=0.5):
            pytest.fail("must not start")
    text = str(info.value)
    assert "MCP server 'silent' did not start: no answer within 0.5 s" in text
    assert "MCP server 'quits' did not start: " in text
    assert "MCP server 'missing' did not start: FileNotFoundError" in text
    assert children("sys.stdin.read") == []


HTTP_SERVER = """
import sys
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.utilities.types import Image

server = MCPServer("web")

@server.tool()
def shout(text: str) -> str:
    \"\"\"Upper-case the text.\"\"\"
    return text.upper()

@server.tool(name="draw.picture")
def picture() -> Image:
    \"\"\"A tiny picture.\"\"\"
    return Image(data=b"\\x89PNG", format="png")

@server.tool()
def broken() -> str:
    \"\"\"Always fails.\"\"\"
    raise ToolError("the broken tool is broken")

server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[1]))
"""


@pytest.fixture
async def http_server(tmp_path: Path) -> AsyncIterator[tuple[str, trio.Process]]:
    """A streamable-HTTP MCP server built on the SDK, on a free loopback port: its URL and
    its process."""
    script = tmp_path / "web_server.py"
    script.write_text(textwrap.dedent(HTTP_SERVER))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = await trio.lowlevel.open_process([sys.executable, str(script), str(port)],
                                            stderr=subprocess.PIPE)
    try:
        assert proc.stderr is not None
        seen = b""
        with trio.fail_after(15):
            while b"Uvicorn running" not in seen:
                chunk = await proc.stderr.receive_some()
                assert chunk, f"the server exited: {seen.decode(errors='replace')}"
                seen += chunk
        yield f"http://127.0.0.1:{port}/mcp", proc
    finally:
        proc.kill()
        with trio.CancelScope(shield=True):
            await proc.wait()


async def test_streamable_http_server(http_server: tuple[str, trio.Process]) -> None:
    """Tools of a URL server: names made safe, text results, images as a placeholder, an
    isError result as ToolError carrying the server's message; when the server dies the
    call fails as a crash, and a restart that cannot connect leaves it down."""
    url, proc = http_server
    with trio.fail_after(15):
        async with open_mcp_tools({"web": McpServerConfig(url=url)}) as tools:
            names = sorted(t.name for t in tools)
            assert names == ["web__broken", "web__draw_picture", "web__shout"]
            assert await by_name(tools, "web__shout").call({"text": "hi"}) == "HI"
            assert await by_name(tools, "web__draw_picture").call({}) == \
                "[image: image/png, 4 bytes]"
            with pytest.raises(ToolError, match="the broken tool is broken"):
                await by_name(tools, "web__broken").call({})
            proc.kill()
            await proc.wait()
            with pytest.raises(ToolError, match=r"^MCP server web crashed: "):
                await by_name(tools, "web__shout").call({"text": "again"})
            with pytest.raises(ToolError, match=r"^MCP server web is down: its restart failed"):
                await by_name(tools, "web__shout").call({"text": "again"})


async def test_mcp_tool_output_is_capped(http_server: tuple[str, trio.Process]) -> None:
    """An MCP tool's long result is capped at max_output_chars by the supervisor."""
    from runtime.tools import ToolRegistry, run_tool_calls

    url, _ = http_server
    with trio.fail_after(15):
        async with open_mcp_tools({"web": McpServerConfig(url=url)}) as tools:
            registry = ToolRegistry(tools, max_output_chars=200)
            (out,) = await run_tool_calls(
                [ToolCallPart("c1", "web__shout", json.dumps({"text": "a" * 3000}))], registry)
    assert out.ok and out.content.startswith("A" * 100)
    assert "2800 of 3000 characters cut" in out.content and len(out.content) < 300


def test_server_needs_command_or_url() -> None:
    """The runtime refuses a config with neither command nor url."""
    with pytest.raises(ValueError, match="exactly one of command and url"):
        McpServer("x", McpServerConfig())


def test_exposed_names_are_safe_for_providers() -> None:
    """Server and tool names join with ``__``; characters providers reject become ``_`` and
    the name is cut to 64 characters."""
    assert exposed_name("time", "get_current_time") == "time__get_current_time"
    assert exposed_name("docs", "search.v2/all") == "docs__search_v2_all"
    long = exposed_name("s", "x" * 100)
    assert len(long) == 64 and long.startswith("s__x")


def test_result_text_renders_each_block_kind() -> None:
    """Text stays text; images, audio and binary resources become short placeholders
    (never base64); text resources give their text; no blocks fall back to structured
    content."""
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(92)).decode()
    blocks = [
        mt.TextContent(text="first"),
        mt.ImageContent(data=png, mime_type="image/png"),
        mt.AudioContent(data=base64.b64encode(b"RIFF").decode(), mime_type="audio/wav"),
        mt.EmbeddedResource(resource=mt.TextResourceContents(uri="file:///a.txt", text="inner")),
        mt.EmbeddedResource(resource=mt.BlobResourceContents(uri="file:///b.bin", blob=png)),
        mt.ResourceLink(uri="file:///c.md", name="c"),
    ]
    lines = result_text(blocks).split("\n")
    assert lines == ["first", "[image: image/png, 100 bytes]", "[audio: audio/wav, 4 bytes]",
                     "inner", "[resource file:///b.bin: application/octet-stream, 100 bytes]",
                     "[resource link: file:///c.md (c)]"]
    assert png not in result_text(blocks)
    assert json.loads(result_text([], {"a": [1, 2]})) == {"a": [1, 2]}
    assert result_text([]) == ""


async def test_eof_watch_reports_the_end_of_its_stream_once() -> None:
    """EofWatch passes items through and calls on_end when the stream ends."""
    send, receive = anyio.create_memory_object_stream[int](1)
    ended: list[bool] = []
    watched = EofWatch(receive, lambda: ended.append(True))
    async with send:
        await send.send(1)
        assert await watched.receive() == 1
        assert not ended
    assert [x async for x in watched] == []
    assert ended == [True]
