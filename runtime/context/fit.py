"""Keeping a conversation within ``window - reserve_output`` (pure state, no I/O).

One ``ContextManager`` per session; ``use(provider, protocol, window)`` points it at the
provider entry the next request goes to (a failover or a model switch brings another
window; the calibration is kept per provider entry). Before each request the conductor
calls ``fit(messages, system=..., tools=...)``; the manager estimates the request with its
ledger (only new messages are estimated) and, when it is over budget, shrinks the
conversation in place, in this order:

1. the oldest tool results become markers naming the tool, the call id and the size;
2. the reasoning of old assistant messages is dropped, a message's reasoning whole;
3. with ``strategy: summarize`` the turns between the first task and the kept turns are
   to be replaced by a summary: ``fit`` answers ``summary_needed`` with a ``SummaryPlan``,
   the conductor sends its request and gives the text to ``apply_summary``;
4. when that is still not enough (``fit`` answers ``over``), ``trim`` replaces the oldest
   turns by a note naming them and the tools they called, just enough of them to come
   back to 75 % of the budget: the last resort of ``strategy: elide``, and of a summary
   that could not be had.

Never touched: the system prompt, a history given before the task (the ledger's
``pinned`` messages), the first task, the last ``keep_recent_turns`` turns (a turn is an
assistant message and the results answering it, with the user message that opened it),
and so the open tool loop's signed reasoning. Elision keeps every call and its result (only
the result's content changes) and a summary or a note replaces whole turns, so no call is
ever left without its result or the reverse, in any protocol.

``harder=True`` (after a provider's ``context_length`` error) aims at 75 % of the budget and
elides everything outside the kept turns; ``force=True`` (compact now: ``/compact``) does
the same whatever the size, and plans a summary with ``strategy: summarize``. When even the
kept part is over the budget the ``Fit`` says so (``status == "over"``, ``reason``,
``hint``; ``Fit.error()`` is the provider failure to report). After each response,
``observe(usage.input_tokens)`` calibrates the estimate. ``Fit.record(turn, offset)`` holds
the fields of the ``context_compacted`` transcript record, from which a resumed session
replays the compaction exactly (``runtime.session.restore.compact_replay``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any, Literal

import attrs

from ..errors import ErrorKind, ProviderError
from ..model import Message, TextPart, ToolCallPart, ToolSpec
from .estimate import Calibration, Counter, message_tokens, prompt_tokens
from .ledger import Ledger, is_plain_user, summarized_turns
from .summary import (
    SUMMARY_SYSTEM,
    SummaryPlan,
    removed_calls,
    removed_message,
    render,
    summary_message,
)

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
    """What one fit did; ``record(turn, offset)`` is the ``context_compacted`` record.

    ``elided``: the call ids whose results became markers; ``dropped_at``: the indexes of
    the assistant messages whose reasoning was dropped; ``span``: the messages ``[start,
    end)`` (indexes after the elisions) that ``replacement`` (a summary or a note) took the
    place of, standing for the turns ``summarized``."""

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
    dropped_at: tuple[int, ...] = ()
    span: tuple[int, int] | None = None
    replacement: Message | None = None

    @property
    def ok(self) -> bool:
        """The request may be sent as the conversation now stands."""
        return self.status in ("unchanged", "compacted")

    @property
    def changed(self) -> bool:
        """The conversation changed (a ``context_compacted`` record is due)."""
        return bool(self.elided or self.reasoning_dropped or self.span)

    def then(self, later: Fit) -> Fit:
        """This fit followed by ``later`` (a summary or a trim of its result): one
        compaction, from this one's size to the later one's."""
        return attrs.evolve(
            later, tokens_before=self.tokens_before, harder=self.harder or later.harder,
            elided=self.elided + later.elided,
            reasoning_dropped=self.reasoning_dropped + later.reasoning_dropped,
            dropped_at=self.dropped_at + later.dropped_at)

    def record(self, turn: int, offset: int = 0) -> dict[str, Any]:
        """The fields of the ``context_compacted`` record. Indexes count from ``offset``
        (the leading messages that are not in the journal, such as a given history), so
        that they are positions in the conversation a resumed session rebuilds."""
        text = meta = None
        if self.replacement is not None:
            part = self.replacement.parts[0]
            assert isinstance(part, TextPart)
            text, meta = part.text, dict(part.meta or {})
        return {
            "turn": turn, "strategy": self.strategy, "harder": self.harder,
            "tokens_before": self.tokens_before, "tokens_after": self.tokens_after,
            "budget": self.budget, "window": self.window, "elided": list(self.elided),
            "reasoning_dropped": [i - offset for i in self.dropped_at],
            "summarized": None if self.span is None else [self.span[0] - offset,
                                                          self.span[1] - offset],
            "summarized_turns": None if self.summarized is None else list(self.summarized),
            "summary": text, "summary_meta": meta, "status": self.status,
            "reason": self.reason,
        }

    def error(self, provider: str | None = None) -> ProviderError:
        """The failure to report when the conversation cannot fit."""
        return ProviderError(ErrorKind.CONTEXT_LENGTH, self.reason or "context window exceeded",
                             provider=provider, hint=self.hint)


class ContextManager:
    """Fits one session's conversation into the window of the provider it is sent to."""

    def __init__(self, policy: ContextPolicy, window: int, *, provider: str = "main",
                 protocol: str | None = None, counter: Counter | None = None,
                 calibration: Calibration | None = None, ledger: Ledger | None = None
                 ) -> None:
        if policy.keep_recent_turns < 1:
            raise ValueError("context.keep_recent_turns must be at least 1")
        self.policy = policy
        self.provider = provider
        self.protocol = protocol
        self.calibration = calibration if calibration is not None else Calibration()
        self.ledger = ledger if ledger is not None else Ledger(counter)
        self.window = 0
        self.set_window(window)
        self.last_estimate = 0          # raw estimate of the last request fitted
        self._prompt_key: tuple[str | None, tuple[ToolSpec, ...]] = (None, ())
        self._prompt = 0

    def set_window(self, window: int) -> None:
        """A new window (another model or provider); ``reserve_output`` must fit in it."""
        if window <= self.policy.reserve_output:
            raise ValueError(
                f"context.reserve_output ({self.policy.reserve_output}) leaves nothing of "
                f"the {window}-token window of {self.provider}: lower it or set "
                f"providers.{self.provider}.context_window")
        self.window = window

    def use(self, provider: str, protocol: str | None, window: int, *,
            reserve_output: int | None = None) -> None:
        """Point the manager at the provider entry the next request goes to: its window,
        its protocol (what ``strategy: provider`` does there) and the output it reserves
        (``context.reserve_output`` unless given)."""
        reserve = self.policy.reserve_output if reserve_output is None else reserve_output
        if reserve != self.policy.reserve_output:
            self.policy = attrs.evolve(self.policy, reserve_output=reserve)
        self.provider, self.protocol = provider, protocol
        self.set_window(window)

    @property
    def budget(self) -> int:
        return self.window - self.policy.reserve_output

    @property
    def local_strategy(self) -> str:
        """What this manager does itself: ``provider`` leaves the work to a vendor that has
        context management (eliding only as a safety net) and summarizes elsewhere."""
        return self.local_strategy_of(self.policy.strategy)

    def local_strategy_of(self, strategy: str) -> str:
        """What the manager does itself for ``strategy`` on the current protocol."""
        if strategy == "provider":
            return "elide" if self.protocol in NATIVE_PROTOCOLS else "summarize"
        return strategy

    # ---- estimates ----------------------------------------------------------------------

    def _prompt_tokens(self, system: str | None, tools: Sequence[ToolSpec]) -> int:
        key = (system, tuple(tools))
        if key != self._prompt_key:  # the same specs compare by identity first: cheap
            self._prompt = prompt_tokens(system, tools, self.ledger.counter)
            self._prompt_key = key
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
            tools: Sequence[ToolSpec] = (), harder: bool = False, force: bool = False,
            strategy: str | None = None) -> Fit:
        """Bring the request within budget, editing ``messages`` in place (see the module
        docstring); the answer says what was done. ``strategy`` overrides the policy's for
        this call."""
        before = self.estimate(messages, system=system, tools=tools)
        local = self.local_strategy_of(strategy or self.policy.strategy)
        if local == "off":
            self.last_estimate = self._raw()
            return self._result("unchanged", "off", before)
        budget = self.budget
        target = math.floor(budget * HARDER_RATIO) if harder else budget
        everything = harder or force
        if before <= target and not everything:
            self.last_estimate = self._raw()
            return self._result("unchanged", local, before, harder=harder)
        led = self.ledger
        keep = led.keep_from(self.policy.keep_recent_turns)
        if led.compaction is not None:  # what a vendor compaction stands for costs nothing
            while led.results and led.results[0] < led.compaction:
                led.results.popleft()
            while led.thoughts and led.thoughts[0] < led.compaction:
                led.thoughts.popleft()
        elided: list[str] = []
        dropped: list[int] = []
        while led.results and led.results[0] < keep and (everything or self._scaled() > target):
            elided.extend(led.elide_results(led.results.popleft()))
        while led.thoughts and led.thoughts[0] < keep and (everything or self._scaled() > target):
            i = led.thoughts.popleft()
            if led.drop_reasoning(i):
                dropped.append(i)
        now = self._scaled()
        self.last_estimate = self._raw()
        status: Status = "compacted" if elided or dropped else "unchanged"
        plan = None
        if local == "summarize" and (now > target or force):
            plan = self._plan(keep)
            if plan is not None:
                status = "summary_needed"
        if plan is None and now > budget:
            return self._over(local, before, now, tuple(elided), tuple(dropped), harder, keep)
        return self._result(status, local, before, elided=tuple(elided),
                            dropped=tuple(dropped), summary=plan, harder=harder)

    def _result(self, status: Status, strategy: str, before: int, *,
                elided: tuple[str, ...] = (), dropped: tuple[int, ...] = (),
                summary: SummaryPlan | None = None, summarized: tuple[int, int] | None = None,
                harder: bool = False, span: tuple[int, int] | None = None,
                replacement: Message | None = None) -> Fit:
        return Fit(status, strategy, before, self._scaled(), self.budget, self.window,
                   elided, len(dropped), summarized, summary, harder, dropped_at=dropped,
                   span=span, replacement=replacement)

    def _over(self, strategy: str, before: int, now: int, elided: tuple[str, ...],
              dropped: tuple[int, ...], harder: bool, keep: int) -> Fit:
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
        return Fit("over", strategy, before, now, self.budget, self.window, elided,
                   len(dropped), None, None, harder, reason, hint, dropped_at=dropped)

    def _start(self) -> int:
        """The first message a summary or a note may replace: after the pinned history
        and the first task."""
        led = self.ledger
        return max(led.pinned, 0 if led.first_task is None else led.first_task + 1)

    # ---- summaries ----------------------------------------------------------------------

    def _plan(self, keep: int) -> SummaryPlan | None:
        led = self.ledger
        start = self._start()
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
        summary = summary_message(text, plan.turns)
        led.replace_span(plan.start, plan.end, summary)
        now = self._scaled()
        self.last_estimate = self._raw()
        strategy = self.local_strategy
        span = (plan.start, plan.end)
        if now > self.budget:
            keep = led.keep_from(self.policy.keep_recent_turns)
            over = self._over(strategy, before, now, (), (), False, keep)
            return attrs.evolve(over, summarized=plan.turns, span=span, replacement=summary)
        return self._result("compacted", strategy, before, summarized=plan.turns, span=span,
                            replacement=summary)

    # ---- the last resort: removing the oldest turns -------------------------------------

    def trim(self, messages: list[Message], *, system: str | None = None,
             tools: Sequence[ToolSpec] = (), strategy: str | None = None) -> Fit:
        """Replace the oldest turns after the first task (and after a summary, which is
        kept) by a note naming them and the tools they called: as few as bring the request
        back to 75 % of the budget, all of them up to the kept turns at most. A note
        already there is merged into the new one."""
        before = self.estimate(messages, system=system, tools=tools)
        local = self.local_strategy_of(strategy or self.policy.strategy)
        led = self.ledger
        keep = led.keep_from(self.policy.keep_recent_turns)
        start = self._start()
        if start < keep and summarized_turns(messages[start]) is not None \
                and not removed_calls(messages[start]):
            start += 1  # a model's summary stays; the note follows it
        turns = led.turns_in(start, keep)
        if not turns:
            self.last_estimate = self._raw()
            if before > self.budget:
                return self._over(local, before, before, (), (), False, keep)
            return self._result("unchanged", local, before)
        earlier = summarized_turns(messages[start]) if removed_calls(messages[start]) else None
        calls: dict[str, int] = removed_calls(messages[start]) if earlier else {}
        first = earlier[0] if earlier else led.ordinal(turns[0])
        ends = [t - 1 if t - 1 > start and is_plain_user(messages[t - 1]) else t
                for t in turns[1:]] + [keep]
        target = self.calibration.unscale(self.provider, math.floor(
            self.budget * HARDER_RATIO)) - self._prompt
        rest = led.live_total
        removed, at, last_turn = 0, start, first
        note = removed_message((first, first), calls)
        for end in ends:
            for i in range(at, end):
                removed += led.sizes[i] if led.compaction is None or i >= led.compaction else 0
                m = messages[i]
                if m.role == "assistant":
                    last_turn = led.ordinal(i)
                    for p in m.parts:
                        if isinstance(p, ToolCallPart):
                            calls[p.name] = calls.get(p.name, 0) + 1
            at = end
            note = removed_message((min(first, last_turn), last_turn), calls)
            if rest - removed + message_tokens(note, led.counter) <= target:
                break
        turns_removed = summarized_turns(note)
        assert turns_removed is not None
        led.replace_span(start, at, note)
        now = self._scaled()
        self.last_estimate = self._raw()
        span = (start, at)
        if now > self.budget:
            keep = led.keep_from(self.policy.keep_recent_turns)
            over = self._over(local, before, now, (), (), False, keep)
            return attrs.evolve(over, summarized=turns_removed, span=span, replacement=note)
        return self._result("compacted", local, before, summarized=turns_removed, span=span,
                            replacement=note)

