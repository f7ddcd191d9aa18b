"""The live status line: what the session is doing now, at the bottom of the terminal.

``StatusModel`` folds a session's events (records and live text deltas) into what the line
says — turn, tokens, cost, elapsed time, and the activity: waiting for the first token,
streaming, running a tool, retrying after an error, waiting for a circuit or an approval.
It is plain state (records in, text out; the clock is an argument).

``Screen`` draws it with ``rich`` (a transient ``Live`` on stderr) when stderr is a
terminal, and is silent otherwise. Everything else that reaches the terminal while the line
is up goes through the screen, so nothing garbles: lines for stderr are printed above the
status line, and when stdout is the same terminal the streamed answer is too — complete
lines above it, the line being written just above the status. When stdout is elsewhere (a
pipe, a file) the answer goes there untouched.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from typing import Any, TextIO

import attrs
from rich.console import Console as RichConsole
from rich.console import Group, RenderableType
from rich.live import Live
from rich.spinner import Spinner
from rich.text import Text

from ..accounting import Accounts
from ..session.records import (
    ApprovalDecision,
    ApprovalRequest,
    AssistantRecord,
    ContextCompacted,
    Event,
    ProviderErrorRecord,
    RequestRecord,
    SessionEnd,
    TextDelta,
    ToolResultRecord,
    ToolStart,
    TurnEnd,
    UserMessage,
    WarningRecord,
)

__all__ = ["Screen", "ScreenStream", "StatusModel", "is_terminal"]


def is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def _clock(seconds: float) -> str:
    s = max(0, int(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else \
        f"{s // 60:02d}:{s % 60:02d}"


@attrs.define
class StatusModel:
    """What the status line says, folded from a session's events (pure)."""

    started: float = 0.0                 # clock time the line started counting
    accounts: Accounts = attrs.field(factory=Accounts)
    turn: int = 0
    activity: str = "starting"
    since: float = 0.0                   # when the activity began
    until: float | None = None           # the end of a wait being counted down
    waiting_for: str = ""                # what the countdown waits for ("retrying in ...")
    tools: dict[str, str] = attrs.field(factory=dict)   # call id -> name, running
    approvals: dict[str, str] = attrs.field(factory=dict)

    def _set(self, activity: str, now: float, until: float | None = None) -> None:
        self.activity, self.since, self.until = activity, now, until

    def apply(self, ev: Event, now: float) -> None:
        """Fold one event in (``now`` is the clock time it arrived)."""
        t = type(ev)
        if t is not TextDelta:
            self.accounts.apply(ev)
        self.turn = max(self.turn, ev.turn)
        if t is TextDelta:
            if self.activity != "streaming":
                self._set("streaming", now)
        elif t is RequestRecord:
            assert isinstance(ev, RequestRecord)
            again = f" (attempt {ev.attempt})" if ev.attempt > 1 else ""
            self._set(f"waiting for the first token from {ev.provider}{again}", now)
        elif t is ProviderErrorRecord:
            assert isinstance(ev, ProviderErrorRecord)
            if ev.will_retry and ev.delay is not None:
                self.waiting_for = f"after {ev.kind}"
                self._set("retrying", now, now + ev.delay)
            else:
                self._set(f"{ev.provider} failed: {ev.kind}", now)
        elif t is WarningRecord:
            assert isinstance(ev, WarningRecord)
            if ev.code == "circuit_wait" and ev.delay is not None:
                self.waiting_for = f"for the circuit of {ev.provider}"
                self._set("circuit", now, now + ev.delay)
            elif ev.code == "failover":
                self._set(f"failing over to {ev.provider}", now)
        elif t is AssistantRecord:
            assert isinstance(ev, AssistantRecord)
            self._set("answer received" if ev.status == "complete" else "turn cancelled", now)
        elif t is ToolStart:
            assert isinstance(ev, ToolStart)
            self.tools[ev.call_id] = ev.name
            self._tools(now)
        elif t is ToolResultRecord:
            assert isinstance(ev, ToolResultRecord)
            self.tools.pop(ev.call_id, None)
            self._tools(now)
        elif t is ApprovalRequest:
            assert isinstance(ev, ApprovalRequest)
            self.approvals[ev.call_id] = ev.name
            self._set(f"waiting for approval of {ev.name}", now)
        elif t is ApprovalDecision:
            assert isinstance(ev, ApprovalDecision)
            self.approvals.pop(ev.call_id, None)
            self._tools(now)
        elif t is ContextCompacted:
            assert isinstance(ev, ContextCompacted)
            self._set(f"context compacted ({ev.strategy}: {ev.tokens_before:,} -> "
                      f"{ev.tokens_after:,} tokens)", now)
        elif t is UserMessage:
            self._set("sending", now)
        elif t is TurnEnd:
            self._set(f"turn {ev.turn} done", now)
        elif t is SessionEnd:
            assert isinstance(ev, SessionEnd)
            self._set(f"session {ev.status}", now)

    def _tools(self, now: float) -> None:
        if self.approvals:
            self._set(f"waiting for approval of {', '.join(self.approvals.values())}", now)
        elif self.tools:
            names = list(self.tools.values())
            label = "running tool" if len(names) == 1 else "running tools"
            self._set(f"{label} {', '.join(names)}", now)
        elif self.activity.startswith(("running tool", "waiting for approval")):
            self._set("tools done", now)

    def waiting(self, now: float) -> None:
        """The session waits for the user's next message."""
        self._set("waiting for your message", now)

    @property
    def busy(self) -> bool:
        """Something is under way (a spinner is shown)."""
        return not self.activity.startswith(("waiting for your", "session ", "turn "))

    def doing(self, now: float) -> str:
        """The activity, with its countdown or how long it has lasted."""
        if self.until is not None:
            left = max(0.0, self.until - now)
            what = "retrying" if self.activity == "retrying" else "waiting"
            return f"{what} in {left:.0f} s {self.waiting_for}"
        took = now - self.since
        if self.busy and took >= 1 and self.activity != "streaming":
            return f"{self.activity} ({took:.0f} s)"
        return self.activity

    def line(self, now: float) -> str:
        """The whole status line as plain text."""
        totals = self.accounts.usage.total_tokens
        return (f"turn {self.turn} · {totals:,} tokens · ${self.accounts.cost_usd:.4f} · "
                f"{_clock(now - self.started)} · {self.doing(now)}")


