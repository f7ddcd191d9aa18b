"""Keeping a conversation within ``window - reserve_output`` (pure state, no I/O).

One ``ContextManager`` per session and provider entry. Before each request the conductor
calls ``fit(messages, system=..., tools=...)``; the manager estimates the request with its
ledger (only new messages are estimated) and, when it is over budget, shrinks the
conversation in place, in this order:

1. the oldest tool results become markers naming the tool, the call id and the size;
2. the reasoning of old assistant messages is dropped, a message's reasoning whole;
3. with ``strategy: summarize`` the turns between the first task and the kept turns are
   to be replaced by a summary: ``fit`` answers ``summary_needed`` with a ``SummaryPlan``,
   the conductor sends its request and gives the text to ``apply_summary``.

Never touched: the system prompt, the first user task, the last ``keep_recent_turns``
turns (a turn is an assistant message and the results answering it, with the user message
that opened it), and so the open tool loop's signed reasoning. Elision keeps every call and
its result (only the result's content changes) and a summary replaces whole turns, so no
call is ever left without its result or the reverse, in any protocol.

``harder=True`` (after a provider's ``context_length`` error) aims at 75 % of the budget and
elides everything outside the kept turns. When even the kept part is over the budget the
``Fit`` says so (``status == "over"``, ``reason``, ``hint``; ``Fit.error()`` is the
provider failure to report). After each response, ``observe(usage.input_tokens)``
calibrates the estimate.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any, Literal

import attrs

from ..errors import ErrorKind, ProviderError
from ..model import Message, ToolSpec
from .estimate import Calibration, Counter, prompt_tokens
from .ledger import Ledger, summarized_turns
from .summary import SUMMARY_SYSTEM, SummaryPlan, render, summary_message

__all__ = ["NATIVE_PROTOCOLS", "ContextManager", "ContextPolicy", "Fit", "Strategy",
           "tokens_from_error"]

Strategy = Literal["elide", "summarize", "provider", "off"]
Status = Literal["unchanged", "compacted", "summary_needed", "over"]
NATIVE_PROTOCOLS = frozenset({"openai-responses", "anthropic"})
HARDER_RATIO = 0.75

# (prompt tokens, window) as each vendor words a context-length error
_REFUSALS = (
    (re.compile(r"maximum context length is (\d+) tokens.*?resulted in (\d+) tokens", re.S),
     2, 1),                                                       # OpenAI
    (re.compile(r"prompt is too long: (\d+) tokens > (\d+) maximum"), 1, 2),   # Anthropic
    (re.compile(r"request \((\d+) tokens\) exceeds the available context size "
                r"\((\d+) tokens\)"), 1, 2),                     # llama.cpp
    (re.compile(r'"n_prompt_tokens":\s*(\d+).*?"n_ctx":\s*(\d+)', re.S), 1, 2),
)


def tokens_from_error(message: str) -> tuple[int | None, int | None]:
    """The prompt size and the window a context-length error states, where it does."""
    for pattern, prompt, window in _REFUSALS:
        found = pattern.search(message)
        if found:
            return int(found.group(prompt)), int(found.group(window))
    return None, None


@attrs.frozen
class ContextPolicy:
    """``context:`` of agent.yaml."""

    strategy: Strategy = "elide"
    reserve_output: int = 4096
    keep_recent_turns: int = 4


@attrs.frozen
class Fit:
    """What one fit did; ``record(turn)`` is the ``context_compacted`` transcript record."""

    status: Status
    strategy: str
    tokens_before: int
    tokens_after: int
    budget: int
    window: int
    elided: tuple[str, ...] = ()
    reasoning_dropped: int = 0
    summarized: tuple[int, int] | None = None
    summary: SummaryPlan | None = None
    harder: bool = False
    reason: str | None = None
    hint: str | None = None

    @property
    def ok(self) -> bool:
        """The request may be sent as the conversation now stands."""
        return self.status in ("unchanged", "compacted")

    @property
    def changed(self) -> bool:
        """The conversation changed (a ``context_compacted`` record is due)."""
        return bool(self.elided or self.reasoning_dropped or self.summarized)

    def record(self, turn: int) -> dict[str, Any]:
        """The fields of the ``context_compacted`` record."""
        return {
            "turn": turn, "strategy": self.strategy, "harder": self.harder,
            "tokens_before": self.tokens_before, "tokens_after": self.tokens_after,
            "budget": self.budget, "window": self.window,
            "elided": {"count": len(self.elided), "call_ids": list(self.elided)},
            "reasoning_dropped": self.reasoning_dropped,
            "summarized": None if self.summarized is None else {
                "turns": list(self.summarized)},
            "status": self.status, "reason": self.reason,
        }

    def error(self, provider: str | None = None) -> ProviderError:
        """The failure to report when the conversation cannot fit."""
        return ProviderError(ErrorKind.CONTEXT_LENGTH, self.reason or "context window exceeded",
                             provider=provider, hint=self.hint)


class ContextManager:
    """Fits one session's conversation into one provider's window."""

    def __init__(self, policy: ContextPolicy, window: int, *, provider: str = "main",
                 protocol: str | None = None, counter: Counter | None = None,
                 calibration: Calibration | None = None) -> None:
        if policy.keep_recent_turns < 1:
            raise ValueError("context.keep_recent_turns must be at least 1")
        self.policy = policy
        self.provider = provider
        self.protocol = protocol
        self.calibration = calibration if calibration is not None else Calibration()
        self.ledger = Ledger(counter)
        self.window = 0
        self.set_window(window)
        self.last_estimate = 0          # raw estimate of the last request fitted
        self._prompt_key: tuple[str | None, Sequence[ToolSpec] | None] = (None, None)
        self._prompt = 0

    def set_window(self, window: int) -> None:
        """A new window (another model or provider); ``reserve_output`` must fit in it."""
        if window <= self.policy.reserve_output:
            raise ValueError(
                f"context.reserve_output ({self.policy.reserve_output}) leaves nothing of "
                f"the {window}-token window of {self.provider}: lower it or set "
                f"providers.{self.provider}.context_window")
        self.window = window

    @property
    def budget(self) -> int:
        return self.window - self.policy.reserve_output

    @property
    def local_strategy(self) -> str:
        """What this manager does itself: ``provider`` leaves the work to a vendor that has
        context management (eliding only as a safety net) and summarizes elsewhere."""
        s = self.policy.strategy
        if s == "provider":
            return "elide" if self.protocol in NATIVE_PROTOCOLS else "summarize"
        return s

    # ---- estimates ----------------------------------------------------------------------

    def _prompt_tokens(self, system: str | None, tools: Sequence[ToolSpec]) -> int:
        key = self._prompt_key
        if key[0] != system or key[1] is not tools:
            self._prompt = prompt_tokens(system, tools, self.ledger.counter)
            self._prompt_key = (system, tools)
        return self._prompt

    def _raw(self) -> int:
        return self._prompt + self.ledger.live_total

    def _scaled(self) -> int:
        return self.calibration.scale(self.provider, self._raw())

    def estimate(self, messages: list[Message], *, system: str | None = None,
                 tools: Sequence[ToolSpec] = ()) -> int:
        """The calibrated estimate of a request holding ``messages`` (no change made)."""
        self.ledger.sync(messages)
        self._prompt_tokens(system, tools)
        return self._scaled()

    def observe_refusal(self, message: str) -> tuple[int | None, int | None]:
        """Learn from a provider's context-length error: the prompt size it counted
        calibrates the estimate, the window it stated narrows ours. Returns both (None
        where the message does not say)."""
        prompt, window = tokens_from_error(message)
        if prompt is not None:
            self.calibration.observe(self.provider, self.last_estimate, prompt)
        if window is not None and self.policy.reserve_output < window < self.window:
            self.window = window
        return prompt, window

    def observe(self, input_tokens: int | None) -> float:
        """Calibrate with the ``input_tokens`` the provider reported for the last request
        fitted; returns the ratio now in force."""
        if not input_tokens:
            return self.calibration.ratio(self.provider)
        return self.calibration.observe(self.provider, self.last_estimate, input_tokens)

    # ---- fitting ------------------------------------------------------------------------

    def fit(self, messages: list[Message], *, system: str | None = None,
            tools: Sequence[ToolSpec] = (), harder: bool = False) -> Fit:
        """Bring the request within budget, editing ``messages`` in place (see the module
        docstring); the answer says what was done."""
        before = self.estimate(messages, system=system, tools=tools)
        strategy = self.local_strategy
        if strategy == "off":
            self.last_estimate = self._raw()
            return self._result("unchanged", "off", before)
        budget = self.budget
        target = math.floor(budget * HARDER_RATIO) if harder else budget
        if before <= target and not harder:
            self.last_estimate = self._raw()
            return self._result("unchanged", strategy, before, harder=harder)
        led = self.ledger
        keep = led.keep_from(self.policy.keep_recent_turns)
        elided: list[str] = []
        dropped = 0
        while led.results and led.results[0] < keep and (harder or self._scaled() > target):
            elided.extend(led.elide_results(led.results.popleft()))
        while led.thoughts and led.thoughts[0] < keep and (harder or self._scaled() > target):
            dropped += led.drop_reasoning(led.thoughts.popleft())
        now = self._scaled()
        self.last_estimate = self._raw()
        status: Status = "compacted" if elided or dropped else "unchanged"
        plan = None
        if now > target and strategy == "summarize":
            plan = self._plan(keep)
            if plan is not None:
                status = "summary_needed"
        if plan is None and now > budget:
            return self._over(strategy, before, now, tuple(elided), dropped, harder, keep)
        return self._result(status, strategy, before, elided=tuple(elided),
                            dropped=dropped, summary=plan, harder=harder)

    def _result(self, status: Status, strategy: str, before: int, *,
                elided: tuple[str, ...] = (), dropped: int = 0,
                summary: SummaryPlan | None = None, summarized: tuple[int, int] | None = None,
                harder: bool = False) -> Fit:
        return Fit(status, strategy, before, self._scaled(), self.budget, self.window,
                   elided, dropped, summarized, summary, harder)

    def _over(self, strategy: str, before: int, now: int, elided: tuple[str, ...],
              dropped: int, harder: bool, keep: int) -> Fit:
        kept = self.calibration.scale(self.provider, self._prompt + sum(
            self.ledger.sizes[keep:]))
        p = self.provider
        reason = (f"the request needs ~{now} tokens, over the budget of {self.budget} "
                  f"(context window {self.window} - reserve_output "
                  f"{self.policy.reserve_output}); what must be kept (system prompt, first "
                  f"task, the last {self.policy.keep_recent_turns} turns) is ~{kept} tokens "
                  f"after everything else was compacted")
        hint = ("lower context.keep_recent_turns or context.reserve_output, use strategy: "
                f"summarize, set providers.{p}.context_window if the model allows more, or "
                "use a model with a larger context window")
        return Fit("over", strategy, before, now, self.budget, self.window, elided, dropped,
                   None, None, harder, reason, hint)

    # ---- summaries ----------------------------------------------------------------------

    def _plan(self, keep: int) -> SummaryPlan | None:
        led = self.ledger
        start = 0 if led.first_task is None else led.first_task + 1
        if keep <= start or not led.turns_in(start, keep):
            return None
        turns = led.turns_in(start, keep)
        first, last = led.ordinal(turns[0]), led.ordinal(turns[-1])
        earlier = summarized_turns(led.messages[start])
        if earlier is not None:  # a previous summary is summarized again
            first = min(first, earlier[0])
        room = self.calibration.unscale(self.provider, self.budget) - prompt_tokens(
            SUMMARY_SYSTEM, (), led.counter) - 64
        text = render(led.messages[start:keep], max(room, 256), led.counter)
        tail = led.messages[keep] if keep < len(led.messages) else None
        return SummaryPlan(start, keep, (max(first, 1), last), text, led.messages[start], tail)

    def apply_summary(self, messages: list[Message], plan: SummaryPlan, text: str) -> Fit:
        """Replace the planned turns by the model's summary ``text`` (``messages`` is the
        conversation ``fit`` planned on); raises ``ValueError`` when it changed since."""
        led = self.ledger
        led.sync(messages)
        if (plan.end > len(messages) or messages[plan.start] is not plan.anchor
                or (plan.tail is not None and messages[plan.end] is not plan.tail)):
            raise ValueError("the conversation changed since the summary was planned")
        if not text.strip():
            raise ValueError("the summary is empty")
        before = self._scaled()
        led.replace_span(plan.start, plan.end, summary_message(text, plan.turns))
        now = self._scaled()
        self.last_estimate = self._raw()
        strategy = self.local_strategy
        if now > self.budget:
            keep = led.keep_from(self.policy.keep_recent_turns)
            over = self._over(strategy, before, now, (), 0, False, keep)
            return attrs.evolve(over, summarized=plan.turns)
        return self._result("compacted", strategy, before, summarized=plan.turns)
