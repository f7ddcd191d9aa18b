"""MCP tools: servers from ``tools.mcp`` run under the session's nursery, their tools
offered to the model as ``<server>__<tool>``.

Each :class:`McpServer` is one supervising task (``run``) that owns its connection: a
subprocess over stdio (``mcp.client.stdio``) or a streamable-HTTP endpoint. It connects,
initializes, lists the server's tools and reports ready with ``task_status.started()``; it
then holds the connection until the session closes it or the connection dies. Its tools are
plain :class:`~runtime.tools.Tool` objects (the server's JSON Schema as parameters), so the
supervisor validates and approves their calls exactly as it does for built-ins.

Crashes (the server's stdout reaches EOF, or a call finds the connection closed): the call in
flight gets an error result (``MCP server time crashed: ...``) and the server is restarted
once, by the next call that needs it. A second crash (or a failed restart) leaves it down, and
every later call gets an error that says so. ``close()`` (``open_mcp_tools`` does it on exit)
ends every connection; the SDK's stdio shutdown closes stdin, then kills the process group.

Secrets: a server's ``env`` goes to the child only, merged over the SDK's minimal
environment (HOME, LOGNAME, PATH, SHELL, TERM, USER); neither env nor args nor url are logged.

Usage, inside a session's nursery::

    async with open_mcp_tools(cfg.tools.mcp) as tools:
        for t in tools:
            registry.register(t)
        ...   # run the session
"""

from __future__ import annotations

import functools
import math
import os
import sys
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any, Literal, TextIO

import anyio
import attrs
import mcp_types as mt
import trio
from mcp import ClientSession
from mcp.client._transport import TransportStreams
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from ..config.schema import McpServer as McpServerConfig
from ..errors import ConfigError
from .mcp_content import exposed_name, result_text
from .mcp_streams import EofWatch, describe
from .registry import Tool, ToolError
from .validate import check_schema

__all__ = ["McpServer", "McpServerConfig", "McpStartError", "mcp_tools", "open_mcp_servers",
           "open_mcp_tools"]

Notify = Callable[[str], None]
"""Told what happens to a server (crashed, restarted, down, a tool skipped), one sentence."""

State = Literal["starting", "up", "crashed", "down", "closed"]
_CLIENT = mt.Implementation(name="conductor", version="0.1")
_MAX_PAGES = 100
_BROKEN = (anyio.BrokenResourceError, anyio.ClosedResourceError, anyio.EndOfStream)


class McpStartError(ConfigError):
    """One or more MCP servers did not start (the command failed, the server exited or
    never answered): a configuration error naming ``tools.mcp.<server>``, so the CLI exits 2."""


class _StartFailed(Exception):
    """One connection never came up; the message says why."""


@attrs.frozen
class _Remote:
    """``fn`` of an MCP tool: calls ``tool`` on ``server`` with the model's arguments."""

    server: McpServer
    tool: str

    async def __call__(self, **arguments: Any) -> str:
        return await self.server.call(self.tool, arguments)


