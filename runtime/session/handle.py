"""A running session and its handle.

``Session`` is what ``Engine.start`` returns: a handle on one session that runs as a task of
the engine's nursery. Its own nursery holds the journal actor, the session-state actor and
the conductor. Whatever happens — the model answers, a limit, a provider failure, a
cancellation, a bug, a run folder that cannot be written — the session ends with
``session_end``, ``state.json`` and ``summary.json`` written when the folder can be written,
and ``result()`` tells the truth about it.

The handle: ``events()`` (the records, live, typed; from any position: what is already on
disk is read back first), ``result()``, ``send(text)`` (the next user turn of a ``keep_open``
session), ``approve(call_id, allow)`` (an ``approval: ask`` call), ``cancel()`` and
``cancel_turn()`` (the current turn only; the session then waits for input), and for a
``keep_open`` session ``wait_input()`` (until it waits for the next message), ``close_input()``
(no more messages: it finishes) and ``switch(provider, model)`` (the next turns go to another
provider entry or model), and ``stop_at_turn_end()`` (end at the next turn boundary,
resumable: a service draining); ``compact()`` shrinks the conversation to its context
window now (``/compact``).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import attrs
import trio

from ..accounting import Accounts
from ..model import ToolCallPart
from ..redact import Redactor
from .conductor import Conductor, ProviderHandle
from .context import Compaction
from .journal import TRANSCRIPT, JournalError, RunFolder, journal_actor, offload
from .outcome import Outcome, SessionResult, Status, outcome
from .recorder import Recorder
from .records import ApprovalDecision, ApprovalRequest, Event, RecordBase, SessionEnd, decode_line
from .restore import Restored
from .state import Checkpoint, StateMsg, state_actor

__all__ = ["Dropped", "Session", "read_journal"]


class Dropped(Exception):
    """A watcher fell too far behind and was cut off; ``last_seq`` is the last record it got
    (read the rest with ``events(since=last_seq)``)."""

    def __init__(self, last_seq: int) -> None:
        self.last_seq = last_seq
        super().__init__(f"the watcher fell behind and was dropped after record {last_seq}")


def read_journal(run_dir: Path, after: int = 0) -> list[tuple[RecordBase, bytes]]:
    """The records of a run folder after position ``after`` (a torn last line is skipped;
    lines of older runs without ``seq`` get their line number)."""
    try:
        data = (run_dir / TRANSCRIPT).read_bytes()
    except FileNotFoundError:
        return []
    out: list[tuple[RecordBase, bytes]] = []
    for n, line in enumerate(data.split(b"\n"), 1):
        if n <= after or not line:
            continue
        rec = decode_line(line)
        if rec is None:
            continue
        if rec.seq == 0:
            rec.seq = n
        out.append((rec, line))
    return out


@attrs.define(eq=False)
class _Approval:
    call: ToolCallPart
    arguments: Any
    done: trio.Event = attrs.field(factory=trio.Event)
    allow: bool = False
    reason: str = ""


@attrs.define(eq=False)
class Session:
    """The handle of one session (see the module docstring)."""

    run_id: str
    run_dir: Path
    status: str = "queued"
    on_approval: str = "wait"          # wait: for approve(); deny: nobody can answer
    tee: Any = None                    # the journal's second home (recorder.Tee), if any
    _recorder: Recorder | None = None
    _result: SessionResult | None = None
    _done: trio.Event = attrs.field(factory=trio.Event)
    _scope: trio.CancelScope = attrs.field(factory=trio.CancelScope)
    _turn_scope: trio.CancelScope | None = None
    _cancel_status: Status = "cancelled"
    # (entry, model or None) -> that entry's handle, then its fallbacks' (Engine.handles_for)
    _handles: Callable[[str, str | None], list[ProviderHandle]] | None = None
    _idle: trio.Event = attrs.field(factory=trio.Event)   # set while waiting for input
    _inbox_send: trio.MemorySendChannel[str] | None = None
    _inbox_recv: trio.MemoryReceiveChannel[str] | None = None
    _approvals: dict[str, _Approval] = attrs.field(factory=dict)
    _always: set[str] = attrs.field(factory=set)
    _conductor: Conductor | None = None
    _stop_at_turn_end: bool = False

    def __attrs_post_init__(self) -> None:
        self._inbox_send, self._inbox_recv = trio.open_memory_channel[str](16)

    # ---- the public handle --------------------------------------------------------------

    @property
    def done(self) -> bool:
        return self._done.is_set()

    async def result(self) -> SessionResult:
        """Wait for the end of the session; how it ended."""
        await self._done.wait()
        assert self._result is not None
        return self._result

    def cancel(self, status: Status = "cancelled") -> None:
        """End the session (``interrupted`` for Ctrl-C, ``terminated`` for SIGTERM); the run
        folder is closed properly and stays resumable."""
        self._cancel_status = status
        self._scope.cancel()

    def cancel_turn(self) -> bool:
        """Cancel the turn in progress only (a ``keep_open`` session then waits for input);
        False when no turn is running."""
        if self._turn_scope is None or self.status not in ("running", "waiting_approval"):
            return False
        self._turn_scope.cancel()
        return True

    def stop_at_turn_end(self) -> None:
        """End the session at the next turn boundary as ``terminated`` (resumable from
        there): at once when it waits for input, after the turn in progress otherwise. A
        service draining before a restart uses it; :meth:`cancel` still cuts a turn."""
        self._stop_at_turn_end = True
        if self.status == "waiting_input":
            self.cancel("terminated")

    async def send(self, text: str) -> None:
        """The next user message (a ``keep_open`` session waits for it after each answer)."""
        if self.done or self._inbox_send is None:
            raise RuntimeError(f"session {self.run_id} has ended")
        await self._inbox_send.send(text)
        if self.status == "waiting_input":  # taken at once: wait_input() waits for the next
            self._set_status("running")

    def close_input(self) -> None:
        """No more messages: a ``keep_open`` session finishes once its current turn is done
        (a turn the user cancelled before does not make it fail)."""
        if self._inbox_send is not None:
            self._inbox_send.close()

    async def wait_input(self) -> bool:
        """Wait until a ``keep_open`` session waits for its next message (True) or has
        ended (False)."""
        await self._idle.wait()
        return not self.done

    async def switch(self, provider: str | None = None, model: str | None = None
                     ) -> ProviderHandle:
        """Send the next turns to provider entry ``provider`` (default: the current one)
        with ``model`` (default: the entry's configured model, or the current model when
        only the entry stays), within the entry's ``models`` allowlist; failover then goes
        to that entry's fallbacks. Raises ``ConfigError`` for an unknown entry or a model
        outside the allowlist. Returns the handle now driving the session."""
        conductor = self._conductor
        if conductor is None or self.done or self._handles is None:
            raise RuntimeError(f"session {self.run_id} is not running")
        if provider is None and model is None:
            raise ValueError("name a provider entry, a model, or both")
        current = conductor.providers[conductor.spec.order[0]]
        order = self._handles(provider or current.name, model)
        await conductor.switch(order)
        return order[0]

    @property
    def driver(self) -> ProviderHandle | None:
        """The provider entry and model the next turn goes to first."""
        c = self._conductor
        return None if c is None else c.providers[c.spec.order[0]]

    def send_nowait(self, text: str) -> None:
        """Like :meth:`send` without waiting: ``trio.WouldBlock`` when 16 messages are
        already waiting to be read."""
        if self.done or self._inbox_send is None:
            raise RuntimeError(f"session {self.run_id} has ended")
        try:
            self._inbox_send.send_nowait(text)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise RuntimeError(f"session {self.run_id} has ended") from exc

    async def compact(self, strategy: str | None = None) -> Compaction:
        """Compact the conversation now (``/compact``): ``context.strategy`` or the one
        given; says what it did (a ``context_compacted`` record when anything changed)."""
        if self.done or self._conductor is None:
            raise RuntimeError(f"session {self.run_id} is not running")
        return await self._conductor.compact(strategy)

    @property
    def pending_approvals(self) -> list[dict[str, Any]]:
        return [{"call_id": a.call.id, "name": a.call.name, "arguments": a.arguments}
                for a in self._approvals.values() if not a.done.is_set()]

    async def approve(self, call_id: str, allow: bool, reason: str | None = None, *,
                      always: bool = False, by: str | None = None) -> None:
        """Answer an ``approval: ask`` call. ``always`` allows every later call of the same
        tool in this session without asking."""
        a = self._approvals.get(call_id)
        if a is None or a.done.is_set():
            raise KeyError(f"no pending approval for call {call_id!r}")
        a.allow, a.reason = allow, reason or ("" if allow else "denied by the user")
        if allow and always:
            self._always.add(a.call.name)
        if self._recorder is not None:
            await self._recorder.emit(ApprovalDecision(call_id=call_id, allow=allow,
                                                       reason=reason, by=by,
                                                       always=allow and always))
        a.done.set()

    async def events(self, since: int = 0, *, deltas: bool = False, lossless: bool = True
                     ) -> AsyncIterator[Event]:
        """Every record after position ``since``, then live ones until the session ends.
        ``deltas`` adds live ``text_delta`` events. A reader that falls far behind never
        slows the session: with ``lossless`` it catches up from the journal, otherwise it
        gets :class:`Dropped`."""
        async for ev, _line in self.stream(since, deltas=deltas, lossless=lossless):
            yield ev

    async def stream(self, since: int = 0, *, deltas: bool = False, lossless: bool = True
                     ) -> AsyncIterator[tuple[Event, bytes | None]]:
        """Like :meth:`events` with each record's JSON line (``None`` for deltas)."""
        last = since
        while True:
            rec = self._recorder
            live = rec is not None and not rec.closed
            w = rec.watch(deltas=deltas) if live and rec is not None else None
            # a watcher joining mid-answer first gets what already streamed of it, unless it
            # saw that answer begin (a reconnection knows what it has shown)
            head = (rec.answer_so_far() if w is not None and deltas and rec is not None
                    and rec.answer_so_far is not None else ("", "", 0))
            seen_start = last >= head[2] > 0
            replay: list[tuple[RecordBase, bytes]] | None = None
            if w is not None and rec is not None:
                start = rec.recent[0][0].seq - 1 if rec.recent else rec.seq
                if last >= start:  # everything after `last` is still in memory
                    replay = list(rec.recent)
                else:
                    try:
                        await rec.flush()
                    except (trio.BrokenResourceError, trio.ClosedResourceError, JournalError):
                        pass
            if replay is None:
                replay = await offload(read_journal, self.run_dir, last)
            for ev, line in replay:
                if ev.seq > last:
                    last = ev.seq
                    yield ev, line  # type: ignore[misc]
            if w is None:
                return
            if head[0] and rec is not None and not seen_start:
                yield rec.delta_event(head[0], head[1]), None
            async with w.recv:
                async for ev, wline in w.recv:
                    if wline is not None:
                        if ev.seq <= last:
                            continue
                        last = ev.seq
                    yield ev, wline  # type: ignore[misc]
            if not w.overflowed:
                return
            if not lossless:
                raise Dropped(last)

    async def warn(self, message: str, code: str = "other") -> None:
        """A warning in this session's transcript from outside the conductor (a hook that
        failed, the engine); nothing when the session has ended."""
        from .records import WarningRecord

        if self._recorder is not None and not self._recorder.closed:
            await self._recorder.emit(WarningRecord(message=message, code=code))  # type: ignore[arg-type]

    # ---- approvals, asked by the conductor -----------------------------------------------

    async def ask(self, call: ToolCallPart, arguments: Any) -> tuple[bool, str]:
        if call.name in self._always:
            return True, ""
        if self.on_approval != "wait":
            return False, (f"approval required but nobody can answer; set "
                           f"tools.approval.{call.name}: auto to allow")
        a = self._approvals[call.id] = _Approval(call, arguments)
        previous = self.status
        self.status = "waiting_approval"
        assert self._recorder is not None
        await self._recorder.emit(ApprovalRequest(call_id=call.id, name=call.name,
                                                  arguments=arguments))
        try:
            await a.done.wait()
        finally:
            self._approvals.pop(call.id, None)
            self.status = previous
        return a.allow, a.reason

    # ---- the session task ---------------------------------------------------------------

    @property
    def turn(self) -> int:
        return self._recorder.turn if self._recorder is not None else 0

    @property
    def last_seq(self) -> int:
        """The position of the last record written so far (a reader that has seen it is
        up to date)."""
        return self._recorder.seq if self._recorder is not None else 0

    @property
    def totals(self) -> dict[str, Any]:
        """Token and cost totals so far (the final ones once it has ended)."""
        if self._result is not None:
            return self._result.totals
        return self._recorder.accounts.totals() if self._recorder is not None else {}

    async def run(self, make: Callable[[Recorder, trio.MemorySendChannel[StateMsg]], Conductor],
                  *, task: str | None, redactor: Redactor, key: bytes | None,
                  restored: Restored | None, slots: trio.CapacityLimiter | None,
                  started_at: float, on_record: Callable[[RecordBase], None] | None = None,
                  task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The session task: actors up, the conductor runs, the folder is closed on every
        path (see the module docstring)."""
        folder = RunFolder(self.run_dir)
        accounts = restored.accounts if restored is not None else Accounts()
        final: Outcome = outcome("error", message="the session did not start")
        summary: dict[str, Any] = {}
        journal_failure: BaseException | None = None
        try:
            async with trio.open_nursery() as nursery:
                exited = trio.Event()
                journal = await nursery.start(
                    lambda task_status: journal_actor(folder, slots=slots, exited=exited,
                                                      task_status=task_status))
                rec = self._recorder = Recorder(self.run_id, journal, redactor, accounts,
                                                seq=restored.seq if restored else 0,
                                                on_record=on_record, journal_exited=exited,
                                                tee=self.tee)
                async with journal:
                    state = await nursery.start(
                        lambda task_status: state_actor(self.run_id, rec, key=key,
                                                        task_status=task_status))
                    task_status.started()
                    self.status = "running"
                    async with state:
                        conductor = make(rec, state)
                        final = await self._drive(conductor, task, restored)
                        summary = await self._close(conductor, state, final, started_at)
                    rec.close()
        except JournalError as exc:
            journal_failure = exc
        except BaseExceptionGroup as group:
            failures = group.subgroup(JournalError)
            if failures is None:
                raise
            journal_failure = failures.exceptions[0]
        finally:
            if self._recorder is not None:
                self._recorder.close()
            if journal_failure is not None:
                final = outcome("error", message=f"the run folder could not be written, so "
                                f"the run is not closed and may not resume: {journal_failure}")
            self.status = final.status
            self._result = SessionResult(
                self.run_id, self.run_dir, final.status, final.exit_code, final.answer,
                final.message, self.turn, accounts.totals(), summary)
            self._done.set()
            self._idle.set()

    def _set_turn_scope(self, scope: trio.CancelScope | None) -> None:
        self._turn_scope = scope

    def _set_status(self, status: str) -> None:
        self.status = status
        if status == "waiting_input":
            self._idle.set()
        elif self._idle.is_set():
            self._idle = trio.Event()

    def _stopping(self) -> bool:
        return self._stop_at_turn_end

    async def _drive(self, conductor: Conductor, task: str | None,
                     restored: Restored | None) -> Outcome:
        conductor.on_status = self._set_status
        conductor.on_turn_scope = self._set_turn_scope
        self._conductor = conductor
        conductor.should_stop = self._stopping
        result: Outcome | None = None
        try:
            with self._scope:
                result = await conductor.run(task, self._inbox_recv, restored)
        except Exception as exc:  # a bug or a dead actor: reported, and the folder closed
            result = outcome("error", message=f"{type(exc).__name__}: {exc}")
        finally:
            if self._inbox_send is not None:
                self._inbox_send.close()
        if result is not None:
            return result
        status = self._cancel_status
        return outcome(status, message={
            "interrupted": "interrupted by the user (Ctrl-C)",
            "terminated": "terminated by a signal (SIGTERM)",
            "cancelled": "cancelled"}.get(status, status))

    async def _close(self, conductor: Conductor, state: trio.MemorySendChannel[StateMsg],
                     final: Outcome, started_at: float) -> dict[str, Any]:
        """``session_end``, ``state.json`` and ``summary.json``, whatever happened."""
        rec = conductor.rec
        with trio.CancelScope(shield=True):
            acc = rec.accounts
            totals = acc.totals()
            await rec.emit(SessionEnd(status=final.status, exit_code=final.exit_code,
                                      turns=rec.turn, totals=totals,
                                      message=final.message or None))
            order = list(conductor.spec.order)
            queued = trio.Event()
            await state.send(Checkpoint(list(conductor.chat.messages), rec.turn, rec.seq,
                                        final.status, {"totals": totals, "order": order,
                                                       "provider": order[0]}, queued))
            ended = time.time()
            summary = {
                "run_id": self.run_id, "status": final.status, "exit_code": final.exit_code,
                "turns": rec.turn, "runs": acc.runs, "message": final.message or None,
                "started_at": started_at, "ended_at": ended,
                "duration_s": round(ended - started_at, 6),
                "providers": {k: v.to_dict() for k, v in acc.providers.items()},
                "totals": totals,
                "tools": {"calls": acc.tool_calls, "rejected": acc.tool_rejected,
                          "errors": acc.tool_errors},
            }
            await rec.write_json("summary.json", summary)
            await queued.wait()  # state.json is in the journal: the last flush covers it
            await rec.flush()
        return summary
