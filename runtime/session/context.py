"""The conductor's context step: every request kept within its provider's window.

One ``ContextStep`` per session, over the conversation's own ledger (one estimate per
message, the same one the conductor's budgets read). Before each request ``fit`` points the
session's ``ContextManager`` at the provider entry of the request (its window from the
engine's ``WindowSource``, its protocol, its output reserve: ``context.reserve_output``, or
the entry's ``max_tokens`` when smaller) and fits the conversation:

* elide old tool results, drop old reasoning (``runtime.context.fit``);
* ``strategy: summarize`` (and ``provider`` where the vendor has no context management):
  the summary request goes through the same provider runtime as a *side* request — a
  ``request`` record, ``usage`` with its cost, counted in the budgets — and its text
  replaces the older turns; a summary that cannot be had falls back to removing the oldest
  turns with a note (a ``warning``), and so does ``elide`` when eliding is not enough;
* every change is one ``context_compacted`` record (``Fit.record``), from which
  ``restore.compact_replay`` rebuilds the same conversation on resume.

A provider's ``context_length`` refusal (``refused``) teaches the manager the real prompt
size and window; the conductor then fits harder and asks once more, and a second refusal is
a provider failure with a hint (``gave_up``). ``compact`` is ``/compact``: compact now.
An unknown window means no fitting, said once per provider and model (``warning``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

import attrs
import msgspec
import trio

from ..context.estimate import prompt_tokens
from ..context.fit import ContextManager, ContextPolicy, Fit, tokens_from_error
from ..context.summary import SUMMARY_PREFIX, SummaryPlan
from ..errors import ErrorKind, ProviderError
from ..model import Request, ToolSpec
from ..providers.kinds import KINDS
from .conversation import Conversation
from .recorder import Recorder
from .records import ContextCompacted, WarningRecord
from .turn import Answer

if TYPE_CHECKING:
    from .conductor import ProviderHandle

__all__ = ["Compaction", "ContextStep", "SideAsk"]

SideAsk = Callable[..., Awaitable[Answer | ProviderError]]
"""``side(handle, request, estimate)``: send a request that is not part of the
conversation (the summary request) through the handle's provider runtime."""


@attrs.frozen
class Compaction:
    """What one compaction did (``Conductor.compact`` returns it for ``/compact``)."""

    changed: bool
    strategy: str
    tokens_before: int = 0
    tokens_after: int = 0
    budget: int = 0
    elided: int = 0
    reasoning_dropped: int = 0
    summarized_turns: tuple[int, int] | None = None
    message: str = ""
    record: ContextCompacted | None = None


def _describe(fit: Fit) -> str:
    did = []
    if fit.elided:
        did.append(f"{len(fit.elided)} tool result(s) elided")
    if fit.reasoning_dropped:
        did.append(f"reasoning of {len(fit.dropped_at)} message(s) dropped")
    if fit.summarized is not None and fit.replacement is not None:
        a, b = fit.summarized
        turns = f"turn {a}" if a == b else f"turns {a}-{b}"
        summary = fit.replacement.text.startswith(SUMMARY_PREFIX)
        did.append(f"{turns} {'summarized' if summary else 'removed'}")
    if not did:
        return f"nothing to compact (~{fit.tokens_after} of {fit.budget} tokens)"
    return (f"{', '.join(did)}: ~{fit.tokens_before} -> ~{fit.tokens_after} tokens "
            f"(budget {fit.budget})")