class McpServer:
    """One MCP server, its connection and its tools (see the module docstring)."""

    def __init__(self, name: str, config: McpServerConfig, *, start_timeout: float = 30.0,
                 max_restarts: int = 1, errlog: TextIO | None = None,
                 cwd: str | Path | None = None, notify: Notify | None = None) -> None:
        if (config.command is None) == (config.url is None):
            raise ValueError(f"MCP server {name!r} needs exactly one of command and url")
        self.name = name
        self.config = config
        self.start_timeout = start_timeout
        self.max_restarts = max_restarts
        self.errlog = errlog
        self.cwd = cwd
        self.notify = notify or (lambda message: None)
        self.state: State = "starting"
        self.restarts = 0
        self.tools: list[Tool] = []
        self._session: ClientSession | None = None
        self._dead = trio.Event()
        self._changed = trio.Event()
        self._wanted = trio.Event()
        self._closing = False
        self._crash_reason = ""
        self._down_reason = ""

    @property
    def transport(self) -> str:
        return "http" if self.config.url is not None else "stdio"

    # -- supervision -------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Connect, report ready, hold the connection; restart it once after a crash."""
        try:
            await self._connection(task_status.started)
            while not self._closing:
                reason = self._crash_reason or "the connection closed"
                if self.restarts >= self.max_restarts:
                    self._go_down(f"it crashed again after its restart ({reason})")
                    return
                self.notify(f"MCP server {self.name} crashed ({reason}); it is restarted "
                            "for the next call")
                self._set_state("crashed")
                await self._wanted.wait()
                self._wanted = trio.Event()
                if self._closing:
                    break
                self.restarts += 1
                try:
                    await self._connection(lambda: None)
                except _StartFailed as exc:
                    self._go_down(f"its restart failed ({exc})")
                    return
        finally:
            if self.state != "down":
                self._set_state("closed")

    async def wait_until(self, *states: State) -> None:
        """Return once the server is in one of ``states`` (e.g. ``"crashed"``, ``"down"``)."""
        while self.state not in states:
            await self._changed.wait()

    def close(self) -> None:
        """End the connection (and the server process); later calls get an error."""
        self._closing = True
        self._dead.set()
        self._wanted.set()

    async def _connection(self, ready: Callable[[], None]) -> None:
        """One connection: open, initialize, list tools, call ``ready``, hold it until it
        dies or is closed. Raises :class:`_StartFailed` when it never came up."""
        dead = self._dead = trio.Event()
        if self._closing:  # close() came first: connect nothing
            raise _StartFailed("closed before it started")
        self._crash_reason = ""
        self._set_state("starting")
        up = False
        try:
            with trio.CancelScope(deadline=trio.current_time() + self.start_timeout) as scope:
                async with self._transport() as (read, write), \
                        ClientSession(EofWatch(read, dead.set), write,
                                      client_info=_CLIENT) as session:
                    await session.initialize()
                    listed = await _list_tools(session)
                    scope.deadline = math.inf
                    self._adopt(listed)
                    self._session = session
                    up = True
                    self._set_state("up")
                    if self.restarts:
                        self.notify(f"MCP server {self.name} is up again after a restart")
                    ready()
                    await dead.wait()
                    self._session = None
        except Exception as exc:
            if not up:
                raise _StartFailed(describe(exc)) from exc
            self._crash_reason = self._crash_reason or describe(exc)
        finally:
            self._session = None
        if not up:
            raise _StartFailed(f"no answer within {self.start_timeout:g} s"
                                if scope.cancelled_caught else "the connection closed at start")

    def _transport(self) -> AbstractAsyncContextManager[TransportStreams]:
        if self.config.url is not None:
            return streamable_http_client(self.config.url)
        assert self.config.command is not None
        # `python` is the interpreter running the conductor (its venv, its packages), not
        # whichever python comes first on PATH
        command = self.config.command
        if command in ("python", "python3") and sys.executable:
            command = sys.executable
        params = StdioServerParameters(command=command, args=list(self.config.args),
                                       env=dict(self.config.env) or None, cwd=self.cwd)
        return stdio_client(params, errlog=self.errlog or _errlog())

    def _adopt(self, listed: list[mt.Tool]) -> None:
        """Build the Tool objects at the first start; a restart keeps the ones offered."""
        if self.tools:
            return
        seen: set[str] = set()
        for t in listed:
            name = exposed_name(self.name, t.name)
            schema = dict(t.input_schema)
            try:
                check_schema(schema)
            except ValueError as exc:
                self.notify(f"MCP tool {t.name} of {self.name} is not offered: {exc}")
                continue
            if name in seen:
                self.notify(f"MCP tool {t.name} of {self.name} is not offered: its name "
                            f"{name!r} is taken")
                continue
            seen.add(name)
            desc = t.description or t.title or f"{t.name} (MCP server {self.name})"
            self.tools.append(Tool(name, desc, schema, _Remote(self, t.name)))

    def _set_state(self, state: State) -> None:
        self.state = state
        self._changed.set()
        self._changed = trio.Event()

    def _go_down(self, reason: str) -> None:
        self._down_reason = reason
        self.notify(f"MCP server {self.name} is down: {reason}; its calls get an error")
        self._set_state("down")

    # -- calls -------------------------------------------------------------------------

    async def _session_for_call(self) -> ClientSession:
        while True:
            if self.state == "up" and self._session is not None and not self._dead.is_set():
                return self._session
            if self.state == "down":
                raise ToolError(f"MCP server {self.name} is down: {self._down_reason}")
            if self.state == "closed" or self._closing:
                raise ToolError(f"MCP server {self.name} is closed")
            if self.state == "crashed":
                self._wanted.set()  # the next call restarts it
            await self._changed.wait()

    async def call(self, tool: str, arguments: dict[str, Any]) -> str:
        """Call ``tool``; its text, or :class:`ToolError` with what the model should know."""
        session = await self._session_for_call()
        try:
            result = await session.call_tool(tool, arguments)
        except MCPError as exc:
            if exc.code != mt.CONNECTION_CLOSED:
                raise ToolError(f"MCP server {self.name} refused {tool}: {exc.message}") from None
            raise self._crashed(session, f"the connection closed during {tool}") from None
        except _BROKEN as exc:
            raise self._crashed(session, f"{describe(exc)} during {tool}") from None
        text = result_text(result.content, result.structured_content)
        if result.is_error:
            raise ToolError(text or f"{tool} failed (MCP server {self.name} gave no message)")
        return text

    def _crashed(self, session: ClientSession, reason: str) -> ToolError:
        if self._session is session and not self._closing:
            self._crash_reason = reason
            self._dead.set()
        if self._closing:
            return ToolError(f"MCP server {self.name} was closed during the call")
        then = ("it will be restarted for the next call" if self.restarts < self.max_restarts
                else "it had already been restarted once, so it stays down")
        return ToolError(f"MCP server {self.name} crashed: {reason}; {then}")


