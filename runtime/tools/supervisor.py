"""The tool supervisor: check every call, then run the accepted ones concurrently.

:func:`run_tool_calls` first prepares each call by its kind (``dispatch.py``: unknown tool,
malformed JSON, schema errors, a client-run kind nobody answers) and applies the approval
policy, in call order (so prompts on the terminal come one at a time). Rejected calls never
run. The accepted calls then run in one nursery, a task per call, each under its own
timeout (the calls of a ``serial`` tool, such as ``apply_patch``, one after another in
call order). A tool that raises, or runs out of time, becomes an error outcome for the model;
only cancellation (and KeyboardInterrupt and the like) propagates. Outcomes come back in
call order, whatever the order in which the calls finished.

Every outcome passes one edge before it leaves (:func:`_edge`): its text, errors, arguments
and meta are made valid UTF-8 (``_text.clean_text``) and capped at ``max_output_chars``
with a note saying how much was cut, whatever tool produced them (built-in, ``@tool``, MCP)
and whether they are results, error messages or rejections quoting the arguments.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import msgspec
import trio

from ..model import ToolCallPart, ToolKind, ToolResultPart
from ._text import cap_outputs, cap_text, clean_text, clean_value
from .approval import Asker, Decision, approval_mode, decide, terminal_asker
from .dispatch import Prepared, Rejected, prepare
from .kinds import failure_meta
from .registry import Tool, ToolError, ToolRegistry

__all__ = ["Approver", "OnDone", "OnStart", "ToolOutcome", "run_tool_calls"]

class ToolOutcome(msgspec.Struct):
    """What became of one tool call.

    ``rejected`` calls (validation or approval) never ran; ``errors`` lists why. ``content``
    is what the model reads: the tool's result, or what went wrong. ``kind`` is the call's
    (``function``, ``custom``, ``shell``...) and ``meta`` what its result item carries
    beyond text (see ``kinds.py``).
    """

    call_id: str
    name: str
    ok: bool
    content: str
    rejected: bool = False
    errors: list[str] = msgspec.field(default_factory=list)
    duration: float = 0.0
    arguments: dict[str, Any] | None = None
    kind: ToolKind = "function"
    meta: dict[str, Any] | None = None

    def to_part(self) -> ToolResultPart:
        """The tool result to send back to the model."""
        return ToolResultPart(self.call_id, self.content, is_error=not self.ok, name=self.name,
                              kind=self.kind, meta=self.meta)


Approver = Callable[[ToolCallPart, dict[str, Any]], Awaitable[tuple[bool, str]]]
"""Answers an ``ask`` call: (allowed, reason). Given, it replaces ``ask``: the session asks
whoever can answer (a person on the terminal, an HTTP client) with the call's id."""
OnStart = Callable[[ToolCallPart, Tool], Awaitable[None]]
OnDone = Callable[[ToolCallPart, ToolOutcome], Awaitable[None]]


def _cap(text: str, max_chars: int) -> str:
    return cap_text(clean_text(text), max_chars)


def _edge(o: ToolOutcome, max_chars: int, *, timed_out: bool = False) -> ToolOutcome:
    """``o`` made safe to encode and capped; a failed call of a client-run kind gets the
    kind's meta (saying it did not run, or timed out)."""
    content = _cap(o.content, max_chars)
    meta = clean_value(o.meta) if o.meta is not None else None
    if not o.ok and meta is None:
        meta = failure_meta(o.kind, content, timed_out=timed_out)
    if meta is not None and isinstance(meta.get("outputs"), list):
        meta = {**meta, "outputs": cap_outputs(meta["outputs"], max_chars)}
    return msgspec.structs.replace(
        o, content=content, errors=[_cap(e, max_chars) for e in o.errors], meta=meta,
        arguments=clean_value(o.arguments) if o.arguments is not None else None)


