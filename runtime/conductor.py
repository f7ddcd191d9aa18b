"""The conductor actor: owns the conversation and drives the multi-turn tool loop.

Per turn it sends a ``TurnRequest`` to the current provider's runtime actor, consumes the
normalized events on the reply channel (showing text as it arrives), validates and runs
the tool calls through the supervisor, feeds the results back in call order, and decides
whether to go on. It never parses a provider's bytes, never writes a file (the logger
actor does) and never touches another actor's state (it sends messages).

Failover: when a provider fails for good the same turn goes to the next entry of
``fallbacks``. Opaque reasoning (signed thinking, encrypted reasoning items) is only sent
back to the provider entry that produced it; for any other it is dropped, so a failover
never causes an "invalid signature" or "item not found" error.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import attrs
import structlog
import trio

from .accounting import Accounts
from .console import Console, Display
from .errors import ActorFailed, ProviderError
from .hooks import Hooks, ResponseEnd, ToolCallEvent
from .logger import LogMsg, Record, WriteFile
from .model import (
    BuiltinToolPart,
    Message,
    Params,
    Part,
    ReasoningPart,
    Request,
    Response,
    Usage,
)
from .pricing import PriceTable, estimate_tokens
from .providers.actor import TurnRequest
from .providers.kinds import KINDS
from .session import RecordResponse, SaveConversation, SessionMsg
from .tools import ToolRegistry, run_tool_calls
from .turn import Answer, TurnReader

__all__ = [
    "EXIT_INTERRUPTED",
    "EXIT_LIMIT",
    "EXIT_OK",
    "EXIT_PROVIDER",
    "Conductor",
    "Outcome",
    "ProviderHandle",
    "foreign_reasoning_removed",
]

log = structlog.get_logger("conductor")

EXIT_OK, EXIT_PROVIDER, EXIT_LIMIT, EXIT_INTERRUPTED = 0, 3, 4, 130


@attrs.define
class ProviderHandle:
    """How the conductor reaches one provider runtime actor."""

    name: str
    kind: str
    model: str
    mailbox: trio.MemorySendChannel[TurnRequest]
    stream: bool = True
    params: Params = attrs.field(factory=Params)
    store: bool | None = None
    cache_system: bool = False


@attrs.frozen
class Outcome:
    status: str           # finished | limit | provider_failed | interrupted | error
    exit_code: int
    answer: str = ""
    message: str = ""


def foreign_reasoning_removed(messages: list[Message], target: str) -> tuple[list[Message], int]:
    """The conversation as provider entry ``target`` may see it: reasoning parts and
    provider-executed tool items produced by another entry (their ``source``) are dropped.
    Returns the messages and how many parts were dropped."""
    dropped = 0
    out: list[Message] = []
    for m in messages:
        if m.role != "assistant":
            out.append(m)
            continue
        keep = []
        for p in m.parts:
            if isinstance(p, ReasoningPart | BuiltinToolPart) and p.source not in (None, target):
                dropped += 1
                continue
            keep.append(p)
        out.append(Message(m.role, keep))
    return out, dropped


@attrs.define
class Conductor:
    run_id: str
    providers: dict[str, ProviderHandle]
    order: list[str]                       # the main provider, then the fallbacks
    registry: ToolRegistry
    log: trio.MemorySendChannel[LogMsg]
    state: trio.MemorySendChannel[SessionMsg]
    console: Console
    system: str | None = None
    max_turns: int = 30
    max_total_tokens: int | None = None
    max_cost_usd: float | None = None
    tool_timeout: float = 60.0
    approval: Mapping[str, str] = attrs.field(factory=dict)
    ask: Callable[[str], bool] | None = None
    prices: PriceTable = attrs.field(factory=PriceTable)
    messages: list[Message] = attrs.field(factory=list)
    turn: int = 0
    accounts: Accounts = attrs.field(factory=Accounts)
    started_at: float = attrs.field(factory=time.time)
    hooks: Hooks | None = None
    _current: int = 0
    _last_input_tokens: int = 0
    _last_len: int = 0
    _warned_unpriced: set[str] = attrs.field(factory=set)

    # ---- the loop -------------------------------------------------------------------

    async def run(self, task: str | None) -> Outcome:
        if task:
            self.messages.append(Message.user(task))
        await self.note("session_start", task=task, providers=self.order,
                        model=self.providers[self.order[0]].model,
                        tools=self.registry.names())
        while True:
            if self.turn >= self.max_turns:
                return self._limit(f"turn limit reached: {self.max_turns} turns "
                                   "(limits.max_turns)")
            limit = self._budget_check()
            if limit is not None:
                return limit
            self.turn += 1
            structlog.contextvars.bind_contextvars(turn=self.turn)
            result = await self._one_turn()
            if isinstance(result, Outcome):
                return result
            answer, provider = result
            resp = answer.response
            await self._record_response(answer, provider)
            if not resp.tool_calls:
                await self.note("turn_end", finish=resp.stop)
                await self._save("finished")
                return Outcome("finished", EXIT_OK, resp.text)
            await self._run_tools(resp, answer.request_id)
            await self.note("turn_end", finish=resp.stop)
            await self._save("running")

    def _limit(self, message: str) -> Outcome:
        return Outcome("limit", EXIT_LIMIT, message=message)

    def _budget_check(self) -> Outcome | None:
        totals = self.accounts.usage
        if self.max_total_tokens is not None and totals.total_tokens >= self.max_total_tokens:
            return self._limit(f"token budget reached: "
                               f"{totals.total_tokens} of {self.max_total_tokens} tokens "
                               "(limits.max_total_tokens)")
        if self.max_cost_usd is not None:
            spent = self.accounts.cost_usd
            estimate = self._estimate_next_cost()
            if spent >= self.max_cost_usd or (estimate is not None
                                              and spent + estimate > self.max_cost_usd):
                return self._limit(f"cost budget reached: ${spent:.4f} spent, "
                                   f"next turn estimated at ${estimate or 0:.4f}, limit "
                                   f"${self.max_cost_usd:.4f} (limits.max_cost_usd)")
        return None

    def _estimate_next_cost(self) -> float | None:
        """A lower bound of the next request's input cost: the prompt is at least as long as
        the last one plus what was added since (4 characters a token)."""
        handle = self.providers[self.order[self._current]]
        price = self.prices.price(handle.model)
        if price is None or not self.messages:
            return None
        last_input = self._last_input_tokens
        added = estimate_tokens(self.messages[self._last_len:])
        return (last_input + added) * price.input / 1_000_000

    # ---- one turn, with failover ------------------------------------------------------

    async def _one_turn(self) -> tuple[Answer, ProviderHandle] | Outcome:
        """Every turn starts with the main provider: while its circuit is open the turn skips
        it at once (nothing is sent) and the breaker's half-open probe brings it back."""
        last_error: ProviderError | None = None
        previous = self._current
        for index, name in enumerate(self.order):
            handle = self.providers[name]
            if index > 0 and last_error is not None:
                self.accounts.of(handle.name).fallbacks_taken += 1
                await self.note("warning", message=f"failing over from {self.order[index - 1]}"
                                f" to {handle.name}", provider=handle.name)
                if index != previous:
                    self.console.line(f"[failover] {self.order[index - 1]} -> {handle.name}")
            self._current = index
            answer = await self._ask(handle)
            if isinstance(answer, Answer):
                return answer, handle
            last_error = answer
        assert last_error is not None
        return Outcome("provider_failed", EXIT_PROVIDER,
                       message=f"provider failure after retries and fallbacks: {last_error}")

    def _request_for(self, handle: ProviderHandle) -> tuple[Request, int]:
        messages, dropped = foreign_reasoning_removed(self.messages, handle.name)
        req = Request(
            model=handle.model, messages=messages, system=self.system,
            tools=self.registry.specs(), params=handle.params, stream=handle.stream,
            store=handle.store, cache_system=handle.cache_system,
            metadata={"run_id": self.run_id, "turn": self.turn},
        )
        return req, dropped

    async def _ask(self, handle: ProviderHandle) -> Answer | ProviderError:
        req, dropped = self._request_for(handle)
        if dropped:
            await self.note("warning", provider=handle.name,
                            message=f"{dropped} reasoning item(s) from another provider were not "
                            f"sent to {handle.name} (signatures and encrypted reasoning only go "
                            "back to the provider that produced them)")
        self.accounts.of(handle.name).requests += 1
        reply_send, reply_recv = trio.open_memory_channel[Any](16)
        try:
            await handle.mailbox.send(TurnRequest(req, reply_send, self.turn, handle.stream,
                                                  can_fail_over=self._current + 1 < len(self.order)))
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise ActorFailed(f"provider {handle.name}", "its mailbox is closed") from exc
        return await TurnReader(self, handle, Display(self.console)).read(reply_recv)

    # ---- after the answer ---------------------------------------------------------------

    async def _record_response(self, answer: Answer, handle: ProviderHandle) -> None:
        resp, rid = answer.response, answer.request_id
        for r in resp.reasoning:
            if r.text:
                await self.note("reasoning", provider=handle.name, kind=r.kind, text=r.text,
                                request_id=rid)
        for c in resp.tool_calls:
            await self.note("tool_call", call_id=c.id, name=c.name, arguments=c.arguments,
                            request_id=rid)
        acc = self.accounts.of(handle.name)
        cost: float | None = None
        if resp.usage is not None and answer.cached:  # a cache hit costs nothing
            u = resp.usage
            await self.note("usage", provider=handle.name, input_tokens=u.input_tokens,
                            output_tokens=u.output_tokens, cache_read_tokens=u.cache_read_tokens,
                            cache_write_tokens=u.cache_write_tokens,
                            reasoning_tokens=u.reasoning_tokens, cost_usd=0.0, cached=True,
                            request_id=rid)
        elif resp.usage is not None:
            u = resp.usage
            acc.usage = acc.usage + u
            free = KINDS[handle.kind].free  # priced by pricing: alone, else zero
            cost = self.prices.cost(resp.model or handle.model, u, builtin=not free)
            if cost is None:
                cost = self.prices.cost(handle.model, u, builtin=not free)
            if cost is None and free:
                cost = 0.0
            if cost is None:
                acc.unpriced_turns += 1
                if handle.model not in self._warned_unpriced:
                    self._warned_unpriced.add(handle.model)
                    await self.note("warning", provider=handle.name,
                                    message=f"no price known for model {handle.model}: cost is "
                                    "not counted (add it under pricing: in agent.yaml)")
            else:
                acc.cost_usd += cost
            self._last_input_tokens = u.input_tokens
            await self.note("usage", provider=handle.name, input_tokens=u.input_tokens,
                            output_tokens=u.output_tokens, cache_read_tokens=u.cache_read_tokens,
                            cache_write_tokens=u.cache_write_tokens,
                            reasoning_tokens=u.reasoning_tokens, cost_usd=cost, request_id=rid)
        u = resp.usage or Usage()
        self.hook(ResponseEnd, request_id=rid, provider=handle.name,
                  model=resp.model or handle.model, duration=answer.duration, ttft=answer.ttft,
                  input_tokens=u.input_tokens, output_tokens=u.output_tokens,
                  cache_read_tokens=u.cache_read_tokens, cache_write_tokens=u.cache_write_tokens,
                  reasoning_tokens=u.reasoning_tokens, cost_usd=cost,
                  provider_request_id=answer.provider_request_id, cached=answer.cached)
        self.messages.append(resp.message())
        self._last_len = len(self.messages)
        await self.state.send(RecordResponse(handle.name, resp, self.turn, len(self.messages) - 1))

    async def _run_tools(self, resp: Response, request_id: str) -> None:
        outcomes = await run_tool_calls(resp.tool_calls, self.registry, timeout=self.tool_timeout,
                                        approval=self.approval, ask=self.ask)
        parts: list[Part] = []
        for o in outcomes:
            self.accounts.tool_calls += 1
            if o.rejected:
                self.accounts.tool_rejected += 1
                await self.note("tool_rejected", call_id=o.call_id, name=o.name, errors=o.errors)
            elif not o.ok:
                self.accounts.tool_errors += 1
            await self.note("tool_result", call_id=o.call_id, name=o.name, ok=o.ok,
                            content=o.content, duration=round(o.duration, 6))
            self.hook(ToolCallEvent, call_id=o.call_id, name=o.name, ok=o.ok,
                      rejected=o.rejected, duration=o.duration, request_id=request_id)
            log.info("tool", name=o.name, ok=o.ok, rejected=o.rejected)
            parts.append(o.to_part())
        self.messages.append(Message("tool", parts))

    # ---- bookkeeping ------------------------------------------------------------------

    def hook(self, cls: type[Any], **fields: Any) -> None:
        """Hand a telemetry event to the hooks (never blocks)."""
        if self.hooks is not None:
            self.hooks.emit(cls(run_id=self.run_id, turn=self.turn, **fields))

    async def note(self, type: str, **fields: Any) -> None:
        """One transcript line of the current turn (through the logger actor)."""
        await self.log.send(Record(type, self.turn, fields))

    async def _save(self, status: str) -> None:
        await self.state.send(SaveConversation(list(self.messages), self.turn, status, {
            "provider": self.order[self._current], "order": self.order,
            "totals": self.accounts.totals(),
        }))

    async def finish(self, outcome: Outcome) -> dict[str, Any]:
        """Write ``session_end``, state and ``summary.json`` (the run folder always ends so)."""
        ended = time.time()
        totals = self.accounts.totals()
        await self.note("session_end", status=outcome.status, exit_code=outcome.exit_code,
                        turns=self.turn, totals=totals, message=outcome.message or None)
        await self._save(outcome.status)
        summary = {
            "run_id": self.run_id, "status": outcome.status, "exit_code": outcome.exit_code,
            "turns": self.turn, "message": outcome.message or None,
            "started_at": self.started_at, "ended_at": ended,
            "duration_s": round(ended - self.started_at, 6),
            "providers": {k: v.to_dict() for k, v in self.accounts.providers.items()},
            "totals": totals,
            "tools": {"calls": self.accounts.tool_calls, "rejected": self.accounts.tool_rejected,
                      "errors": self.accounts.tool_errors},
        }
        await self.log.send(WriteFile("summary.json", summary))
        return summary