async def _list_tools(session: ClientSession) -> list[mt.Tool]:
    tools: list[mt.Tool] = []
    cursor: str | None = None
    for _ in range(_MAX_PAGES):
        params = mt.PaginatedRequestParams(cursor=cursor) if cursor else None
        page = await session.list_tools(params=params)
        tools.extend(page.tools)
        cursor = page.next_cursor
        if not cursor:
            break
    return tools


def _errlog() -> TextIO:
    """Where server stderr goes: our stderr when it is a real file, else /dev/null."""
    try:
        sys.stderr.fileno()
        return sys.stderr
    except (AttributeError, OSError, ValueError):
        return _devnull()


@functools.cache
def _devnull() -> TextIO:
    return open(os.devnull, "w")  # one for the life of the process


@asynccontextmanager
async def open_mcp_servers(configs: Mapping[str, McpServerConfig], *, start_timeout: float = 30.0,
                           errlog: TextIO | None = None, cwd: str | Path | None = None,
                           notify: Notify | None = None) -> AsyncIterator[list[McpServer]]:
    """Start every server concurrently (in a nursery this context owns), yield them once
    all are up, close them all on exit. A server that does not start raises
    :class:`McpStartError` naming it, after the others are closed."""
    servers = [McpServer(name, cfg, start_timeout=start_timeout, errlog=errlog, cwd=cwd,
                         notify=notify) for name, cfg in configs.items()]
    failures: list[tuple[str, str]] = []
    async with trio.open_nursery() as nursery:
        try:
            async def start(server: McpServer) -> None:
                try:
                    await nursery.start(server.run)
                except _StartFailed as exc:
                    failures.append((server.name, f"MCP server {server.name!r} did not start: "
                                                  f"{exc}"))

            async with trio.open_nursery() as starting:
                for server in servers:
                    starting.start_soon(start, server)
            if not failures:
                yield servers
        finally:
            for server in servers:
                server.close()
    if failures:  # raised outside the nursery, so callers get it as is
        failures.sort(key=lambda f: list(configs).index(f[0]))
        raise McpStartError("; ".join(text for _, text in failures),
                            path=f"tools.mcp.{failures[0][0]}",
                            fix="run the server's command by hand to see why, or check its url")


@asynccontextmanager
async def open_mcp_tools(configs: Mapping[str, McpServerConfig], *, start_timeout: float = 30.0,
                         errlog: TextIO | None = None, cwd: str | Path | None = None,
                         notify: Notify | None = None) -> AsyncIterator[list[Tool]]:
    """Like :func:`open_mcp_servers`, yielding the tools of every server in config order."""
    async with open_mcp_servers(configs, start_timeout=start_timeout, errlog=errlog,
                                cwd=cwd, notify=notify) as servers:
        yield [t for s in servers for t in s.tools]


async def mcp_tools(configs: Mapping[str, McpServerConfig], *, start_timeout: float = 30.0,
                    errlog: TextIO | None = None,
                    task_status: trio.TaskStatus[list[Tool]] = trio.TASK_STATUS_IGNORED) -> None:
    """A task for ``await nursery.start(mcp_tools, servers)``: reports the tools when every
    server is up, then runs them until cancelled, and closes them all."""
    async with open_mcp_tools(configs, start_timeout=start_timeout, errlog=errlog) as tools:
        task_status.started(tools)
        await trio.sleep_forever()
