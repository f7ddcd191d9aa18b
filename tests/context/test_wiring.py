"""Where the window comes from and what happens at its edges, in whole sessions over
loopback: a llama.cpp server that comes up after the engine, an unknown window, refusals
that compacting cannot answer, a failover to a smaller window, /compact, and a summary that
cannot be had."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import trio

from runtime.config import load_config
from runtime.context.summary import REMOVED_PREFIX, SUMMARY_PREFIX
from runtime.engine import Engine
from runtime.model import Response, TextPart, ToolResultPart
from runtime.testing import RecordedRequest, faults, open_fake_server
from scripts.local_model import free_port

from .sessions import FINAL, TOOLS, Agent, config, is_summary, records

ENV = {"TEST_TRACE_KEY": "context-wiring-test"}


class Down:
    """Where a server will listen once it is up."""

    def __init__(self, port: int) -> None:
        self.port = port

    def base_url(self, kind: str) -> str:
        return f"http://127.0.0.1:{self.port}/v1"


def no_numbers_refusal() -> Any:
    """A gateway's context-length error that says neither size nor window."""
    return faults.custom(400, {"error": {"message": "context length exceeded",
                                         "type": "invalid_request_error",
                                         "code": "context_length_exceeded"}})


async def test_props_of_a_server_that_comes_up_after_the_engine(write_config: Any,
                                                                 tmp_path: Path) -> None:
    """kind: local: /props cannot be read while the server is down (not an error); the
    session that starts once it is up reads it, and fits every request to it."""
    port = free_port()
    agent = Agent(8)
    cfg = config(Down(port), "local", "openai-chat", tmp_path, window=None)
    loaded = load_config(write_config(cfg), environ=ENV)
    async with Engine.open(loaded, environ=ENV, tools=TOOLS) as engine:
        source = engine.runtimes["main"].window
        assert source is not None and source.props_state == "pending"
        assert source.props_error and "connection" in source.props_error
        async with open_fake_server(agent.script(), port=port, max_context_tokens=4_000,
                                    context_dialect="llama.cpp") as server:
            session = await engine.start(loaded.task)
            result = await session.result()
    assert result.exit_code == 0 and result.answer == FINAL
    assert source.props_state == "read" and source.props == 4_000
    assert server.props_served == 1 and server.context_refused == 0
    compactions = records(session.run_dir, "context_compacted")
    assert compactions and {c["window"] for c in compactions} == {4_000}
    assert not [w for w in records(session.run_dir, "warning")
                if w["code"] == "context_window"]


async def test_unknown_window_is_said_once_and_off_fails_with_a_hint(
        write_config: Any, run_agent: Any, tmp_path: Path) -> None:
    """An unknown window is one warning, however many turns; with strategy: off a refusal
    is a provider failure whose hint says how to turn compaction on."""
    agent = Agent(40)
    async with open_fake_server(agent.script(), max_context_tokens=4_000) as server:
        cfg = config(server, "openai-chat", "openai-chat", tmp_path, strategy="off",
                     window=None)
        run = await run_agent(write_config(cfg), extra_tools=TOOLS)
    assert run.outcome.status == "provider_failed" and run.outcome.exit_code == 3
    assert "context.strategy is off" in run.err
    said = [w for w in run.events("warning") if w["code"] == "context_window"]
    assert len(said) == 1 and "providers.main.context_window" in said[0]["message"]
    assert server.context_refused == 1  # not asked again: off means no second try
    assert not run.events("context_compacted")


async def test_a_second_refusal_is_a_provider_failure_with_a_hint(
        write_config: Any, run_agent: Any, tmp_path: Path) -> None:
    """A refusal that states no figures still compacts harder and asks once more; a second
    refusal ends the turn: provider_failed, the hint names the context keys."""
    agent = Agent(40)
    script = [agent, agent, agent, no_numbers_refusal(), no_numbers_refusal(), agent]
    async with open_fake_server(script) as server:
        cfg = config(server, "anthropic", "anthropic", tmp_path, window=None)
        run = await run_agent(write_config(cfg), extra_tools=TOOLS)
    assert run.outcome.status == "provider_failed", run.err
    assert "still refused after compacting harder" in (run.outcome.message or "")
    errors = run.events("provider_error")
    assert [e["kind"] for e in errors] == ["context_length", "context_length"]
    assert [e["turn"] for e in errors] == [4, 4]
    harder = run.events("context_compacted")
    assert len(harder) == 1 and harder[0]["harder"] and harder[0]["turn"] == 4
    assert harder[0]["elided"] == ["call_1", "call_2"]  # all but the kept turn
    assert "context.keep_recent_turns" in run.err
    assert server.script.remaining  # no third request was sent


