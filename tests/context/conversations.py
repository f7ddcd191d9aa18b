"""Generated agent conversations for the context tests: a first task, then turns of an
assistant message (reasoning as each protocol signs it, text, tool calls) and the tool
message answering its calls, with user messages now and then."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

from runtime.model import (
    Message,
    ReasoningPart,
    TextPart,
    ToolCallPart,
    ToolResultPart,
    ToolSpec,
)

PROTOCOLS = ("openai-chat", "openai-responses", "anthropic")
TOOLS = [ToolSpec("read_file", "Read a file.", {"type": "object", "properties": {
    "path": {"type": "string"}}}), ToolSpec("run_shell", "Run a command.")]
SYSTEM = "You are a careful agent working in a repository."


def reasoning(protocol: str, n: int, size: int) -> ReasoningPart:
    """A signed / encrypted reasoning part as ``protocol`` returns it."""
    text = f"thinking step {n} " * size
    if protocol == "anthropic":
        sig = f"sig{n}" * 20
        return ReasoningPart(text, kind="thinking", signature=sig, protocol=protocol,
                             raw={"type": "thinking", "thinking": text, "signature": sig})
    if protocol == "openai-responses":
        enc = f"enc{n}" * 40
        return ReasoningPart(kind="reasoning", id=f"rs_{n}", encrypted=enc,
                             summary=[text[:40]], protocol=protocol,
                             raw={"type": "reasoning", "id": f"rs_{n}", "summary": [
                                 {"type": "summary_text", "text": text[:40]}],
                                 "encrypted_content": enc})
    return ReasoningPart(text, kind="reasoning_content", protocol=protocol)


def turn(protocol: str, n: int, calls: int, result_sizes: list[int], think: bool,
         text: str) -> list[Message]:
    """One turn: the assistant message and, when it calls tools, the tool message."""
    parts: list[Any] = []
    if think:
        parts.append(reasoning(protocol, n, 3 + n % 5))
    if text or not calls:
        parts.append(TextPart(text or f"answer {n}"))
    ids = [f"call_{n}_{i}" for i in range(calls)]
    for i, cid in enumerate(ids):
        name = "read_file" if i % 2 == 0 else "run_shell"
        parts.append(ToolCallPart(cid, name, json.dumps({"path": f"f{n}_{i}.txt"}),
                                  item_id=f"fc_{n}_{i}" if protocol == "openai-responses"
                                  else None))
    out = [Message("assistant", parts)]
    if ids:
        results = [ToolResultPart(cid, ("x" * result_sizes[i % len(result_sizes)]),
                                  name="read_file" if i % 2 == 0 else "run_shell")
                   for i, cid in enumerate(ids)]
        out.append(Message("tool", results))
    return out


@st.composite
def conversations(draw: st.DrawFn, protocol: str | None = None, max_turns: int = 14,
                  min_turns: int = 1
                  ) -> tuple[str, list[Message]]:
    """``(protocol, messages)``: an agent session as the conductor holds it before a
    request (the last message is a tool result or a user message)."""
    proto = protocol or draw(st.sampled_from(PROTOCOLS))
    messages = [Message.user("Fix the failing test in the repository.")]
    for n in range(draw(st.integers(min_turns, max_turns))):
        calls = draw(st.integers(0, 3))
        sizes = draw(st.lists(st.integers(0, 6000), min_size=1, max_size=3))
        think = draw(st.booleans())
        text = draw(st.sampled_from(["", "Let me look.", "Done with this step."]))
        messages += turn(proto, n, calls, sizes, think, text)
        if messages[-1].role == "assistant" or draw(st.integers(0, 6)) == 0:
            messages.append(Message.user(f"Go on with part {n}."))
    return proto, messages
