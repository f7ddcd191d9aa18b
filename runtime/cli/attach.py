"""The command line as a client of the engine: one session, watched on the console.

``attach`` reads a session's records and renders them (``Console``), answers its approval
requests on the terminal, and returns its result. ``run`` opens the engine, starts (or
resumes) the session, turns SIGINT / SIGTERM into a cancellation of the session
(``interrupted``, exit 130 / ``terminated``, exit 143: the run folder is closed and stays
resumable; a second Ctrl-C stops at once) and prints the closing line.
"""

from __future__ import annotations

import inspect
import signal
import threading
from typing import Any

import trio

from ..config import AgentConfig
from ..engine import Engine
from ..session.client import follow
from ..session.handle import Session
from ..session.outcome import SessionResult
from ..session.records import Event
from ..tools.approval import Asker, terminal_asker
from .console import Console
from .status import Screen

__all__ = ["attach", "run", "terminal_asker"]


async def attach(session: Session, console: Console, *, asker: Asker | None = None,
                 screen: Screen | None = None) -> SessionResult:
    """Render ``session`` on ``console`` until it ends, answering approvals with ``asker``;
    with a ``screen``, under a live status line (taken away for approval prompts)."""
    streamed = console.stream_answer
    render = console.render
    if screen is not None and screen.enabled:
        def render(ev: Event) -> None:
            screen.event(ev)
            console.render(ev)

        if asker is not None:
            asker = _paused(asker, screen)
        screen.start()
    try:
        async with trio.open_nursery() as nursery:
            if screen is not None and screen.enabled:
                nursery.start_soon(screen.tick)
            result = await follow(session, render, asker=asker,
                                  deltas=streamed or (screen is not None and screen.enabled))
            nursery.cancel_scope.cancel()
    finally:
        if screen is not None:
            screen.stop()
    console.finish(result, streamed=streamed)
    return result


def _paused(asker: Asker, screen: Screen) -> Asker:
    """An asker that takes the status line away while it asks."""

    async def ask(prompt: str) -> bool:
        with screen.paused():
            answer = await trio.to_thread.run_sync(asker, prompt, abandon_on_cancel=True)
            if inspect.isawaitable(answer):
                answer = await answer
        return answer is True

    return ask


async def _signals(session: Session, *, task_status: trio.TaskStatus[None]) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        task_status.started()
        async for sig in signals:
            if sig == signal.SIGTERM:
                session.cancel("terminated")
            elif session.done or session.status == "interrupted" or _interrupted(session):
                raise KeyboardInterrupt
            else:
                session.cancel("interrupted")


def _interrupted(session: Session) -> bool:
    return getattr(session, "_cancel_status", None) == "interrupted" and \
        session._scope.cancel_called


async def run(cfg: AgentConfig, console: Console, *, task: str | None, run_id: str | None,
              resume: str | None, environ: dict[str, str] | None = None,
              signals: bool = True, screen: Screen | None = None, folder: Any = None,
              **engine_options: Any) -> SessionResult:
    """One session from the command line (see the module docstring)."""
    asker = terminal_asker()
    async with Engine.open(cfg, environ=environ, mcp_errlog=console.err,
                           **engine_options) as engine:
        if engine.key_warning:
            console.line(f"warning: {engine.key_warning}", code="trace_key")
        session = await engine.start(task, resume=resume, run_id=run_id, folder=folder,
                                     on_approval="wait" if asker else "deny")
        async with trio.open_nursery() as nursery:
            if signals and threading.current_thread() is threading.main_thread():
                await nursery.start(_signals, session)
            result = await attach(session, console, asker=asker, screen=screen)
            nursery.cancel_scope.cancel()
    return result
