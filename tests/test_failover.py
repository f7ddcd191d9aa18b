"""Failover between providers over loopback HTTP, reasoning-aware, and budget arithmetic."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trio
import yaml

from runtime.model import ReasoningPart, Response, TextPart, ToolCallPart, Usage
from runtime.pricing import Price, PriceTable
from runtime.testing import faults, open_fake_server
from tests.recordings import canonical_usage, interactions


def reasoning(protocol: str) -> ReasoningPart:
    if protocol == "anthropic":
        return ReasoningPart(text="let me think", kind="thinking", signature="FOREIGN-SIG")
    return ReasoningPart(text="", kind="reasoning", id="rs_foreign", encrypted="FOREIGN-ENC")


def first_turn(protocol: str) -> Response:
    return Response("r1", "m", [reasoning(protocol),
                                ToolCallPart("call_1", "list_dir", '{"path": "."}', "fc_1")],
                    "tool_calls", "tool_calls", Usage(10, 5))


@pytest.mark.parametrize(("main", "backup"), [("anthropic", "openai-chat"),
                                              ("openai-responses", "anthropic")])
async def test_failover_never_sends_foreign_reasoning(main: str, backup: str, tmp_path: Path,
                                                      run_agent) -> None:
    """The main provider answers turn 1 with opaque reasoning, then fails for good (529s);
    the fallback finishes the session and its requests carry no foreign signature or
    encrypted item, while the tool call and its result do go over."""
    done = Response("r2", "m", [TextPart("finished on the backup")], "stop", "stop", Usage(20, 4))
    with trio.fail_after(30):
        async with open_fake_server([first_turn(main)] + [faults.overloaded()] * 3) as s1, \
                open_fake_server([done]) as s2:
            cfg: dict[str, Any] = {
                "provider": "main", "fallbacks": ["backup"],
                "providers": {
                    "main": {"kind": main, "model": "m", "api_key": "key-main-1234",
                             "base_url": s1.base_url(main),
                             "retry": {"max_attempts": 3, "base_delay": 0.01}},
                    "backup": {"kind": backup, "model": "m", "api_key": "key-backup-1234",
                               "base_url": s2.base_url(backup)},
                },
                "task": "list the files",
                "tools": {"builtin": ["list_dir"], "workspace": str(tmp_path / "ws")},
                "logging": {"dir": str(tmp_path / "logs")},
                "reasoning": {"key_env": "TEST_TRACE_KEY"},
            }
            path = tmp_path / "agent.yaml"
            path.write_text(yaml.safe_dump(cfg))
            run = await run_agent(path)
    assert run.outcome.exit_code == 0, run.err
    assert run.out.strip() == "finished on the backup"
    assert len(s1.requests) == 4 and len(s2.requests) == 1
    sent = s2.requests[0].raw.decode()
    assert "FOREIGN-SIG" not in sent and "FOREIGN-ENC" not in sent and "rs_foreign" not in sent
    assert "call_1" in sent  # the tool call and its result were kept
    assert any("failing over" in e["message"] for e in run.events("warning"))
    assert [e["attempt"] for e in run.errors(2)] == [1, 2, 3]
    assert run.summary["providers"]["backup"]["fallbacks_taken"] == 1


def hand_cost(u: dict[str, Any], price: Price, anthropic: bool) -> float:
    """Cost computed by hand from the provider's own numbers."""
    cached = u.get("cached_tokens") or 0
    written = u.get("cache_write_tokens") or 0
    inp = u["input_tokens"] or 0
    if anthropic:  # Anthropic's input_tokens is the uncached part only
        fresh = inp
    else:  # OpenAI-style prompt_tokens include the cached parts (never more than all of it)
        cached = min(cached, inp - written)
        fresh = inp - cached - written
    return (fresh * price.input + cached * (price.cached_input or price.input)
            + written * (price.cache_write or price.input) + u["output_tokens"] * price.output) / 1e6


CACHED = [c for c in interactions() if c[3]["usage"]
          and ((c[3]["usage"].get("cached_tokens") or 0) or (c[3]["usage"].get("cache_write_tokens") or 0))]


@pytest.mark.parametrize("case", CACHED, ids=lambda c: c[0])
def test_cost_with_cached_tokens_matches_hand_computation(case: tuple) -> None:
    """Cached tokens are priced as cached and never twice, for every recording with cache usage."""
    _, rec, _, exp = case
    price = Price(input=3.0, output=15.0, cached_input=0.30, cache_write=3.75)
    table = PriceTable({"probe-model": price})
    usage = canonical_usage("anthropic" if rec["protocol"] == "anthropic" else "openai-chat",
                            exp["usage"])
    assert usage is not None
    cost = table.cost("probe-model", usage)
    assert cost == pytest.approx(hand_cost(exp["usage"], price, rec["protocol"] == "anthropic"))
    # never twice: with every rate at $1/M, the cost is exactly one dollar-per-million per token
    flat = PriceTable({"flat": Price(1.0, 1.0, 1.0, 1.0)}).cost("flat", usage)
    assert flat == pytest.approx((usage.input_tokens + usage.output_tokens) / 1e6)


def test_cached_recordings_exist() -> None:
    """The corpus does carry cache usage (otherwise the test above would test nothing)."""
    assert len(CACHED) >= 4