@attrs.define
class ContextStep:
    policy: ContextPolicy
    chat: Conversation
    rec: Recorder
    side: SideAsk
    manager: ContextManager | None = None
    compactions: int = 0                       # records written (the conductor's budgets)
    # the windows refusals stated, per provider entry and model
    _learned: dict[tuple[str, str], int] = attrs.field(factory=dict)
    _said: set[tuple[str, str]] = attrs.field(factory=set)
    _lock: trio.Lock = attrs.field(factory=trio.Lock)

    @property
    def offset(self) -> int:
        """Leading messages that are not in the journal (a history given to the session)."""
        return self.chat.ledger.pinned

    # ---- the provider's window ----------------------------------------------------------

    async def _use(self, handle: ProviderHandle) -> ContextManager | None:
        """The manager, pointed at ``handle``'s entry; None when its window is unknown."""
        src = handle.window
        if src is None:
            return None
        now = trio.current_time()
        if src.due(now) and await src.read_props(now):
            self._learned.pop((handle.name, handle.model), None)  # the server's word wins
        window, source = src.resolve(handle.model)
        learned = self._learned.get((handle.name, handle.model))
        if learned is not None and (window is None or learned < window):
            window, source = learned, "refusal"
        if window is None:
            await self._say(handle.name, handle.model, (
                f"the context window of {handle.name} (model {handle.model}) is unknown: "
                "the conversation is not fitted to it until a context-length error says "
                f"what it is; set providers.{handle.name}.context_window"))
            return None
        if source == "table" and src.props_state == "pending":
            await self._say(handle.name, "props", (
                f"could not read /props of {handle.name} ({src.props_error}): using the "
                f"{window}-token window known for model {handle.model} until it answers"))
        reserve = self.policy.reserve_output
        if handle.params.max_tokens is not None:
            reserve = min(reserve, handle.params.max_tokens)
        if window <= reserve:
            await self._say(handle.name, f"reserve:{window}", (
                f"context.reserve_output ({reserve}) leaves nothing of the {window}-token "
                f"window of {handle.name} ({source}): reserving {window // 4} tokens "
                "instead; lower context.reserve_output or set "
                f"providers.{handle.name}.context_window"))
            reserve = window // 4
        protocol = KINDS[handle.kind].protocol
        if self.manager is None:
            policy = attrs.evolve(self.policy, reserve_output=reserve)
            self.manager = ContextManager(policy, window, provider=handle.name,
                                          protocol=protocol, ledger=self.chat.ledger)
        else:
            self.manager.use(handle.name, protocol, window, reserve_output=reserve)
        return self.manager

    async def _say(self, provider: str, what: str, message: str) -> None:
        if (provider, what) in self._said:
            return
        self._said.add((provider, what))
        await self.rec.emit(WarningRecord(code="context_window", provider=provider,
                                          message=message))

    # ---- before a request ---------------------------------------------------------------

    async def fit(self, handle: ProviderHandle, system: str | None, tools: Sequence[ToolSpec], *,
                  harder: bool = False) -> ProviderError | None:
        """Fit the conversation for a request to ``handle``; the failure to report when it
        cannot fit."""
        async with self._lock:
            m = await self._use(handle)
            if m is None:
                return None
            fit = m.fit(self.chat.messages, system=system, tools=tools, harder=harder)
            reason = ("a context-length refusal: compacting harder" if harder
                      else "over the budget")
            fit, _ = await self._finish(handle, m, fit, system, tools, reason)
            if fit.ok:
                return None
            await self.rec.emit(WarningRecord(code="context", provider=handle.name,
                                              message=f"{fit.reason}: {fit.hint}"))
        return fit.error(handle.name)

    async def compact(self, handle: ProviderHandle, system: str | None, tools: Sequence[ToolSpec],
                      strategy: str | None = None) -> Compaction:
        """Compact now (``/compact``): everything outside the kept turns is elided, and with
        ``summarize`` the turns between the first task and the kept turns are summarized.
        ``strategy`` overrides ``context.strategy`` for this once."""
        if strategy is not None and strategy not in ("elide", "summarize", "provider", "off"):
            raise ValueError(f"unknown context strategy {strategy!r}: use elide, summarize, "
                             "provider or off")
        async with self._lock:
            m = await self._use(handle)
            if m is None:
                return Compaction(False, strategy or self.policy.strategy, message=(
                    f"the context window of {handle.name} is unknown: nothing to compact "
                    f"against (set providers.{handle.name}.context_window)"))
            fit = m.fit(self.chat.messages, system=system, tools=tools, force=True,
                        strategy=strategy)
            fit, rec = await self._finish(handle, m, fit, system, tools, "requested",
                                          strategy)
        return Compaction(fit.changed, fit.strategy, fit.tokens_before, fit.tokens_after,
                          fit.budget, len(fit.elided), len(fit.dropped_at), fit.summarized,
                          _describe(fit), rec)

    async def _finish(self, handle: ProviderHandle, m: ContextManager, fit: Fit,
                      system: str | None, tools: Sequence[ToolSpec], reason: str,
                      strategy: str | None = None) -> tuple[Fit, ContextCompacted | None]:
        """Summary, then the last resort, then the record."""
        request_id = None
        messages = self.chat.messages
        if fit.status == "summary_needed":
            assert fit.summary is not None
            got = await self._summarize(handle, m, fit.summary)
            if got is not None:
                fit, request_id = fit.then(got[0]), got[1]
            else:
                fit = attrs.evolve(fit, summary=None, status=(
                    "compacted" if fit.changed else "unchanged"))
        if fit.status == "over" or (fit.ok and m.estimate(
                messages, system=system, tools=tools) > m.budget):
            if m.local_strategy_of(strategy or self.policy.strategy) != "off":
                fit = fit.then(m.trim(messages, system=system, tools=tools,
                                      strategy=strategy))
        if not fit.changed:
            return fit, None
        fields = fit.record(self.rec.turn, self.offset)
        fields.pop("turn")
        fields["reason"] = reason if fit.reason is None else f"{reason}; {fit.reason}"
        rec = ContextCompacted(provider=handle.name, request_id=request_id, **fields)
        written = await self.rec.emit(rec)
        self.compactions += 1
        assert isinstance(written, ContextCompacted)
        return fit, written

    async def _summarize(self, handle: ProviderHandle, m: ContextManager, plan: SummaryPlan
                         ) -> tuple[Fit, str] | None:
        """The summary request, sent and applied; None (and a warning) when it failed."""
        p = handle.params
        extra = {k: v for k, v in p.extra.items() if k != "context_management"}
        reserve = m.policy.reserve_output
        params = msgspec.structs.replace(p, extra=extra, thinking_budget=None)
        req: Request = plan.request(handle.model, params, stream=handle.stream,
                                    max_tokens=min(reserve, p.max_tokens or reserve))
        answer = await self.side(handle, req, plan.tokens(m.ledger.counter))
        why: str
        if isinstance(answer, ProviderError):
            why = f"the summary request failed ({answer})"
        else:
            try:
                return m.apply_summary(self.chat.messages, plan, answer.response.text), \
                    answer.request_id
            except ValueError as exc:
                why = f"the summary could not be used ({exc})"
        await self.rec.emit(WarningRecord(
            code="context", provider=handle.name,
            message=f"{why}: the oldest turns are removed with a note instead"))
        return None

    # ---- after the answer ---------------------------------------------------------------

    def answered(self, handle: ProviderHandle, answer: Answer) -> None:
        """Calibrate the estimate with the input tokens the provider counted."""
        m = self.manager
        u = answer.response.usage
        if m is None or answer.cached or u is None or m.provider != handle.name:
            return
        m.observe(u.input_tokens)

    async def refused(self, handle: ProviderHandle, err: ProviderError, system: str | None,
                      tools: Sequence[ToolSpec]) -> bool:
        """Learn from a context-length refusal (the real prompt size, the real window);
        whether a harder fit and one more request are worth it."""
        if self.policy.strategy == "off":
            return False
        text = f"{err.message} {err.details or ''}"
        async with self._lock:
            src = handle.window
            if src is not None and src.props_state == "pending":
                await src.read_props(trio.current_time())
            _, window = tokens_from_error(text)
            key = (handle.name, handle.model)
            if window is None and src is not None and src.resolve(handle.model)[0] is None \
                    and key not in self._learned:
                # a window nobody knows and a refusal that does not say it: it is below
                # what was sent
                window = prompt_tokens(system, tools) + self.chat.ledger.live_total
            if window is not None:
                self._learned[key] = min(window, self._learned.get(key, window))
            known = self.manager is not None and self.manager.provider == handle.name
            m = await self._use(handle)
            if m is None:
                return False
            if not known or m.last_estimate == 0:  # what was sent, as the manager counts it
                m.fit(self.chat.messages, system=system, tools=tools, strategy="off")
            m.observe_refusal(text)
        return True

    async def gave_up(self, handle: ProviderHandle, err: ProviderError, *, retried: bool
                      ) -> ProviderError:
        """The provider failure after a refusal that compacting cannot answer (and a
        ``warning`` that says what to change)."""
        name = handle.name
        if self.policy.strategy == "off":
            hint = ("context.strategy is off: set it to elide or summarize so that the "
                    "conversation is kept within the window, or use a model with a larger one")
        else:
            hint = ("the conversation does not fit even after compacting harder: lower "
                    "context.keep_recent_turns or context.reserve_output, use strategy: "
                    f"summarize, set providers.{name}.context_window to the model's real "
                    "window, or use a model with a larger context window")
        what = "still refused after compacting harder" if retried else "refused"
        await self.rec.emit(WarningRecord(
            code="context", provider=name,
            message=f"{name} {what} the request as longer than its context window: {hint}"))
        return ProviderError(ErrorKind.CONTEXT_LENGTH, f"{err.message} ({what})",
                             provider=err.provider or name, status=err.status, hint=hint,
                             details=err.details, request_id=err.request_id, type=err.type,
                             code=err.code)
