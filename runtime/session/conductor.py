"""The conductor: owns the conversation and drives the multi-turn tool loop of one session.

Per turn it sends a ``TurnRequest`` to the current provider's runtime actor (shared by every
session of the engine), reads the replies (``TurnReader``), runs the tool calls through the
supervisor, feeds the results back in call order, and decides whether to go on. It never
parses a provider's bytes, never writes a file and never touches another actor's state: it
emits records (``Recorder``) and sends messages.

Failover: when a provider fails for good the same turn goes to the next entry of
``fallbacks``; opaque reasoning only ever goes back to the entry that produced it
(``Conversation.view``).

Context: every request is first kept within its provider's window (``_ask_fitted``, with
the session's ``ContextStep``, ``context.py``); a context-length refusal compacts harder and
asks once more. ``compact()`` compacts now (the interactive ``/compact``).

Interruptions keep the conversation valid: a cancelled turn records what had arrived of the
answer (``assistant`` with status ``interrupted``) and closes every call of the turn that has
no result with an "interrupted" error result; a resumed session closes the calls a crash
left open the same way before anything is sent (read-only tools and calls that never started
run again).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import attrs
import msgspec
import trio

from ..budgets import Budget
from ..channels import send_soon
from ..context.fit import ContextPolicy
from ..context.source import WindowSource
from ..errors import ActorFailed, ErrorKind, ProviderError
from ..hooks import Hooks, ResponseEnd
from ..model import Message, Params, Part, Request, ToolCallPart, ToolResultPart, Usage
from ..pricing import PriceTable
from ..providers.actor import Reply, TurnRequest
from ..providers.kinds import KINDS
from ..tools import ToolOutcome, ToolRegistry, run_tool_calls
from ..tools.registry import Tool
from ..tools.supervisor import Approver
from ..tools.validate import parse_arguments
from .context import Compaction, ContextStep
from .conversation import Conversation
from .liveness import process_identity
from .outcome import Outcome, outcome
from .recorder import Recorder
from .records import (
    AssistantRecord,
    ReasoningRecord,
    SessionStart,
    ToolCallRecord,
    ToolRejected,
    ToolResultRecord,
    ToolStart,
    TurnEnd,
    UsageRecord,
    UserMessage,
    WarningRecord,
)
from .restore import Restored
from .state import RecordResponse, StateMsg
from .turn import Answer, TurnReader

__all__ = ["INTERRUPTED_RESULT", "Conductor", "Limits", "ProviderHandle", "SessionSpec"]

INTERRUPTED_RESULT = ("interrupted: the session stopped while this call was running; it may "
                      "or may not have taken effect. Check before calling it again.")
_STOPPED = outcome("terminated", message="stopped at the end of a turn: the service is "
                   "shutting down; the session resumes from here")
CUT_OFF_NOTE = ("\nYour answer was cut off at the output token limit (max_tokens) inside this "
                "call's arguments: they were not valid JSON and were replaced by {} in the "
                "conversation. Call the tool again with shorter arguments, or ask for a larger "
                "max_tokens.")


@attrs.frozen
class ProviderHandle:
    """How a session reaches one provider runtime actor (owned by the engine)."""

    name: str
    kind: str
    model: str
    mailbox: trio.MemorySendChannel[TurnRequest]
    stream: bool = True
    params: Params = attrs.field(factory=Params)
    store: bool | None = None
    cache_system: bool = False
    window: WindowSource | None = None    # where its context window comes from (engine's)


@attrs.frozen
class Limits:
    max_turns: int = 30
    max_total_tokens: int | None = None
    max_cost_usd: float | None = None


@attrs.frozen
class SessionSpec:
    """What one session runs with, fixed at its start."""

    run_id: str
    order: tuple[str, ...]                # the main provider, then the fallbacks
    system: str | None = None
    limits: Limits = Limits()
    tool_timeout: float = 60.0
    approval: Mapping[str, str] = attrs.field(factory=dict)
    keep_open: bool = False


@attrs.define
class Conductor:
    spec: SessionSpec
    providers: dict[str, ProviderHandle]
    registry: ToolRegistry
    rec: Recorder
    state: trio.MemorySendChannel[StateMsg]
    prices: PriceTable = attrs.field(factory=PriceTable)
    hooks: Hooks | None = None
    chat: Conversation = attrs.field(factory=Conversation)
    approver: Approver | None = None
    # budgets beyond this session (``runtime.budgets``): asked before every request
    budget: Budget | None = None
    on_status: Callable[[str], None] = lambda status: None
    on_turn_scope: Callable[[trio.CancelScope | None], None] = lambda scope: None
    # asked before each turn: True ends the session there, resumable (a service draining)
    should_stop: Callable[[], bool] = lambda: False
    turn: int = 0
    _current: int = 0                 # index in spec.order of the provider of the last turn
    _last_input: tuple[int, int] = (0, 0)   # input tokens of the last request, messages then
    _unpriced_warned: set[str] = attrs.field(factory=set)
    _request_id: str = ""              # the response whose tool calls are running
    context_policy: ContextPolicy = attrs.field(factory=ContextPolicy)
    ctx: ContextStep = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.ctx = ContextStep(self.context_policy, self.chat, self.rec, self._side_request)

    # ---- the session --------------------------------------------------------------------

    async def run(self, task: str | None, inbox: trio.MemoryReceiveChannel[str] | None,
                  restored: Restored | None = None) -> Outcome:
        """The session: the task (or the turn a resumed run left open), then, with
        ``keep_open``, one exchange per message of ``inbox`` until it is closed. A
        ``keep_open`` session with nothing to answer yet (no task, a finished run resumed)
        waits for its first message."""
        if task:
            self.chat.append(Message.user(task))
        await self.rec.emit(SessionStart(
            task=task, providers=list(self.spec.order), resumed=restored is not None,
            model=self.providers[self.spec.order[0]].model, tools=self.registry.names(),
            process=process_identity()))
        chatting = self.spec.keep_open and inbox is not None
        result = outcome("finished", answer=restored.answer if restored is not None else "")
        if restored is not None:
            self.turn = self.rec.turn = restored.turn
            if restored.pending or not restored.turn_closed:
                await self._close_open_turn(restored)
            if not task and not chatting and _answered(self.chat.messages):
                return result  # nothing new to ask
        waiting = chatting and not task and (not self.chat.messages
                                             or _answered(self.chat.messages))
        while True:
            if not waiting:
                with trio.CancelScope() as scope:
                    self.on_turn_scope(scope)
                    answer = await self.until_answer()
                self.on_turn_scope(None)
                if scope.cancelled_caught:
                    answer = outcome("interrupted", message="the turn was cancelled",
                                     answer=result.answer)
                result = answer
                if not chatting or result.status not in ("finished", "interrupted"):
                    return result
            waiting = False
            if self.should_stop():
                return _STOPPED
            self.on_status("waiting_input")
            assert inbox is not None
            try:
                text = await inbox.receive()
            except trio.EndOfChannel:  # the user ended the chat: a cancelled turn is no failure
                return outcome("finished", answer=result.answer)
            await self.add_user(text)

    async def switch(self, order: list[ProviderHandle]) -> None:
        """Drive the next turns with ``order[0]`` (another entry, or another model of one),
        failing over to the rest. Opaque reasoning only goes back to what produced it: the
        per-entry views already keep it from other entries, and the reasoning of the model
        an entry leaves is retired. Recorded as a ``model_switch`` warning."""
        new = order[0]
        before = self.providers[self.spec.order[self._current]]
        for h in order:
            old = self.providers.get(h.name)
            if old is not None and old.model != h.model:
                self.chat.retire(h.name, f"{h.name}@{old.model}")
            self.providers[h.name] = h
        self.spec = attrs.evolve(self.spec, order=tuple(h.name for h in order))
        self._current = 0
        await self.rec.emit(WarningRecord(
            code="model_switch", provider=new.name,
            message=f"the next turns go to {new.name} ({new.model}) instead of "
                    f"{before.name} ({before.model})"))

    async def add_user(self, text: str) -> None:
        self.chat.append(Message.user(text))
        await self.rec.emit(UserMessage(text=text))

    async def until_answer(self) -> Outcome:
        """Turns until the model answers without tool calls, a limit, or a failure."""
        self.on_status("running")
        while True:
            limit = self._limit_reached() or await self._budget_reached()
            if limit is not None:
                return limit
            if self.should_stop():
                return _STOPPED
            self.turn += 1
            self.rec.turn = self.turn
            result = await self._one_turn()
            if isinstance(result, Outcome):
                return result
            answer, handle = result
            resp = answer.response
            await self._record_response(answer, handle)
            if resp.stop == "length":
                await self.rec.emit(WarningRecord(
                    code="length_cutoff", provider=handle.name, request_id=answer.request_id,
                    message=f"the answer of {handle.name} ended at the output token limit "
                            "(max_tokens): it may be incomplete"))
            if not resp.tool_calls:
                await self.rec.emit(TurnEnd(finish=resp.stop))
                return outcome("finished", answer=resp.text)
            await self._run_tools(resp.tool_calls, cut_off=resp.stop == "length")
            await self.rec.emit(TurnEnd(finish=resp.stop))

    # ---- limits -------------------------------------------------------------------------

    def _limit_reached(self) -> Outcome | None:
        lim, acc = self.spec.limits, self.rec.accounts
        if self.turn >= lim.max_turns:
            return outcome("limit", message=f"turn limit reached: {lim.max_turns} turns "
                                            "(limits.max_turns)")
        total = acc.usage.total_tokens
        if lim.max_total_tokens is not None and total >= lim.max_total_tokens:
            return outcome("limit", message=f"token budget reached: {total} of "
                           f"{lim.max_total_tokens} tokens (limits.max_total_tokens)")
        if lim.max_cost_usd is not None:
            spent = acc.cost_usd
            estimate = self._next_cost()
            if spent >= lim.max_cost_usd or (estimate is not None
                                             and spent + estimate > lim.max_cost_usd):
                return outcome("limit", message=f"cost budget reached: ${spent:.4f} spent, "
                               f"next turn estimated at ${estimate or 0:.4f}, limit "
                               f"${lim.max_cost_usd:.4f} (limits.max_cost_usd)")
        return None

    async def _budget_reached(self) -> Outcome | None:
        """The daily, monthly (and, with a fleet, this session's) budget: a request that
        would cross one is not sent."""
        if self.budget is None:
            return None
        message = await self.budget.check(self.spec.run_id, self._next_cost() or 0.0,
                                          self.spec.limits.max_cost_usd)
        return None if message is None else outcome("limit", message=message)

    async def _charge(self, cost: float | None) -> None:
        if self.budget is not None and cost:
            await self.budget.charge(self.spec.run_id, cost)

    def _next_cost(self) -> float | None:
        """A lower bound of the next request's input cost: the last prompt plus what was
        added since."""
        handle = self.providers[self.spec.order[self._current]]
        price = self.prices.price(handle.model)
        if price is None or not len(self.chat):
            return None
        last_input, last_len = self._last_input
        return (last_input + self.chat.tokens(last_len)) * price.input / 1_000_000

    # ---- one turn, with failover ----------------------------------------------------------

    async def _one_turn(self) -> tuple[Answer, ProviderHandle] | Outcome:
        """Every turn starts with the main provider; while its circuit is open the turn
        skips it at once when a fallback can take it."""
        last_error: ProviderError | None = None
        order = self.spec.order
        for index, name in enumerate(order):
            handle = self.providers[name]
            if index > 0 and last_error is not None:
                await self.rec.emit(WarningRecord(
                    code="failover", provider=handle.name,
                    message=f"failing over from {order[index - 1]} to {handle.name}"))
            self._current = index
            answer = await self._ask_fitted(handle, can_fail_over=index + 1 < len(order))
            if isinstance(answer, Answer):
                return answer, handle
            last_error = answer
        assert last_error is not None
        return outcome("provider_failed",
                       message=f"provider failure after retries and fallbacks: {last_error}")

    # ---- the context window ---------------------------------------------------------------

    async def _ask_fitted(self, handle: ProviderHandle, *, can_fail_over: bool
                          ) -> Answer | ProviderError:
        """``_ask`` within ``handle``'s context window: the conversation is fitted first; a
        context-length refusal teaches the real size, compacts harder and asks once more;
        a second one is a provider failure with a hint."""
        tools = self.registry.specs()
        for retry in (False, True):
            before = self.ctx.compactions
            failure = await self.ctx.fit(handle, self.spec.system, tools, harder=retry)
            if self.ctx.compactions != before:
                self._last_input = (0, 0)  # the messages it was counted on changed
            if failure is not None:
                return failure
            answer = await self._ask(handle, can_fail_over=can_fail_over)
            if isinstance(answer, Answer):
                self.ctx.answered(handle, answer)
                return answer
            if answer.kind is not ErrorKind.CONTEXT_LENGTH:
                return answer
            if retry or not await self.ctx.refused(handle, answer, self.spec.system, tools):
                return await self.ctx.gave_up(handle, answer, retried=retry)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _side_request(self, handle: ProviderHandle, req: Request, estimate: int
                            ) -> Answer | ProviderError:
        """A request outside the conversation (the summary request) through ``handle``'s
        runtime: recorded (``request``, ``usage`` with its cost), never shown as the answer."""
        reply_send, reply_recv = trio.open_memory_channel[Any](16)
        await self.rec.flush()
        try:
            await send_soon(handle.mailbox, TurnRequest(req, reply_send, self.turn, req.stream,
                                                        can_fail_over=True, estimate=estimate))
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise ActorFailed(f"provider {handle.name}", "its mailbox is closed") from exc
        answer = await TurnReader(self.rec, handle.name, handle.model, self.hooks,
                                  side=True).read(reply_recv)
        if isinstance(answer, Answer):
            cost = await self._record_usage(answer, handle, conversation=False)
            self._hook_response_end(answer, handle, cost)
        return answer

    async def compact(self, strategy: str | None = None) -> Compaction:
        """Compact the conversation now for the current provider (``/compact``), with
        ``context.strategy`` or the ``strategy`` given; says what it did. Between turns: a
        turn's own fit waits for it."""
        handle = self.providers[self.spec.order[self._current]]
        before = self.ctx.compactions
        done = await self.ctx.compact(handle, self.spec.system, self.registry.specs(),
                                      strategy)
        if self.ctx.compactions != before:
            self._last_input = (0, 0)
        return done

    async def _ask(self, handle: ProviderHandle, *, can_fail_over: bool) -> Answer | ProviderError:
        messages, dropped = self.chat.view(handle.name)
        if dropped:
            await self.rec.emit(WarningRecord(
                code="reasoning_dropped", provider=handle.name,
                message=f"{dropped} reasoning item(s) from another provider were not sent to "
                f"{handle.name} (signatures and encrypted reasoning only go back to the "
                "provider that produced them)"))
        req = Request(model=handle.model, messages=messages, system=self.spec.system,
                      tools=self.registry.specs(), params=handle.params, stream=handle.stream,
                      store=handle.store, cache_system=handle.cache_system,
                      metadata={"run_id": self.spec.run_id, "turn": self.turn})
        reply_send: trio.MemorySendChannel[Reply]
        reply_recv: trio.MemoryReceiveChannel[Reply]
        # not open_memory_channel[Reply](16): subscripting builds a generic alias per call
        reply_send, reply_recv = trio.open_memory_channel(16)
        turn_req = TurnRequest(req, reply_send, self.turn, handle.stream,
                               can_fail_over=can_fail_over, estimate=self.chat.estimate)
        await self.rec.flush()  # what the run saw is on disk before the next request
        try:
            await send_soon(handle.mailbox, turn_req)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise ActorFailed(f"provider {handle.name}", "its mailbox is closed") from exc
        reader = TurnReader(self.rec, handle.name, handle.model, self.hooks)
        try:
            return await reader.read(reply_recv)
        except trio.Cancelled:
            turn_req.scope.cancel()  # the provider stops the attempt in flight
            with trio.CancelScope(shield=True):
                await self._record_partial(reader, handle)
            raise

    async def _record_partial(self, reader: TurnReader, handle: ProviderHandle) -> None:
        """A cancelled turn: what had arrived of the answer, and its estimated tokens."""
        text = reader.partial_text
        if not reader.rid:
            return
        await self.rec.emit(AssistantRecord(
            provider=handle.name, model=handle.model, request_id=reader.rid,
            attempts=reader.attempt, text=text, status="interrupted",
            duration=round(trio.current_time() - reader.t0, 6),
            ttft=None if reader.ttft is None else round(reader.ttft, 6), **reader.connection()))
        out = max(1, len(text) // 4) if text else 0
        cost = self.prices.cost(handle.model, Usage(self.chat.estimate, out))
        await self.rec.emit(UsageRecord(
            provider=handle.name, input_tokens=self.chat.estimate, output_tokens=out,
            cost_usd=cost, estimated=True, request_id=reader.rid))
        with trio.move_on_after(5.0):  # shielded by the caller: never wait long here
            await self._charge(cost)

    # ---- after the answer -----------------------------------------------------------------

    async def _record_response(self, answer: Answer, handle: ProviderHandle) -> None:
        resp, rid = answer.response, answer.request_id
        self._request_id = rid
        for r in resp.reasoning:
            if r.text:
                await self.rec.emit(ReasoningRecord(provider=handle.name, kind=r.kind,
                                                    text=r.text, request_id=rid))
        for c in resp.tool_calls:
            await self.rec.emit(ToolCallRecord(call_id=c.id, name=c.name, arguments=c.arguments,
                                               kind=c.kind, request_id=rid))
        cost = await self._record_usage(answer, handle)
        self._hook_response_end(answer, handle, cost)
        self.chat.append(resp.message())
        await send_soon(self.state, RecordResponse(handle.name, resp, self.turn, rid))

    async def _record_usage(self, answer: Answer, handle: ProviderHandle, *,
                            conversation: bool = True) -> float | None:
        resp = answer.response
        if resp.usage is None:
            return None
        u = resp.usage
        cost: float | None = 0.0
        if not answer.cached:  # a cache hit costs nothing
            free = KINDS[handle.kind].free  # priced by pricing: alone, else zero
            cost = self.prices.cost(resp.model or handle.model, u, builtin=not free)
            if cost is None:
                cost = self.prices.cost(handle.model, u, builtin=not free)
            if cost is None and free:
                cost = 0.0
            if cost is None:
                await self._warn_unpriced(handle)
            if conversation:
                self._last_input = (u.input_tokens, len(self.chat) + 1)
        await self.rec.emit(UsageRecord(
            provider=handle.name, input_tokens=u.input_tokens, output_tokens=u.output_tokens,
            cache_read_tokens=u.cache_read_tokens, cache_write_tokens=u.cache_write_tokens,
            reasoning_tokens=u.reasoning_tokens, cost_usd=cost, cached=answer.cached,
            request_id=answer.request_id))
        await self._charge(cost)
        return cost

    async def _warn_unpriced(self, handle: ProviderHandle) -> None:
        if handle.model in self._unpriced_warned:
            return
        self._unpriced_warned.add(handle.model)
        await self.rec.emit(WarningRecord(
            code="unpriced", provider=handle.name,
            message=f"no price known for model {handle.model}: cost is not counted (add it "
                    f"under pricing: in agent.yaml, e.g. pricing: {{{handle.model}: "
                    "{input: 1.0, output: 4.0}})"))

    def _hook_response_end(self, answer: Answer, handle: ProviderHandle,
                           cost: float | None) -> None:
        if self.hooks is None or not self.hooks.active:
            return
        resp = answer.response
        u = resp.usage or Usage()
        self.hooks.emit(ResponseEnd(
            run_id=self.spec.run_id, turn=self.turn, request_id=answer.request_id,
            provider=handle.name, model=resp.model or handle.model, duration=answer.duration,
            ttft=answer.ttft, input_tokens=u.input_tokens, output_tokens=u.output_tokens,
            cache_read_tokens=u.cache_read_tokens, cache_write_tokens=u.cache_write_tokens,
            reasoning_tokens=u.reasoning_tokens, cost_usd=cost,
            provider_request_id=answer.provider_request_id, cached=answer.cached))

    # ---- tools ----------------------------------------------------------------------------

    async def _run_tools(self, calls: list[ToolCallPart], *, cut_off: bool = False,
                         run: list[ToolCallPart] | None = None,
                         existing: dict[str, ToolResultPart] | None = None) -> None:
        """Run ``run`` (default: all) of a turn's ``calls``; ``existing`` results (from a
        resumed journal) are kept. The tool message (results in call order) joins the
        conversation even when the turn is cancelled part-way."""
        results: dict[str, ToolResultPart] = dict(existing or {})

        async def started(call: ToolCallPart, tool: Tool) -> None:
            await self.rec.emit(ToolStart(call_id=call.id, name=call.name))
            if not tool.read_only:  # on disk before it may take effect
                await self.rec.flush()

        async def done(call: ToolCallPart, out: ToolOutcome) -> None:
            if out.rejected and cut_off and _broken_arguments(call):
                out = ToolOutcome(out.call_id, out.name, False, out.content + CUT_OFF_NOTE,
                                  rejected=True, errors=out.errors, duration=out.duration,
                                  arguments=out.arguments)
                await self.rec.emit(WarningRecord(
                    code="arguments_replaced", message=f"the arguments of call {call.id} "
                    f"({call.name}) were cut off at the token limit; they are sent back as {{}}"))
            part = out.to_part()
            results[call.id] = (part if part.kind == call.kind
                                else msgspec.structs.replace(part, kind=call.kind))
            await self._record_outcome(call, out)

        todo = calls if run is None else run
        try:
            if todo:
                await run_tool_calls(todo, self.registry, timeout=self.spec.tool_timeout,
                                     approval=self.spec.approval, approver=self.approver,
                                     on_start=started, on_done=done)
        finally:
            with trio.CancelScope(shield=True):
                await self._close_calls(calls, results)

    async def _record_outcome(self, call: ToolCallPart, o: ToolOutcome) -> None:
        if o.rejected:
            await self.rec.emit(ToolRejected(call_id=o.call_id, name=o.name, errors=o.errors))
        part = o.to_part()
        await self.rec.emit(ToolResultRecord(
            call_id=o.call_id, name=o.name, ok=o.ok, content=part.content,
            duration=round(o.duration, 6), kind=call.kind, meta=part.meta, rejected=o.rejected,
            request_id=self._request_id))

    async def _interrupted(self, call: ToolCallPart) -> ToolResultPart:
        """The result of a call that may or may not have taken effect (recorded)."""
        await self.rec.emit(ToolResultRecord(
            call_id=call.id, name=call.name, ok=False, content=INTERRUPTED_RESULT,
            kind=call.kind, interrupted=True, request_id=self._request_id))
        return ToolResultPart(call.id, INTERRUPTED_RESULT, is_error=True, name=call.name,
                              kind=call.kind)

    async def _close_calls(self, calls: list[ToolCallPart],
                           results: dict[str, ToolResultPart]) -> None:
        """The tool message of ``calls``; a call without a result gets the interrupted one."""
        parts: list[Part] = []
        for call in calls:
            part = results.get(call.id)
            if part is None:
                part = results[call.id] = await self._interrupted(call)
            parts.append(part)
        self.chat.append(Message("tool", parts))

    async def _close_open_turn(self, restored: Restored) -> None:
        """Finish the turn a crash or an interruption left open, before anything is sent:
        calls that never started and calls of read-only tools run (again); any other call
        without a result is closed as interrupted; results already journaled are kept."""
        self.turn = self.rec.turn = restored.turn
        pending = restored.pending
        if pending:
            existing: dict[str, ToolResultPart] = {}
            if self.chat.messages and self.chat.messages[-1].role == "tool":
                existing = {p.call_id: p for p in self.chat.messages[-1].parts
                            if isinstance(p, ToolResultPart)}
                self.chat.replace(self.chat.messages[:-1])
            calls = self.chat.messages[-1].tool_calls
            again = [c for c in pending if c.id not in restored.started
                     or _read_only(self.registry.get(c.name))]
            closed = [c for c in pending if c not in again]
            for c in closed:
                existing[c.id] = await self._interrupted(c)
            if closed:
                await self.rec.emit(WarningRecord(
                    code="tool_interrupted",
                    message=f"{len(closed)} tool call(s) of turn {restored.turn} were running "
                    "when the session stopped; they are reported to the model as interrupted"))
            await self._run_tools(calls, run=again, existing=existing)
        await self.rec.emit(TurnEnd(finish="tool_calls" if pending else "other"))


def _answered(messages: list[Message]) -> bool:
    """The conversation ends with an answer (an assistant message without calls)."""
    return bool(messages) and messages[-1].role == "assistant" and not messages[-1].tool_calls


def _read_only(tool: Tool | None) -> bool:
    return tool is not None and tool.read_only


def _broken_arguments(call: ToolCallPart) -> bool:
    if call.kind != "function":
        return False
    try:
        parse_arguments(call.arguments)
    except ValueError:
        return True
    return False

