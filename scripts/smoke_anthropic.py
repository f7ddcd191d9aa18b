"""Smoke checks against the Anthropic Messages API (provider kind ``anthropic``).

    ANTHROPIC_API_KEY=... python scripts/smoke_anthropic.py [--base-url URL] [--model M]
                                                          [--record DIR]

Checks: ``stream`` (a streamed answer), ``tool`` (a forced ``get_time`` call, its result
sent back, a final answer) and ``thinking`` (extended thinking with ``thinking_budget`` on
both turns: turn 1 must return a signed thinking block and a tool call; the second request,
as sent, must carry that thinking block with its signature unchanged, before the
``tool_use``). Prints one table row per check; exits 1 when a check failed; prints one SKIP
line and exits 0 when ANTHROPIC_API_KEY is not set. ``--record DIR`` writes each check's
exchanges as a recording file, keys removed.
"""

from __future__ import annotations

import sys
from typing import Any

from _smoke import SmokeRun, SmokeSpec, check_stream, check_tool, main, tool_round_trip

from runtime.model import Params

THINKING = {"thinking_budget": 1024, "max_tokens": 2048}


async def check_thinking(run: SmokeRun) -> str:
    """Extended thinking and a tool call across two turns: the signature goes back."""
    resp1, resp2 = await tool_round_trip(run, params=THINKING)
    signed = [p for p in resp1.reasoning if p.kind == "thinking" and p.signature]
    run.require(signed, f"turn 1 returned no signed thinking block "
                        f"({len(resp1.reasoning)} reasoning part(s))")
    second = run.transport.exchanges[-1].request_json
    run.require(second.get("thinking", {}).get("budget_tokens") == THINKING["thinking_budget"],
                "the second request does not enable thinking")
    blocks: list[dict[str, Any]] = []
    for m in second.get("messages", []):
        if m.get("role") == "assistant" and isinstance(m.get("content"), list):
            blocks = m["content"]
    kinds = [b.get("type") for b in blocks]
    sent = [b.get("signature") for b in blocks if b.get("type") == "thinking"]
    run.require(sent == [p.signature for p in signed],
                f"the second request carried signatures {len(sent)}, expected {len(signed)} "
                "unchanged")
    run.require("tool_use" in kinds and kinds.index("thinking") < kinds.index("tool_use"),
                f"thinking must come before tool_use in the assistant turn, got {kinds}")
    return f"{len(signed)} signed thinking block(s) passed back, answer {len(resp2.text)} chars"


SPEC = SmokeSpec(
    kind="anthropic", model="claude-haiku-4-5",
    checks=[("stream", check_stream), ("tool", check_tool), ("thinking", check_thinking)],
    params=Params(max_tokens=1024), provider="anthropic",
)

if __name__ == "__main__":
    sys.exit(main(SPEC))
