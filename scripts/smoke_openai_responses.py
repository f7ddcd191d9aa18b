"""Smoke checks against the OpenAI Responses API (provider kind ``openai-responses``).

    OPENAI_API_KEY=... python scripts/smoke_openai_responses.py [--base-url URL] [--model M]
                                                              [--record DIR]

Checks, with a reasoning model (default ``gpt-5-mini``, reasoning effort low):
``stream`` (a streamed answer), ``tool`` (a forced ``get_time`` call, its result sent back,
a final answer) and ``reasoning`` (the same two turns with ``store: false``: turn 1 must
return a reasoning item with ``encrypted_content``, and the second request, as sent, must
carry that item back byte for byte). Prints one table row per check; exits 1 when a check
failed; prints one SKIP line and exits 0 when OPENAI_API_KEY is not set. ``--record DIR``
writes each check's exchanges as a recording file, keys removed.
"""

from __future__ import annotations

import sys

from _smoke import SmokeRun, SmokeSpec, check_stream, check_tool, main, tool_round_trip

from runtime.model import Params
from runtime.wire.openai_responses import ENCRYPTED_REASONING


async def check_reasoning(run: SmokeRun) -> str:
    """Two turns with ``store: false``: the encrypted reasoning of turn 1 goes back."""
    resp1, _ = await tool_round_trip(run, store=False, first={"tool_choice": "required"})
    first, second = (ex.request_json for ex in run.transport.exchanges[-2:])
    run.require(first.get("store") is False and ENCRYPTED_REASONING in first.get("include", []),
                f"turn 1 did not ask for encrypted reasoning: store={first.get('store')!r}, "
                f"include={first.get('include')!r}")
    encrypted = [p.encrypted for p in resp1.reasoning if p.encrypted]
    run.require(encrypted, f"turn 1 returned no encrypted reasoning ({len(resp1.reasoning)} "
                           "reasoning item(s))")
    sent = [i.get("encrypted_content") for i in second.get("input", [])
            if isinstance(i, dict) and i.get("type") == "reasoning"]
    run.require(sent == encrypted, f"the second request carried {len(sent)} encrypted item(s), "
                                   f"expected the {len(encrypted)} of turn 1 unchanged")
    run.require(second.get("store") is False, "the second request is not store: false")
    return f"{len(encrypted)} encrypted item(s) ({sum(map(len, encrypted))} chars) passed back"


SPEC = SmokeSpec(
    kind="openai-responses", model="gpt-5-mini",
    checks=[("stream", check_stream), ("tool", check_tool), ("reasoning", check_reasoning)],
    params=Params(reasoning_effort="low"), provider="openai",
)

if __name__ == "__main__":
    sys.exit(main(SPEC))
