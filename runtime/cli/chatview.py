"""What interactive mode shows of a session's records: the answer as it streams, tool
activity as it happens, errors, retries, warnings and compactions, and ``/cost``.

``ChatView`` renders events on a ``Screen`` (the answer on stdout, everything else on
stderr above the status line). The records are already redacted by the session; the
view's own lines go through the redactor too.
"""

from __future__ import annotations

import json
from typing import Any

from ..accounting import Accounts
from ..redact import Redactor
from ..session.records import (
    ApprovalDecision,
    AssistantRecord,
    ContextCompacted,
    Event,
    ProviderErrorRecord,
    ReasoningRecord,
    TextDelta,
    ToolCallRecord,
    ToolRejected,
    ToolResultRecord,
    WarningRecord,
)
from .status import Screen

__all__ = ["ChatView", "cost_lines", "preview"]

PREVIEW = 160


def preview(value: Any, limit: int = PREVIEW) -> str:
    """One line of at most ``limit`` characters for a value (text or JSON)."""
    if isinstance(value, str):
        text = value
        try:  # tool-call arguments: compact JSON on one line
            text = json.dumps(json.loads(value), ensure_ascii=False)
        except ValueError:
            pass
    else:
        text = json.dumps(value, ensure_ascii=False, default=str)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _size(content: Any) -> str:
    n = len(content) if isinstance(content, str) else len(json.dumps(content, default=str))
    return f"{n:,} chars"


def cost_lines(accounts: Accounts) -> list[str]:
    """``/cost``: the totals so far, then per provider entry."""
    u = accounts.usage
    lines = [f"tokens: {u.total_tokens:,} (in {u.input_tokens:,}, of which cache read "
             f"{u.cache_read_tokens:,} and cache write {u.cache_write_tokens:,}; out "
             f"{u.output_tokens:,}, of which reasoning {u.reasoning_tokens:,})",
             f"cost: ${accounts.cost_usd:.4f}"]
    for name, acc in accounts.providers.items():
        unpriced = f", {acc.unpriced_turns} unpriced" if acc.unpriced_turns else ""
        lines.append(f"  {name}: {acc.requests} request{'s' * (acc.requests != 1)}"
                     f" ({acc.retries} retr{'ies' if acc.retries != 1 else 'y'}), "
                     f"{acc.usage.total_tokens:,} tokens, ${acc.cost_usd:.4f}{unpriced}")
    lines.append(f"tools: {accounts.tool_calls} call{'s' * (accounts.tool_calls != 1)}, "
                 f"{accounts.tool_errors} failed, {accounts.tool_rejected} rejected")
    return lines


class ChatView:
    """Renders one session's events in interactive mode."""

    def __init__(self, screen: Screen, redactor: Redactor) -> None:
        self.screen = screen
        self.redactor = redactor
        self.accounts = Accounts()      # every record, for /cost
        self.quiet_until = 0            # records up to this seq were shown before (resume)
        self.seen = 0                   # the last record's seq
        self._streamed: set[str] = set()  # request ids whose text was streamed
        self._open = False              # the answer's last line has no newline yet

    def note(self, text: str, style: str | None = None) -> None:
        self.end_answer()
        self.screen.note(self.redactor.text(text), style)

    def answer(self, text: str) -> None:
        if text:
            self.screen.answer(text)
            self._open = not text.endswith("\n")

    def end_answer(self) -> None:
        if self._open:
            self.screen.answer("\n")
            self._open = False

    def render(self, ev: Event) -> None:
        """Show one event (records already shown before a resume only count)."""
        t = type(ev)
        if t is not TextDelta:
            self.accounts.apply(ev)
            self.seen = max(self.seen, ev.seq)
            if ev.seq <= self.quiet_until:
                return
        self.screen.event(ev)
        handler = _HANDLERS.get(t)
        if handler is not None:
            handler(self, ev)

    # ---- one method per record type -------------------------------------------------

    def _delta(self, ev: TextDelta) -> None:
        self._streamed.add(ev.request_id)
        self.answer(ev.text)

    def _assistant(self, ev: AssistantRecord) -> None:
        if ev.status == "interrupted":
            self.end_answer()
            self.note("[turn cancelled] the partial answer is kept in the transcript, not "
                      "in the conversation", "yellow")
            return
        if ev.request_id not in self._streamed and ev.text:
            self.answer(ev.text)
        self.end_answer()

    def _reasoning(self, ev: ReasoningRecord) -> None:
        self.note(f"thinking: {preview(ev.text, 200)}", "dim")

    def _call(self, ev: ToolCallRecord) -> None:
        self.note(f"-> {ev.name} {preview(ev.arguments)}", "cyan")

    def _result(self, ev: ToolResultRecord) -> None:
        took = f"{ev.duration:.2f} s"
        if ev.ok:
            self.note(f"<- {ev.name} ok · {took} · {_size(ev.content)}", "green")
        elif ev.interrupted:
            self.note(f"<- {ev.name} interrupted", "yellow")
        elif not ev.rejected:
            self.note(f"<- {ev.name} failed · {took}: {preview(ev.content)}", "red")

    def _rejected(self, ev: ToolRejected) -> None:
        self.note(f"<- {ev.name} not run: {preview('; '.join(ev.errors))}", "red")

    def _decision(self, ev: ApprovalDecision) -> None:
        self.note(f"   {'allowed' if ev.allow else 'denied'}"
                  + (f": {ev.reason}" if ev.reason else ""), "dim")

    def _provider_error(self, ev: ProviderErrorRecord) -> None:
        status = ev.status if ev.status is not None else "-"
        again = f" (retrying in {ev.delay:.1f} s)" if ev.will_retry and ev.delay else ""
        self.note(f"[provider-error] {ev.provider} {ev.kind} {status}: {ev.hint}{again}",
                  "red")

    def _warning(self, ev: WarningRecord) -> None:
        if ev.code == "streaming_disabled":
            self.note(f"[streaming-disabled] {ev.provider}: "
                      f"{ev.message.split(': ', 1)[-1]}", "yellow")
        elif ev.code == "failover":
            self.note(f"[failover] {ev.message.removeprefix('failing over from ')}"
                      .replace(" to ", " -> ", 1), "yellow")
        elif ev.code == "model_switch":
            self.note(f"[model] {ev.message}", "cyan")
        else:
            self.note(f"warning: {ev.message}", "yellow")

    def _compacted(self, ev: ContextCompacted) -> None:
        what = []
        if ev.elided:
            what.append(f"{len(ev.elided)} tool result(s) elided")
        if ev.summarized:
            what.append("older turns summarized")
        detail = f" ({', '.join(what)})" if what else ""
        self.note(f"[compacted] {ev.strategy}: {ev.tokens_before:,} -> {ev.tokens_after:,} "
                  f"tokens{detail}", "magenta")

_HANDLERS: dict[type, Any] = {
    TextDelta: ChatView._delta, AssistantRecord: ChatView._assistant,
    ReasoningRecord: ChatView._reasoning, ToolCallRecord: ChatView._call,
    ToolResultRecord: ChatView._result, ToolRejected: ChatView._rejected,
    ApprovalDecision: ChatView._decision, ProviderErrorRecord: ChatView._provider_error,
    WarningRecord: ChatView._warning, ContextCompacted: ChatView._compacted,
}
