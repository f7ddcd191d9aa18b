"""Smoke checks against OpenRouter (provider kind ``openrouter``, Chat Completions dialect).

    OPENROUTER_API_KEY=... python scripts/smoke_openrouter.py [--base-url URL] [--model M]
                                                             [--record DIR]

Checks: ``stream`` (a streamed answer) and ``tool`` (a forced ``get_time`` call, its result
sent back, a final answer). Prints one table row per check (ok, time to first token,
tokens in/out, cost, request ids); exits 1 when a check failed, 0 otherwise; prints one
SKIP line and exits 0 when OPENROUTER_API_KEY is not set. ``--record DIR`` writes each
check's exchanges as a recording file under ``DIR/openrouter/``, keys removed.
"""

from __future__ import annotations

import sys

from _smoke import SmokeSpec, check_stream, check_tool, main

from runtime.model import Params

SPEC = SmokeSpec(
    kind="openrouter", model="openai/gpt-4.1-mini",
    checks=[("stream", check_stream), ("tool", check_tool)],
    params=Params(temperature=0, max_tokens=300), provider="openrouter",
)

if __name__ == "__main__":
    sys.exit(main(SPEC))