def _same_terminal(a: TextIO, b: TextIO) -> bool:
    try:
        sa, sb = os.fstat(a.fileno()), os.fstat(b.fileno())
    except (AttributeError, ValueError, OSError):
        return False
    return (sa.st_dev, sa.st_ino, sa.st_rdev) == (sb.st_dev, sb.st_ino, sb.st_rdev)


class Screen:
    """The terminal while a session runs: the status line, lines above it, the answer."""

    def __init__(self, out: TextIO, err: TextIO, *, live: bool | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.out = out
        self.err = err
        self.clock = clock
        self.enabled = is_terminal(err) if live is None else live
        self.same = self.enabled and is_terminal(out) and _same_terminal(out, err)
        self.model = StatusModel(started=clock())
        self.model.since = self.model.started
        self.console = RichConsole(file=err, highlight=False, markup=False, emoji=False)
        self._live: Live | None = None
        self._partial = ""          # answer text of the line being written (same terminal)
        self._spinner = Spinner("dots", style="cyan")

    # ---- the live line ----------------------------------------------------------------

    def _render(self) -> RenderableType:
        now = self.clock()
        status = Text(self.model.line(now), style="dim")
        head: RenderableType = status
        if self.model.busy:
            self._spinner.update(text=status)
            head = self._spinner
        if self._partial:
            return Group(Text(self._partial), head)
        return head

    def start(self) -> None:
        """Show the status line (when enabled)."""
        if self.enabled and self._live is None:
            self._live = Live(self._render(), console=self.console, transient=True,
                              auto_refresh=False, redirect_stdout=False,
                              redirect_stderr=False)
            self._live.start()

    def stop(self) -> None:
        """Take the status line away (the answer's open line is kept)."""
        live, self._live = self._live, None
        if live is not None:
            partial, self._partial = self._partial, ""
            live.stop()
            if partial:
                self.out_write(partial)

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """No status line for the duration (a prompt owns the terminal)."""
        was = self._live is not None
        self.stop()
        try:
            yield
        finally:
            if was:
                self.start()

    def refresh(self) -> None:
        if self._live is not None:
            self._live.update(self._render(), refresh=True)

    def event(self, ev: Event) -> None:
        """Fold an event into the status line."""
        self.model.apply(ev, self.clock())
        self.refresh()

    def waiting(self) -> None:
        self.model.waiting(self.clock())
        self.refresh()

    async def tick(self, period: float = 0.25) -> None:
        """Redraw the line (elapsed time, countdowns, spinner) until cancelled."""
        import trio

        while True:
            await trio.sleep(period)
            self.refresh()

    # ---- what goes to the terminal --------------------------------------------------

    def out_write(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()

    def answer(self, text: str) -> None:
        """Streamed answer text (stdout)."""
        if self._live is None or not self.same:
            self.out_write(text)
            return
        *lines, self._partial = (self._partial + text).split("\n")
        for line in lines:
            self.console.print(Text(line), soft_wrap=True)
        self.refresh()

    def note(self, text: str, style: str | None = None) -> None:
        """A line for stderr, above the status line."""
        if self._live is None:
            self.err.write(text + "\n")
            self.err.flush()
            return
        self.console.print(Text(text, style=style or ""), soft_wrap=True)
        self.refresh()


class ScreenStream:
    """A text stream for code that writes to stdout or stderr (the console, structlog): its
    writes go through the screen. Lines for stderr are held until their newline."""

    def __init__(self, screen: Screen, *, answer: bool) -> None:
        self.screen = screen
        self.is_answer = answer
        self._held = ""

    def write(self, text: str) -> int:
        if self.is_answer:
            self.screen.answer(text)
            return len(text)
        *lines, self._held = (self._held + text).split("\n")
        for line in lines:
            self.screen.note(line)
        return len(text)

    def flush(self) -> None:
        target = self.screen.out if self.is_answer else self.screen.err
        target.flush()

    def isatty(self) -> bool:
        return is_terminal(self.screen.out if self.is_answer else self.screen.err)

    def fileno(self) -> int:
        return (self.screen.out if self.is_answer else self.screen.err).fileno()
