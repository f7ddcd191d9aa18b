"""Smoke checks against a local llama.cpp ``llama-server`` (provider kind ``local``).

    python scripts/smoke_local.py [--base-url http://127.0.0.1:8080/v1] [--model M]
                                  [--record DIR]

Start the server first (see ``../shared/local-model/README.md``). No key is needed: the
script prints one SKIP line and exits 0 when no server answers at the base URL.

Checks: ``stream`` (a streamed answer) and ``tool`` (a ``get_time`` call, its result sent
back, the next turn completes). The small base model needs help to call tools: temperature
0, a seed, one example exchange in the history, a system prompt that mentions
``<tool_call>`` and the stop string ``</tool_call>``. Only the shape is checked (a call
exists, its arguments match the schema), never the wording.
"""

from __future__ import annotations

import sys

from _smoke import GET_TIME, SmokeRun, SmokeSpec, check_stream, main, tool_round_trip

from runtime.model import Message, Params, TextPart, ToolCallPart, ToolResultPart

SYSTEM = "You are an agent. When a tool is relevant, call it with <tool_call>."
EXAMPLE = [
    Message.user("What time is it?"),
    Message("assistant", [ToolCallPart("call_example", GET_TIME.name, '{"timezone": "UTC"}')]),
    Message("tool", [ToolResultPart("call_example", "12:00", name=GET_TIME.name)]),
    Message("assistant", [TextPart("It is 12:00 UTC.")]),
]


async def check_tool(run: SmokeRun) -> str:
    """A tool round trip with the example exchange; the model's last turn need not be text."""
    resp1, resp2 = await tool_round_trip(
        run, history=EXAMPLE, system=SYSTEM, prompt="What time is it in Tokyo?",
        params={"stop": ["</tool_call>"]}, final_text=False)
    return f"{len(resp1.tool_calls)} call(s), then finish {resp2.finish_reason}"


SPEC = SmokeSpec(
    kind="local", model="local",
    checks=[("stream", check_stream), ("tool", check_tool)],
    params=Params(temperature=0, seed=1, max_tokens=60), provider="local",
)

if __name__ == "__main__":
    sys.exit(main(SPEC))
