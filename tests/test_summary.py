"""summary.json is exactly what its transcript says (recomputed here from the lines)."""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest
import trio
import yaml

from runtime.accounting import percentile
from runtime.model import Response, TextPart, ToolCallPart, Usage
from runtime.testing import faults, open_fake_server


def recompute(transcript: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = defaultdict(lambda: {
        "attempts": 0, "retries": 0, "failures": Counter(), "tokens": Counter(), "cost": 0.0,
        "hits": 0, "misses": 0, "ttft": [], "latency": [], "turns": set()})
    for e in transcript:
        p = e.get("provider")
        if e["type"] == "request":
            acc = out[p]
            acc["attempts"] += 1
            acc["retries"] += e["attempt"] > 1
            acc["turns"].add(e["turn"])
        elif e["type"] == "provider_error":
            out[p]["failures"][e["kind"]] += 1
        elif e["type"] == "usage" and not e.get("cached"):
            for k in ("input", "output", "cache_read", "cache_write", "reasoning"):
                out[p]["tokens"][k] += e[f"{k}_tokens"]
            out[p]["cost"] += e["cost_usd"] or 0.0
        elif e["type"] == "cache":
            out[p]["hits" if e["outcome"] == "hit" else "misses"] += e["outcome"] in ("hit", "miss")
        elif e["type"] == "assistant" and not e.get("cached"):
            out[p]["latency"].append(e["duration"])
            if e["ttft"] is not None:
                out[p]["ttft"].append(e["ttft"])
    return out


async def test_summary_matches_its_transcript(tmp_path: Path, run_agent) -> None:
    """Attempts, retries, failures by kind, tokens, cost, percentiles: summary == transcript."""
    turns = [Response(f"r{i}", "gpt-4o-mini", [TextPart(f"t{i}"), ToolCallPart(
        f"c{i}", "list_dir", "{}")], "tool_calls", "tool_calls", Usage(1000 * i, 50, 200))
        for i in range(1, 4)]
    turns.append(Response("r4", "gpt-4o-mini", [TextPart("done")], "stop", "stop", Usage(9000, 7)))
    script = [faults.server_error(), turns[0], faults.rate_limited(retry_after=0), turns[1],
              faults.cut_mid_stream(then=turns[2]), turns[2], turns[3]]
    with trio.fail_after(30):
        async with open_fake_server(script) as server:
            cfg = {"provider": "main", "task": "go",
                   "providers": {"main": {"kind": "openai-chat", "model": "gpt-4o-mini",
                                          "api_key": "k-1234", "base_url":
                                          server.base_url("openai-chat"),
                                          "retry": {"base_delay": 0.01}}},
                   "tools": {"builtin": ["list_dir"], "workspace": str(tmp_path / "ws")},
                   "logging": {"dir": str(tmp_path / "logs")},
                   "reasoning": {"key_env": "TEST_TRACE_KEY"}}
            path = tmp_path / "agent.yaml"
            path.write_text(yaml.safe_dump(cfg))
            run = await run_agent(path)
    assert run.outcome.exit_code == 0, run.err
    want = recompute(run.transcript)["main"]
    got = run.summary["providers"]["main"]
    assert got["attempts"] == want["attempts"] == 7
    assert got["retries"] == want["retries"] == 3
    assert got["requests"] == len(want["turns"]) == 4
    assert got["failures"] == dict(want["failures"]) == {
        "server": 1, "rate_limited": 1, "stream_interrupted": 1}
    assert got["tokens"]["input"] == want["tokens"]["input"] == 1000 + 2000 + 3000 + 9000
    for k in ("output", "cache_read", "cache_write", "reasoning"):
        assert got["tokens"][k] == want["tokens"][k]
    assert abs(got["cost_usd"] - want["cost"]) < 1e-9 and got["cost_usd"] > 0
    # the transcript rounds durations to the microsecond
    close = pytest.approx
    assert got["ttft_s"]["p50"] == close(percentile(want["ttft"], 50), abs=2e-6)
    assert got["ttft_s"]["p95"] == close(percentile(want["ttft"], 95), abs=2e-6)
    assert got["latency_s"]["p95"] == close(percentile(want["latency"], 95), abs=2e-6)
    assert got["cache"] == {"hits": want["hits"], "misses": want["misses"]}
    totals = run.summary["totals"]
    assert totals["input_tokens"] == got["tokens"]["input"]
    assert run.summary["turns"] == max(e["turn"] for e in run.transcript)
    assert run.summary["tools"]["calls"] == len(run.events("tool_result"))


def test_percentile_interpolates() -> None:
    """Linear interpolation between closest ranks; None for no data."""
    assert percentile([], 50) is None
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([0.0, 10.0], 95) == 9.5
