"""Interactive commands on a real session (scripted provider), without a terminal: what
/cost, /tools, /model, /compact, /save and /help say and do."""

from __future__ import annotations

import io
from typing import Any

import trio

from runtime.cli.chat_input import LineReader
from runtime.cli.chatview import ChatView
from runtime.cli.interactive import Chat
from runtime.cli.status import Screen
from runtime.config import load_config
from runtime.engine import Engine
from runtime.model import Response, TextPart, Usage
from runtime.redact import Redactor
from runtime.testing import ScriptedProvider

ENV = {"TEST_TRACE_KEY": "unit-test-trace-key"}


class NoTerminal(LineReader):
    """Commands do not read the terminal; a prompt would be a test failure."""

    def __init__(self) -> None:
        pass

    async def read(self, prompt: str) -> str:
        raise AssertionError("no prompt expected")


async def with_chat(write_config: Any, body: Any, **extra: Any) -> list[str]:
    cfg = load_config(write_config({
        "provider": "main",
        "providers": {"main": {"kind": "scripted", "model": "m1", "models": ["m1", "m2"],
                               "script": [{"text": "x"}]},
                      "other": {"kind": "scripted", "model": "o1", "script": [{"text": "x"}]}},
        "pricing": {"m1": {"input": 1.0, "output": 2.0}},
        "tools": {"builtin": ["list_dir", "write_file"], "approval": {"write_file": "ask"}},
        **extra}), environ=ENV)
    said: list[str] = []
    provider = ScriptedProvider("main", [Response("r", "m1", [TextPart("hi")], "stop", "stop",
                                                  Usage(1000, 50))])
    async with Engine.open(cfg, environ=ENV, providers={"main": provider}) as engine:
        s = await engine.start("hello", keep_open=True)
        view = ChatView(Screen(io.StringIO(), io.StringIO()), Redactor([], []))
        chat = Chat(engine, s, view, NoTerminal(), err=said.append)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(chat.pump)
            await s.wait_input()
            await chat._shown()
            await body(chat, said)
            s.close_input()
            await s.result()
    return said


async def test_cost_tools_model_save(write_config: Any) -> None:
    """/cost adds up the turn, /tools lists policies, /model switches within the
    allowlist and refuses outside it, /save names the run folder, /exit ends."""
    async def body(chat: Chat, said: list[str]) -> None:
        assert await chat.command("/cost")
        assert "tokens: 1,050 (in 1,000" in said[0] and said[1] == "cost: $0.0011"
        said.clear()
        assert await chat.command("/tools")
        assert any("write_file" in x and " ask " in x for x in said)
        assert any("list_dir" in x and " auto " in x for x in said)
        said.clear()
        assert await chat.command("/model m3")
        assert "allowlist" in said[-1]
        assert await chat.command("/model other")
        assert chat.session.driver is not None and chat.session.driver.model == "o1"
        assert await chat.command("/model main:m2")
        assert chat.session.driver is not None and chat.session.driver.model == "m2"
        said.clear()
        assert await chat.command("/model")
        assert said[0] == "now: main (m2)" and len(said) == 3
        said.clear()
        assert await chat.command("/save")
        assert str(chat.session.run_dir.resolve()) in said[0]
        assert await chat.command("/nope")
        assert "unknown command /nope" in said[-1]
        assert await chat.command("/help")
        assert "/compact" in said[-1]
        assert not await chat.command("/exit")

    await with_chat(write_config, body)


async def test_compact_asks_the_session(write_config: Any) -> None:
    """/compact HOW calls Session.compact with that strategy and says when nothing
    changed; without Session.compact it says compaction is not available."""
    async def body(chat: Chat, said: list[str]) -> None:
        calls: list[Any] = []

        class Done:
            changed = False
            message = "nothing to compact: 12 tokens of 4,000"

        async def compact(strategy: str | None = None) -> Done:
            calls.append(strategy)
            return Done()

        if not hasattr(chat.session, "compact"):
            await chat.command("/compact")
            assert "not available" in said[-1]

        class WithCompact:
            """The session, with the context manager's ``compact``."""

            def __init__(self, session: Any) -> None:
                self._session = session
                self.compact = compact

            def __getattr__(self, name: str) -> Any:
                return getattr(self._session, name)

        chat.session = WithCompact(chat.session)  # type: ignore[assignment]
        await chat.command("/compact summarize")
        await chat.command("/compact")
        assert calls == ["summarize", None]
        assert said[-1] == "nothing to compact: 12 tokens of 4,000"

    await with_chat(write_config, body)