async def _run_one(job: Prepared, call: ToolCallPart, timeout: float,  # noqa: ASYNC109
                   max_chars: int, slot: list[ToolOutcome | None], index: int,
                   on_start: OnStart | None, on_done: OnDone | None) -> None:
    if on_start is not None:
        await on_start(call, job.tool)
    start = trio.current_time()
    ok = False
    content = ""
    meta = None
    with trio.move_on_after(timeout) as scope:
        try:
            reply = await job.run()
            ok, content, meta = reply.ok, reply.content, reply.meta
        except ToolError as exc:
            content = str(exc)
        except Exception as exc:  # a tool's failure is the model's news, not our crash
            content = f"{job.tool.name} failed: {type(exc).__name__}: {exc}"
    timed_out = scope.cancelled_caught and not ok
    if timed_out:
        content = f"{job.tool.name} timed out after {timeout:g} s"
        meta = None
    outcome = ToolOutcome(call.id, call.name, ok, content, duration=trio.current_time() - start,
                          arguments=job.arguments, kind=call.kind, meta=meta)
    slot[index] = out = _edge(outcome, max_chars, timed_out=timed_out)
    if on_done is not None:
        await on_done(call, out)


async def _run_in_order(jobs: list[tuple[int, Prepared]], calls: Sequence[ToolCallPart],
                        timeout: float, max_chars: int,  # noqa: ASYNC109
                        slot: list[ToolOutcome | None], on_start: OnStart | None,
                        on_done: OnDone | None) -> None:
    for i, job in jobs:
        await _run_one(job, calls[i], timeout, max_chars, slot, i, on_start, on_done)


async def run_tool_calls(calls: Sequence[ToolCallPart], registry: ToolRegistry, *,
                         timeout: float = math.inf, approval: Mapping[str, str] | None = None,  # noqa: ASYNC109
                         ask: Asker | None = None, approver: Approver | None = None,
                         on_start: OnStart | None = None, on_done: OnDone | None = None,
                         max_output_chars: int | None = None) -> list[ToolOutcome]:
    """Run ``calls`` and return one :class:`ToolOutcome` per call, in call order.

    ``approval`` maps tool names (or globs like ``server__*``) to ``auto``/``ask``/``deny``,
    over each tool's default.
    ``ask`` answers ``ask`` calls; when it is ``None`` the terminal is asked if stdin is
    one, and otherwise such calls are denied with a reason that says how to allow them;
    ``approver``, when given, answers them instead. ``on_start`` is awaited before a call runs
    and ``on_done`` with each outcome as it is known (rejections first, then runs as they
    finish). ``max_output_chars`` caps every outcome (default: the registry's).
    """
    approval = approval or {}
    max_chars = registry.max_output_chars if max_output_chars is None else max_output_chars
    asker = terminal_asker() if ask is None and approver is None else ask
    schemas = registry.schemas()
    outcomes: list[ToolOutcome | None] = [None] * len(calls)
    accepted: list[tuple[int, Prepared]] = []

    async def refuse(i: int, outcome: ToolOutcome) -> None:
        outcomes[i] = out = _edge(outcome, max_chars)
        if on_done is not None:
            await on_done(calls[i], out)

    for i, call in enumerate(calls):
        job = prepare(call, registry, schemas)
        if isinstance(job, Rejected):
            await refuse(i, ToolOutcome(call.id, call.name, False, job.message, rejected=True,
                                        errors=job.errors, arguments=job.arguments,
                                        kind=call.kind))
            continue
        name = job.tool.name
        mode = approval_mode(name, approval, job.tool.approval)
        shown = clean_value(job.arguments)  # a person or a client reads them: valid UTF-8
        if mode == "ask" and approver is not None:
            allowed, reason = await approver(call, shown)
            decision = Decision(allowed, mode, reason)
        else:
            decision = await decide(name, shown, mode, asker)
        if not decision.allowed:
            await refuse(i, ToolOutcome(call.id, call.name, False,
                                        f"Tool call denied: {decision.reason}", rejected=True,
                                        errors=[decision.reason], arguments=job.arguments,
                                        kind=call.kind))
            continue
        accepted.append((i, job))
    if accepted:
        serial: dict[str, list[tuple[int, Prepared]]] = {}
        async with trio.open_nursery() as nursery:
            for i, job in accepted:
                if job.tool.serial:
                    serial.setdefault(job.tool.name, []).append((i, job))
                else:
                    nursery.start_soon(_run_one, job, calls[i], timeout, max_chars, outcomes, i,
                                       on_start, on_done)
            for jobs in serial.values():
                nursery.start_soon(_run_in_order, jobs, calls, timeout, max_chars, outcomes,
                                   on_start, on_done)
    done = [o for o in outcomes if o is not None]
    assert len(done) == len(calls)
    return done
