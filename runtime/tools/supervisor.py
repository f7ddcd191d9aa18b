"""The tool supervisor: check every call, then run the accepted ones concurrently.

:func:`run_tool_calls` first validates each call (unknown tool, malformed JSON, schema
errors) and applies the approval policy, in call order (so prompts on the terminal come one
at a time). Rejected calls never run. The accepted calls then run in one nursery, a task per
call, each under its own timeout. A tool that raises, or runs out of time, becomes an error
outcome for the model; only cancellation (and KeyboardInterrupt and the like) propagates.
Outcomes come back in call order, whatever the order in which the calls finished.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import msgspec
import trio

from ..model import ToolCallPart, ToolResultPart
from .approval import Asker, Decision, approval_mode, decide, terminal_asker
from .registry import Tool, ToolError, ToolRegistry
from .validate import validate_call

__all__ = ["ToolOutcome", "run_tool_calls"]

class ToolOutcome(msgspec.Struct):
    """What became of one tool call.

    ``rejected`` calls (validation or approval) never ran; ``errors`` lists why. ``content``
    is what the model reads: the tool's result, or what went wrong.
    """

    call_id: str
    name: str
    ok: bool
    content: str
    rejected: bool = False
    errors: list[str] = msgspec.field(default_factory=list)
    duration: float = 0.0
    arguments: dict[str, Any] | None = None

    def to_part(self) -> ToolResultPart:
        """The tool result to send back to the model."""
        return ToolResultPart(self.call_id, self.content, is_error=not self.ok, name=self.name)


def _timeout_text(timeout: float) -> str:
    return f"{timeout:g}"


Approver = Callable[[ToolCallPart, dict[str, Any]], Awaitable[tuple[bool, str]]]
"""Answers an ``ask`` call: (allowed, reason). Given, it replaces ``ask``: the session asks
whoever can answer (a person on the terminal, an HTTP client) with the call's id."""
OnStart = Callable[[ToolCallPart, Tool], Awaitable[None]]
OnDone = Callable[[ToolCallPart, ToolOutcome], Awaitable[None]]


async def _run_one(tool: Tool, call: ToolCallPart, arguments: dict[str, Any], timeout: float,  # noqa: ASYNC109
                   slot: list[ToolOutcome | None], index: int,
                   on_start: OnStart | None, on_done: OnDone | None) -> None:
    if on_start is not None:
        await on_start(call, tool)
    start = trio.current_time()
    ok = False
    content = ""
    with trio.move_on_after(timeout) as scope:
        try:
            content = await tool.call(arguments)
            ok = True
        except ToolError as exc:
            content = str(exc)
        except Exception as exc:  # a tool's failure is the model's news, not our crash
            content = f"{tool.name} failed: {type(exc).__name__}: {exc}"
    if scope.cancelled_caught and not ok:
        content = f"{tool.name} timed out after {_timeout_text(timeout)} s"
    slot[index] = out = ToolOutcome(call.id, call.name, ok, content,
                                    duration=trio.current_time() - start, arguments=arguments)
    if on_done is not None:
        await on_done(call, out)


async def run_tool_calls(calls: Sequence[ToolCallPart], registry: ToolRegistry, *,
                         timeout: float = math.inf, approval: Mapping[str, str] | None = None,  # noqa: ASYNC109
                         ask: Asker | None = None, approver: Approver | None = None,
                         on_start: OnStart | None = None,
                         on_done: OnDone | None = None) -> list[ToolOutcome]:
    """Run ``calls`` and return one :class:`ToolOutcome` per call, in call order.

    ``approval`` maps tool names (or globs like ``server__*``) to ``auto``/``ask``/``deny``,
    over each tool's default.
    ``ask`` answers ``ask`` calls; when it is ``None`` the terminal is asked if stdin is
    one, and otherwise such calls are denied with a reason that says how to allow them;
    ``approver``, when given, answers them instead. ``on_start`` is awaited before a call runs
    and ``on_done`` with each outcome as it is known (rejections first, then runs as they
    finish).
    """
    approval = approval or {}
    asker = terminal_asker() if ask is None and approver is None else ask
    schemas = registry.schemas()
    outcomes: list[ToolOutcome | None] = [None] * len(calls)
    accepted: list[tuple[int, Tool, dict[str, Any]]] = []
    for i, call in enumerate(calls):
        checked = validate_call(call.name, call.arguments, schemas)
        if not checked.ok or checked.arguments is None:
            outcomes[i] = out = ToolOutcome(call.id, call.name, False, checked.message(),
                                            rejected=True, errors=list(checked.errors),
                                            arguments=checked.arguments)
            if on_done is not None:
                await on_done(call, out)
            continue
        tool = registry[call.name]
        mode = approval_mode(call.name, approval, tool.approval)
        if mode == "ask" and approver is not None:
            allowed, reason = await approver(call, checked.arguments)
            decision = Decision(allowed, mode, reason)
        else:
            decision = await decide(call.name, checked.arguments, mode, asker)
        if not decision.allowed:
            outcomes[i] = out = ToolOutcome(call.id, call.name, False,
                                            f"Tool call denied: {decision.reason}", rejected=True,
                                            errors=[decision.reason], arguments=checked.arguments)
            if on_done is not None:
                await on_done(call, out)
            continue
        accepted.append((i, tool, checked.arguments))
    if accepted:
        async with trio.open_nursery() as nursery:
            for i, tool, arguments in accepted:
                nursery.start_soon(_run_one, tool, calls[i], arguments, timeout, outcomes, i,
                                   on_start, on_done)
    done = [o for o in outcomes if o is not None]
    assert len(done) == len(calls)
    return done
