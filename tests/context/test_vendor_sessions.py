"""strategy: provider in whole sessions over loopback: the vendor's context management is
asked for (options and beta headers), the compaction item it returns goes back as the
vendor requires, is kept in the journal without its opaque payload (that is in
reasoning.enc) and goes back whole after a resume; elsewhere the conductor summarizes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from runtime.context.vendor import ANTHROPIC_COMPACTION_BETA, ANTHROPIC_CONTEXT_BETA
from runtime.crypto import key_from_text
from runtime.model import BuiltinToolPart, Response, TextPart, ToolCallPart
from runtime.session.traces import read_traces
from runtime.testing import RecordedRequest, open_fake_server

from .sessions import TOOLS, Agent, config, is_summary

ANTHROPIC_COMPACTION = {"type": "compaction", "content": "Summary: chunks 1-2 were read.",
                        "encrypted_content": "EncOpaque=="}
RESPONSES_COMPACTION = {"type": "compaction", "id": "cmp_1",
                        "encrypted_content": "gAAAAOpaque"}
CASES = {"anthropic": ("claude-opus-4-6", ANTHROPIC_COMPACTION),
         "openai-responses": ("gpt-5", RESPONSES_COMPACTION)}


class Vendor:
    """A vendor with context management: at turn 2 it compacts (a compaction item before
    its call), then answers after turn 3; every request is kept for the test to read."""

    def __init__(self, protocol: str) -> None:
        self.protocol = protocol
        self.model, self.item = CASES[protocol]
        self.turn = 0
        self.seen: list[RecordedRequest] = []

    def __call__(self, req: RecordedRequest) -> Response:
        self.seen.append(req)
        self.turn += 1
        parts: list[Any] = []
        if self.turn == 2:
            parts.append(BuiltinToolPart("compaction", id=self.item.get("id"),
                                         protocol=self.protocol, raw=dict(self.item)))
        if self.turn >= 3:
            return Response(f"r{self.turn}", self.model, [TextPart("Done.")], "stop", "stop")
        parts += [TextPart(f"Reading chunk {self.turn}."), ToolCallPart(
            f"call_{self.turn}", "read_chunk", json.dumps({"n": self.turn}))]
        return Response(f"r{self.turn}", self.model, parts, "tool_calls", "tool_calls")


def sent_compaction(protocol: str, req: RecordedRequest) -> dict[str, Any]:
    """The compaction item as the request sent it back."""
    if protocol == "anthropic":
        blocks = [b for m in req.body["messages"] if m["role"] == "assistant"
                  for b in m["content"] if isinstance(b, dict) and b["type"] == "compaction"]
    else:
        blocks = [i for i in req.body["input"] if i.get("type") == "compaction"]
    assert len(blocks) == 1, req.body
    return dict(blocks[0])


@pytest.mark.parametrize("protocol", ["anthropic", "openai-responses"])
async def test_vendor_compaction_round_trip_and_resume(protocol: str, write_config: Any,
                                                       run_agent: Any, tmp_path: Path) -> None:
    """The options and betas are sent; the compaction item goes back verbatim; the journal
    holds it without its payload, reasoning.enc with it; a resumed run sends it whole."""
    vendor = Vendor(protocol)
    async with open_fake_server([vendor] * 10) as server:
        cfg = config(server, protocol, protocol, tmp_path, strategy="provider", window=None,
                     reserve=4_096, keep=2)
        cfg["providers"]["main"]["model"] = vendor.model
        cfg["reasoning"] = {"key_env": "TEST_TRACE_KEY"}
        path = write_config(cfg)
        run = await run_agent(path, extra_tools=TOOLS)
        assert run.outcome.exit_code == 0, run.err
        first = vendor.seen[0]
        if protocol == "anthropic":
            edits = first.body["context_management"]["edits"]
            assert [e["type"] for e in edits] == ["compact_20260112"]
            betas = first.headers["anthropic-beta"].split(",")
            assert betas == [ANTHROPIC_CONTEXT_BETA, ANTHROPIC_COMPACTION_BETA]
        else:
            management = first.body["context_management"]
            assert management[0]["type"] == "compaction"
            assert management[0]["compact_threshold"] == int((400_000 - 4_096) * 0.8)
        expected = dict(vendor.item)
        if protocol == "openai-responses":
            expected = {"type": "compaction", "id": "cmp_1", "encrypted_content": "gAAAAOpaque"}
        assert sent_compaction(protocol, vendor.seen[2]) == expected
        # the journal: the item's readable part; reasoning.enc: its payload
        parts = [p for a in run.events("assistant") for p in a["parts"]
                 if p["type"] == "builtin_tool"]
        assert len(parts) == 1 and parts[0]["raw"]["encrypted_content"] == ""
        assert "Opaque" not in (run.run_dir / "transcript.jsonl").read_text()
        frames = list(read_traces(run.run_dir / "reasoning.enc",
                                  key_from_text("unit-test-trace-key"), run.run_dir.name))
        assert [f["builtin"]["raw"] for f in frames if "builtin" in f] == [vendor.item]
        # a resumed run sends the compaction item whole
        vendor.turn = 2
        again = await run_agent(path, resume=run.run_dir.name, task="Once more.",
                                extra_tools=TOOLS)
    assert again.outcome.exit_code == 0, again.err
    assert sent_compaction(protocol, vendor.seen[3]) == expected


async def test_provider_strategy_summarizes_where_the_vendor_has_no_compaction(
        write_config: Any, run_agent: Any, tmp_path: Path) -> None:
    """strategy: provider on Chat Completions: no vendor options; the conductor summarizes."""
    agent = Agent(30)
    async with open_fake_server(agent.script(), max_context_tokens=4_000) as server:
        cfg = config(server, "openai-chat", "openai-chat", tmp_path, strategy="provider")
        run = await run_agent(write_config(cfg), extra_tools=TOOLS)
    assert run.outcome.exit_code == 0, run.err
    assert all("context_management" not in r.body for r in server.requests)
    summaries = [c for c in run.events("context_compacted") if c["request_id"]]
    assert summaries and {c["strategy"] for c in summaries} == {"summarize"}
    assert agent.summaries == len(summaries) == sum(map(is_summary, server.requests))
    assert server.context_refused == 0


def test_the_betas_cover_every_model_of_the_entry(tmp_path: Path) -> None:
    """The beta headers are fixed when the entry's client is built: they cover the models
    of its allowlist, and nothing is added for other strategies."""
    from runtime.config import load_config
    from runtime.context.entries import vendor_params, window_source, with_betas

    cfg = {"provider": "main", "providers": {"main": {
        "kind": "anthropic", "model": "claude-sonnet-4-5", "api_key": "sk-ant-test-1234",
        "models": ["claude-sonnet-4-5", "claude-opus-4-6"],
        "headers": {"anthropic-beta": "x-1"}}},
        "context": {"strategy": "provider"}}
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump(cfg))
    loaded = load_config(path, environ={})
    pc = loaded.main
    policy = loaded.context.policy()
    window = window_source("main", pc, None)
    headers = with_betas(pc, window, policy).headers
    assert headers["anthropic-beta"] == (f"x-1,{ANTHROPIC_CONTEXT_BETA},"
                                         f"{ANTHROPIC_COMPACTION_BETA}")
    sonnet = vendor_params(pc, "claude-sonnet-4-5", window, policy).extra
    assert [e["type"] for e in sonnet["context_management"]["edits"]] == [
        "clear_tool_uses_20250919"]
    elide = loaded.context.policy().__class__("elide")
    assert with_betas(pc, window, elide) is pc
    assert vendor_params(pc, "claude-opus-4-6", window, elide) is pc.params
