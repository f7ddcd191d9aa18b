"""The pure pieces of ``strategy: summarize``: what to summarize, the request that asks
the model for the summary, and the summary message that replaces the summarized turns.

The conductor sends ``SummaryPlan.request(model, params)`` like any other request (it is
recorded and its cost counted), then hands the answer's text to
``ContextManager.apply_summary``. The summary becomes a *user* message placed right after
the first task: every protocol accepts a user message there, a user message may follow it
(the codecs merge consecutive user messages where a protocol wants alternation), and no
tool call or signed reasoning block of the kept turns is touched.
"""

from __future__ import annotations

import attrs
import msgspec

from ..model import (
    BuiltinToolPart,
    ImagePart,
    Message,
    Params,
    Request,
    TextPart,
    ToolCallPart,
    ToolResultPart,
)
from .estimate import MESSAGE_OVERHEAD, Counter, _text_tokens
from .ledger import SUMMARY_META

__all__ = ["REMOVED_PREFIX", "SUMMARY_PREFIX", "SUMMARY_SYSTEM", "SummaryPlan", "removed_calls",
           "removed_message", "render", "summary_message"]

SUMMARY_PREFIX = "Summary of the earlier conversation:\n"
REMOVED_PREFIX = "[Removed to fit the context window: "
SUMMARY_SYSTEM = (
    "You compress the earlier part of an agent's working session so that the agent can "
    "continue without it. Write a concise, factual summary: the user's task and "
    "constraints, what has been done and found (file names, commands, results, values), "
    "decisions and their reasons, what failed, and what remains to do. Keep identifiers "
    "exact. Do not call tools; answer with the summary only.")
_INSTRUCTION = ("\n\nSummarize the conversation above (it is the earlier part of a "
                "session that continues) as instructed.")
_RESULT_CHARS = 2_000


def _line(m: Message) -> str:
    out: list[str] = []
    for p in m.parts:
        if isinstance(p, TextPart):
            if p.text:
                out.append(f"{m.role}: {p.text}")
        elif isinstance(p, ImagePart):
            out.append(f"{m.role}: [image]")
        elif isinstance(p, ToolCallPart):
            out.append(f"assistant called {p.name} (call {p.id}) with {p.arguments}")
        elif isinstance(p, ToolResultPart):
            body = p.content if isinstance(p.content, str) else " ".join(
                c.text if isinstance(c, TextPart) else "[image]" for c in p.content)
            if len(body) > _RESULT_CHARS:
                body = body[:_RESULT_CHARS] + f" [... {len(body) - _RESULT_CHARS} more characters]"
            status = "error" if p.is_error else "result"
            out.append(f"tool {status} of call {p.call_id}: {body}")
        elif isinstance(p, BuiltinToolPart):
            out.append(f"{m.role}: [{p.item_type}]")
        # reasoning: private to its producer, never summarized
    return "\n".join(out)


def render(messages: list[Message], budget: int, counter: Counter | None = None) -> str:
    """The messages as a plain transcript of at most ``budget`` estimated tokens: when
    they do not fit, the oldest lines go first and a note says how many."""
    lines = [s for s in (_line(m) for m in messages) if s]
    sizes = [_text_tokens(s, counter) + 1 for s in lines]
    total = sum(sizes)
    skipped = 0
    while lines and total > budget:
        total -= sizes[skipped]
        skipped += 1
        if skipped == len(lines):
            break
    kept = lines[skipped:]
    if skipped:
        kept.insert(0, f"[... {skipped} earlier entries omitted to fit ...]")
    return "\n".join(kept)


def summary_message(text: str, turns: tuple[int, int]) -> Message:
    """The user message that stands for the summarized turns (their numbers in ``meta``,
    so that a resumed session counts on from them)."""
    return Message("user", [TextPart(SUMMARY_PREFIX + text.strip(),
                                     meta={SUMMARY_META: {"turns": list(turns)}})])


def removed_calls(m: Message) -> dict[str, int]:
    """The tool calls a note of removed turns counts (empty for any other message)."""
    for p in m.parts:
        if isinstance(p, TextPart) and p.meta and isinstance(p.meta.get(SUMMARY_META), dict):
            calls = p.meta[SUMMARY_META].get("removed")
            if isinstance(calls, dict):
                return {str(k): int(v) for k, v in calls.items() if isinstance(v, int)}
    return {}


def removed_message(turns: tuple[int, int], calls: dict[str, int]) -> Message:
    """The note that stands for turns removed without a summary (``strategy: elide`` when
    eliding results is not enough, or a summary that could not be had): which turns, and
    which tools they called, so the model knows to call them again."""
    first, last = turns
    which = f"turn {first}" if first == last else f"turns {first}-{last}"
    used = ", ".join(f"{name} x{n}" for name, n in sorted(calls.items(), key=lambda kv: (
        -kv[1], kv[0])))
    did = f"; they called {used}" if used else ""
    text = (f"{REMOVED_PREFIX}{which} of this session{did}. Their results are no longer "
            "here: call the tools again if you need them.]")
    return Message("user", [TextPart(text, meta={SUMMARY_META: {
        "turns": [first, last], "removed": dict(sorted(calls.items()))}})])


@attrs.frozen
class SummaryPlan:
    """Which messages to summarize (``[start, end)`` of the conversation), the turns they
    hold, and the summary request's text. ``anchor`` / ``tail`` are the first summarized
    and the first kept message, to check that the conversation did not change meanwhile."""

    start: int
    end: int
    turns: tuple[int, int]
    transcript: str
    anchor: Message
    tail: Message | None

    @property
    def system(self) -> str:
        return SUMMARY_SYSTEM

    @property
    def messages(self) -> list[Message]:
        return [Message.user(self.transcript + _INSTRUCTION)]

    def request(self, model: str, params: Params | None = None, *,
                max_tokens: int | None = None, stream: bool = True) -> Request:
        """The summary request for ``model``: no tools, the provider's params (minus tool
        choice) with ``max_tokens`` when given."""
        p = params or Params()
        p = msgspec.structs.replace(p, tool_choice=None, parallel_tool_calls=None,
                                    response_format=None,
                                    max_tokens=max_tokens if max_tokens is not None
                                    else p.max_tokens)
        return Request(model=model, messages=self.messages, system=self.system, params=p,
                       stream=stream)

    def tokens(self, counter: Counter | None = None) -> int:
        """The summary request's estimate (its own size, bounded by the window)."""
        return (_text_tokens(self.transcript + _INSTRUCTION, counter)
                + _text_tokens(SUMMARY_SYSTEM, counter) + 3 * MESSAGE_OVERHEAD)
