"""A keep_open session as a chat: waiting for input, cancelled turns, closing, switching model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import trio

from runtime.config import load_config
from runtime.engine import Engine
from runtime.errors import ConfigError
from runtime.events import TextDelta
from runtime.model import ReasoningPart, Request, Response, TextPart, Usage
from runtime.testing import ScriptedProvider

ENV = {"TEST_TRACE_KEY": "unit-test-trace-key"}


def config(write_config: Any, **extra: Any) -> Any:
    cfg = {"provider": "main",
           "providers": {"main": {"kind": "scripted", "model": "alpha",
                                  "models": ["alpha", "beta"], "script": [{"text": "x"}]},
                         "other": {"kind": "scripted", "model": "gamma",
                                   "script": [{"text": "x"}]}},
           **extra}
    return load_config(write_config(cfg), environ=ENV)


def answer(text: str, *parts: Any) -> Response:
    return Response("r", "scripted", [*parts, TextPart(text)], "stop", "stop", Usage(10, 5))


def transcript(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (run_dir / "transcript.jsonl").read_text().splitlines()]


class Hanging:
    """A provider that streams a few words and then never finishes (until cancelled)."""

    protocol = "scripted"

    def __init__(self, name: str, then: list[Response]) -> None:
        self.name = name
        self.then = then
        self.requests: list[Request] = []
        self.streaming = trio.Event()

    async def attempt(self, req: Request, send: Any = None, *, stream: bool = True) -> Response:
        self.requests.append(req)
        if len(self.requests) > 1:
            await trio.lowlevel.checkpoint()
            resp = self.then[len(self.requests) - 2]
            if send is not None:
                await send.send([TextDelta(resp.text)])
            return resp
        if send is not None:
            await send.send([TextDelta("partial words")])
        self.streaming.set()
        await trio.sleep_forever()
        raise AssertionError("unreachable")


async def test_chat_waits_for_input_then_answers_each_message(write_config: Any) -> None:
    """Started without a task, a keep_open session sends nothing until the first message,
    answers each message, and finishes (exit 0) when its input is closed."""
    provider = ScriptedProvider("main", [answer("one"), answer("two")])
    cfg = config(write_config)
    async with Engine.open(cfg, environ=ENV, providers={"main": provider}) as engine:
        s = await engine.start(None, keep_open=True)
        assert await s.wait_input() is True
        assert provider.requests == [] and s.status == "waiting_input"
        await s.send("first")
        assert await s.wait_input() is True
        await s.send("second")
        assert await s.wait_input() is True
        s.close_input()
        result = await s.result()
    assert (result.status, result.exit_code, result.answer) == ("finished", 0, "two")
    assert [m.text for m in provider.requests[1].messages] == ["first", "one", "second"]
    kinds = [r["type"] for r in transcript(s.run_dir)]
    assert kinds.count("user") == 2 and kinds[-1] == "session_end"


async def test_cancelled_turn_keeps_the_chat_going_and_closing_finishes(write_config: Any
                                                                         ) -> None:
    """cancel_turn mid-stream records the partial answer as interrupted, the next message
    is answered with a valid conversation, and closing the input finishes with exit 0."""
    provider = Hanging("main", [answer("after")])
    cfg = config(write_config)
    async with Engine.open(cfg, environ=ENV, providers={"main": provider}) as engine:
        s = await engine.start(None, keep_open=True)
        await s.wait_input()
        await s.send("slow one")
        await provider.streaming.wait()
        assert s.cancel_turn() is True
        assert await s.wait_input() is True
        await s.send("next")
        await s.wait_input()
        s.close_input()
        result = await s.result()
    assert (result.status, result.exit_code) == ("finished", 0)
    roles = [(m.role, m.text) for m in provider.requests[1].messages]
    assert roles == [("user", "slow one"), ("user", "next")]
    records = transcript(s.run_dir)
    partial = [r for r in records if r["type"] == "assistant" and r["status"] == "interrupted"]
    assert partial and partial[0]["text"] == "partial words"


async def test_resumed_finished_run_waits_for_input(write_config: Any) -> None:
    """A finished run resumed as a chat asks nothing until the user speaks, then continues
    the same conversation."""
    cfg = config(write_config)
    first = ScriptedProvider("main", [answer("done")])
    async with Engine.open(cfg, environ=ENV, providers={"main": first}) as engine:
        s = await engine.start("the task", run_id="r1")
        assert (await s.result()).status == "finished"
    again = ScriptedProvider("main", [answer("more")])
    async with Engine.open(cfg, environ=ENV, providers={"main": again}) as engine:
        s = await engine.start(None, resume="r1", keep_open=True)
        assert await s.wait_input() is True
        assert again.requests == []
        await s.send("go on")
        await s.wait_input()
        s.close_input()
        result = await s.result()
    assert result.answer == "more"
    assert [m.text for m in again.requests[0].messages] == ["the task", "done", "go on"]


async def test_switch_model_retires_reasoning_and_is_recorded(write_config: Any) -> None:
    """Switching to another model of the entry sends the next turn to it without the signed
    reasoning the old model produced, and records a model_switch warning."""
    signed = ReasoningPart(text="thought", signature="sig-alpha", source="main",
                           protocol="anthropic")
    provider = ScriptedProvider("main", [answer("one", signed), answer("two"), answer("three")])
    cfg = config(write_config)
    async with Engine.open(cfg, environ=ENV, providers={"main": provider}) as engine:
        s = await engine.start(None, keep_open=True)
        await s.wait_input()
        await s.send("hi")
        await s.wait_input()
        await s.send("again")
        await s.wait_input()
        h = await s.switch(model="beta")
        assert (h.name, h.model) == ("main", "beta") and s.driver == h
        await s.send("and now")
        await s.wait_input()
        s.close_input()
        await s.result()
    alpha, beta = provider.requests[1], provider.requests[2]
    assert (alpha.model, beta.model) == ("alpha", "beta")

    def signed_parts(req: Request) -> list[Any]:
        return [p for m in req.messages for p in m.parts if isinstance(p, ReasoningPart)]
    assert [p.signature for p in signed_parts(alpha)] == ["sig-alpha"]
    assert signed_parts(beta) == []
    warnings = [r for r in transcript(s.run_dir) if r["type"] == "warning"]
    switch = [w for w in warnings if w["code"] == "model_switch"]
    assert len(switch) == 1 and "main (beta)" in switch[0]["message"]
    assert any(w["code"] == "reasoning_dropped" for w in warnings)


async def test_switch_to_another_entry_and_the_allowlist(write_config: Any) -> None:
    """An entry name switches to that entry's configured model; a model outside the
    entry's allowlist or an unknown entry is a ConfigError and changes nothing."""
    main = ScriptedProvider("main", [answer("m")])
    other = ScriptedProvider("other", [answer("o")])
    cfg = config(write_config)
    async with Engine.open(cfg, environ=ENV, providers={"main": main, "other": other}) as eng:
        s = await eng.start(None, keep_open=True)
        await s.wait_input()
        with pytest.raises(ConfigError, match="allowlist"):
            await s.switch(model="delta")
        with pytest.raises(ConfigError, match="no provider named"):
            await s.switch("nowhere")
        assert s.driver is not None and s.driver.model == "alpha"
        h = await s.switch("other")
        assert (h.name, h.model) == ("other", "gamma")
        await s.send("hello")
        await s.wait_input()
        s.close_input()
        result = await s.result()
    assert result.answer == "o" and main.requests == []
    assert other.requests[0].model == "gamma"


async def test_start_with_a_model_outside_the_allowlist_is_refused(write_config: Any) -> None:
    """engine.start(model=...) is held to the entry's allowlist as /model is, before any
    run folder is made."""
    cfg = config(write_config)
    async with Engine.open(cfg, environ=ENV, providers={}) as engine:
        with pytest.raises(ConfigError, match="allowlist"):
            await engine.start("task", model="delta")
    logs = Path(cfg.logging.dir)
    assert not logs.exists() or not any(logs.iterdir())
