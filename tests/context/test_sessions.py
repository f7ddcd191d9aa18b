"""Whole sessions against the fake provider with a 4,000-token window, over loopback: the
conductor keeps every request within the window, with each vendor's real refusal when it
does not know the window yet."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest
import trio
import yaml

from runtime.context import ELIDED_PREFIX, SUMMARY_PREFIX
from runtime.context.summary import REMOVED_PREFIX
from runtime.model import Message, TextPart, ToolResultPart
from runtime.session.handle import read_journal
from runtime.session.restore import fold
from runtime.testing import open_fake_server

from .sessions import CASES, FINAL, SUMMARY_TEXT, TOOLS, Agent, config, is_summary

WINDOW = 4_000
TURNS = 40


def user_texts(messages: list[Message]) -> list[str]:
    """The text parts of the plain user messages, in order."""
    return [p.text for m in messages if m.role == "user" for p in m.parts
            if isinstance(p, TextPart)]


async def run_case(write_config: Any, run_agent: Any, tmp_path: Path, protocol: str, kind: str,
                   dialect: str, *, strategy: str, known: bool) -> tuple[Any, Any, Agent]:
    agent = Agent(TURNS)
    async with open_fake_server(agent.script(), max_context_tokens=WINDOW,
                                context_dialect=dialect) as server:  # type: ignore[arg-type]
        # known: the window is configured (llama.cpp: read from /props); else the first
        # request over it is refused and the refusal says what it is
        window = WINDOW if known and kind != "local" else None
        server.serve_props = known
        cfg = config(server, kind, protocol, tmp_path, strategy=strategy, window=window)
        with trio.fail_after(120):
            run = await run_agent(write_config(cfg), extra_tools=TOOLS)
    return run, server, agent


@pytest.mark.parametrize("known", [True, False], ids=["window-known", "window-refused"])
@pytest.mark.parametrize(("protocol", "kind", "dialect"), CASES,
                         ids=["openai-chat", "openai-responses", "anthropic", "llama.cpp"])
async def test_forty_turns_of_8kb_results_in_a_4000_token_window(
        write_config: Any, run_agent: Any, tmp_path: Path, protocol: str, kind: str,
        dialect: str, known: bool) -> None:
    """40 turns whose results are 8 KB each fit a 4,000-token window: exit 0, compactions
    recorded, no request refused twice in a row (none at all when the window is known)."""
    run, server, agent = await run_case(write_config, run_agent, tmp_path, protocol, kind,
                                        dialect, strategy="elide", known=known)
    assert run.outcome.exit_code == 0, run.err[-3000:]
    assert run.outcome.answer == FINAL and agent.turn == TURNS
    assert [r["turn"] for r in run.events("assistant")] == list(range(1, TURNS + 1))
    compactions = run.events("context_compacted")
    assert compactions and all(c["provider"] == "main" for c in compactions)
    assert all(c["tokens_after"] <= c["budget"] < c["tokens_before"] or c["harder"]
               for c in compactions)
    assert server.max_refused_in_a_row <= 1
    if known:
        assert server.context_refused == 0
        assert not [w for w in run.events("warning") if w["code"] == "context_window"]
    else:
        # the refusal taught the window: one refusal, then every request fitted
        assert server.context_refused == 1 and server.max_refused_in_a_row == 1
        assert any(c["harder"] for c in compactions)
        errors = run.events("provider_error")
        assert [e["kind"] for e in errors] == ["context_length"]
    assert all(n <= WINDOW for n in server.context_counts[-30:])
    # the last request: the kept turn whole, earlier results elided or removed with a note
    last = server.requests[-1].canonical.messages
    results = [p for m in last for p in m.parts if isinstance(p, ToolResultPart)]
    assert isinstance(results[-1].content, str) and len(results[-1].content) == 8_192
    assert all(str(p.content).startswith(ELIDED_PREFIX) for p in results[:-1])
    texts = user_texts(last)  # (Anthropic merges the task and the note in one message)
    assert texts[0] == "Read the big file chunk by chunk."  # the task is kept
    assert texts[1].startswith(REMOVED_PREFIX)
    if dialect == "llama.cpp" and known:
        assert server.props_served >= 1


@pytest.mark.parametrize("known", [True, False], ids=["window-known", "window-refused"])
@pytest.mark.parametrize(("protocol", "kind", "dialect"), CASES,
                         ids=["openai-chat", "openai-responses", "anthropic", "llama.cpp"])
async def test_forty_turns_with_summaries(
        write_config: Any, run_agent: Any, tmp_path: Path, protocol: str, kind: str,
        dialect: str, known: bool) -> None:
    """strategy: summarize: the same session, older turns replaced by the model's summary;
    each summary request is in the transcript (request, usage with its cost) and counted."""
    run, server, agent = await run_case(write_config, run_agent, tmp_path, protocol, kind,
                                        dialect, strategy="summarize", known=known)
    assert run.outcome.exit_code == 0, run.err[-3000:]
    assert run.outcome.answer == FINAL
    assert server.max_refused_in_a_row <= 1
    assert server.context_refused == (0 if known else 1)
    summaries = [c for c in run.events("context_compacted") if c["request_id"]]
    assert summaries and agent.summaries == len(summaries)
    for c in summaries:
        assert c["strategy"] == "summarize" and c["summary"].startswith(SUMMARY_PREFIX)
        assert SUMMARY_TEXT in c["summary"] and c["summarized_turns"][0] == 1
    requests = {r["request_id"]: r for r in run.events("request")}
    usage = {u["request_id"]: u for u in run.events("usage")}
    for c in summaries:
        assert c["request_id"] in requests  # the summary request is recorded
        u = usage[c["request_id"]]
        assert u["input_tokens"] > 0 and u["cost_usd"] > 0
    # the summary requests' cost is in the totals, and no assistant record was written
    total = sum(u["cost_usd"] for u in run.events("usage"))
    assert run.summary["totals"]["cost_usd"] == pytest.approx(total)
    assert len(run.events("assistant")) == TURNS
    assert sum(1 for r in server.requests if is_summary(r)) == len(summaries)
    texts = user_texts(server.requests[-1].canonical.messages)
    assert texts[1].startswith(SUMMARY_PREFIX)


async def test_resume_sends_the_compacted_conversation(write_config: Any, run_agent: Any,
                                                       tmp_path: Path) -> None:
    """A resumed run rebuilds the conversation exactly as it was compacted (the journal's
    records replayed equal the live conversation) and sends that, not the original."""
    for strategy in ("elide", "summarize"):
        base = tmp_path / strategy
        base.mkdir()
        agent = Agent(100)
        async with open_fake_server(agent.script(), max_context_tokens=WINDOW) as server:
            cfg = config(server, "anthropic", "anthropic", base, strategy=strategy,
                         max_turns=24)
            cfg["reasoning"] = {"key_env": "TEST_TRACE_KEY"}
            path = base / "agent.yaml"
            path.write_text(yaml.safe_dump(cfg))
            first = await run_agent(path, extra_tools=TOOLS)
            assert first.outcome.status == "limit", first.err
            kinds = {"summarize" if c["request_id"] else "removed" if c["summary"] else "elided"
                     for c in first.events("context_compacted")}
            assert kinds >= ({"elided", "removed"} if strategy == "elide" else {"summarize"})
            # the journal replayed is the live conversation, exactly
            live = msgspec.json.decode((first.run_dir / "state.json").read_bytes())["messages"]
            folded = fold(rec for rec, _ in read_journal(first.run_dir))
            assert folded.messages == msgspec.convert(live, list[Message])
            n = len(server.requests)
            cfg["limits"]["max_turns"] = 26
            path.write_text(yaml.safe_dump(cfg))
            second = await run_agent(path, resume=first.run_dir.name, task="Go on.",
                                     extra_tools=TOOLS)
        assert second.outcome.status == "limit", second.err
        resumed = next(r for r in server.requests[n:] if not is_summary(r)).canonical.messages
        texts = user_texts(resumed)
        assert texts[0] == "Read the big file chunk by chunk." and texts[-1] == "Go on."
        # what the live session had compacted is sent compacted
        marked = {p["call_id"]: p["content"] for m in live for p in m["parts"]
                  if p["type"] == "tool_result" and p["content"].startswith(ELIDED_PREFIX)}
        sent = {p.call_id: p.content for m in resumed for p in m.parts
                if isinstance(p, ToolResultPart)}
        assert marked and all(sent.get(c, marked[c]) == marked[c] for c in marked)
        full = [c for c, text in sent.items() if not str(text).startswith(ELIDED_PREFIX)]
        assert len(full) <= 1 and len(sent) < 24
        prefix = REMOVED_PREFIX if strategy == "elide" else SUMMARY_PREFIX
        assert texts[1].startswith(prefix)