async def test_failover_uses_the_new_providers_window(write_config: Any, run_agent: Any,
                                                      tmp_path: Path) -> None:
    """The main provider has a large window and fails after three turns; the fallback's
    4,000-token window is the one the next request is fitted to."""
    agent = Agent(6)

    def main_script(req: RecordedRequest) -> Any:
        return agent(req) if agent.turn < 3 else faults.server_error()

    async with open_fake_server([main_script] * 20) as big, \
            open_fake_server(agent.script(), max_context_tokens=4_000) as small:
        cfg = config(big, "openai-chat", "openai-chat", tmp_path, window=200_000)
        backup = dict(cfg["providers"]["main"], base_url=small.base_url("openai-chat"),
                      context_window=4_000)
        cfg["providers"]["backup"] = backup
        cfg["fallbacks"] = ["backup"]
        run = await run_agent(write_config(cfg), extra_tools=TOOLS)
    assert run.outcome.exit_code == 0, run.err
    assert small.context_refused == 0 and small.request_count >= 3
    compactions = run.events("context_compacted")
    assert compactions and {(c["provider"], c["window"]) for c in compactions} == {
        ("backup", 4_000)}
    assert max(small.context_counts) <= 4_000 < sum(len(json.dumps(r.body))
                                                    for r in big.requests[-1:]) // 4


async def answered(session: Any, since: int = 0) -> int:
    """Wait for the next answer (a turn that ends without calls); its record's position."""
    async for ev in session.events(since):
        if ev.type == "turn_end" and ev.finish != "tool_calls":
            return int(ev.seq)
    raise AssertionError("the session ended without an answer")


async def test_compact_now_between_turns(write_config: Any, tmp_path: Path) -> None:
    """Session.compact (the interactive /compact) elides everything outside the kept turns
    now, or summarizes with the strategy given, and says what it did; the next request
    carries the compacted conversation."""
    agent = Agent(4)
    answers = [Response("a", "fake-model", [TextPart("ok")], "stop", "stop")]
    async with open_fake_server([*agent.script(0), *answers * 5]) as server:
        cfg = config(server, "openai-chat", "openai-chat", tmp_path, window=100_000, keep=1)
        loaded = load_config(write_config(cfg), environ=ENV)
        async with Engine.open(loaded, environ=ENV, tools=TOOLS) as engine:
            session = await engine.start(loaded.task, keep_open=True)
            with trio.fail_after(30):
                seen = await answered(session)
            done = await session.compact()
            assert done.changed and done.elided == 3 and done.tokens_after < done.tokens_before
            assert "3 tool result(s) elided" in done.message
            again = await session.compact()
            assert not again.changed and again.message.startswith("nothing to compact")
            n = server.request_count
            summarized = await session.compact("summarize")
            assert summarized.changed and summarized.summarized_turns == (1, 3)
            assert is_summary(server.requests[n])
            await session.send("And now?")
            with trio.fail_after(30):
                await answered(session, seen)
            session.cancel()
            await session.result()
    sent = server.requests[n + 1].canonical.messages
    assert sent[1].text.startswith(SUMMARY_PREFIX)
    assert not [p for m in sent for p in m.parts if isinstance(p, ToolResultPart)]
    recs = records(session.run_dir, "context_compacted")
    assert [r["reason"] for r in recs] == ["requested", "requested"]
    assert recs[1]["request_id"] and recs[1]["summarized_turns"] == [1, 3]


async def test_a_summary_that_cannot_be_had_falls_back_to_removing_turns(
        write_config: Any, run_agent: Any, tmp_path: Path) -> None:
    """The summary request fails (the provider errs on it): a warning, and the oldest
    turns are removed with a note instead; the session goes on."""
    agent = Agent(40)

    def brain(req: RecordedRequest) -> Any:
        return faults.custom(400, {"error": {"message": "bad summary request",
                                             "type": "invalid_request_error"}}) \
            if is_summary(req) else agent(req)

    async with open_fake_server([brain] * 200, max_context_tokens=4_000) as server:
        cfg = config(server, "openai-chat", "openai-chat", tmp_path, strategy="summarize")
        run = await run_agent(write_config(cfg), extra_tools=TOOLS)
    assert run.outcome.exit_code == 0, run.err
    warned = [w for w in run.events("warning") if w["code"] == "context"]
    assert warned and "summary request failed" in warned[0]["message"]
    removed = [c for c in run.events("context_compacted") if c["summary"]]
    assert removed and all(c["summary"].startswith(REMOVED_PREFIX) for c in removed)
    assert all(c["request_id"] is None for c in removed)
    assert server.context_refused == 0


async def test_a_model_switch_uses_the_new_models_window(write_config: Any,
                                                          tmp_path: Path) -> None:
    """Session.switch to a model of the same entry with a smaller window (from the known
    table): the next request is fitted to that window."""
    agent = Agent(4)  # three 8 KB results: over gpt-4's budget, within the server's window
    async with open_fake_server(agent.script(), max_context_tokens=8_192) as server:
        cfg = config(server, "openai-chat", "openai-chat", tmp_path, window=None,
                     reserve=2_000)
        cfg["providers"]["main"].update(model="gpt-4o", models=["gpt-4o", "gpt-4"])
        loaded = load_config(write_config(cfg), environ=ENV)
        async with Engine.open(loaded, environ=ENV, tools=TOOLS) as engine:
            session = await engine.start(loaded.task, keep_open=True)
            with trio.fail_after(30):
                seen = await answered(session)
                assert not records(session.run_dir, "context_compacted")  # 128k: no need
                await session.switch(model="gpt-4")
                await session.send("Read them again.")
                await answered(session, seen)
            session.cancel()
            await session.result()
    compactions = records(session.run_dir, "context_compacted")
    assert compactions and {c["window"] for c in compactions} == {8_192}
    assert server.context_refused == 0
    assert server.requests[-1].body["model"] == "gpt-4"
