"""Following a session from outside: every record to a callback, approvals to an asker.

The command line, ``run_session`` and users' programs are such clients: ``follow`` reads
``Session.events()`` until the session ends, hands each event to ``on_event``, answers each
``approval_request`` with ``asker(prompt) -> bool`` (plain, run in a worker thread so it may
block on a terminal, or async), and returns the session's result.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
import trio

from .handle import Session
from .outcome import SessionResult
from .records import ApprovalRequest, Event

__all__ = ["Asker", "follow", "prompt_of"]

Asker = Callable[[str], bool | Awaitable[bool]]
_ARGS_PREVIEW = 500


def prompt_of(name: str, arguments: Any) -> str:
    """The question put to a person about one call."""
    args = msgspec.json.encode(arguments or {}).decode()
    if len(args) > _ARGS_PREVIEW:
        args = args[:_ARGS_PREVIEW] + f"... ({len(args) - _ARGS_PREVIEW} more characters)"
    return f"\nThe model wants to run {name} {args}\nAllow? [y/N] "


async def _ask(asker: Asker, prompt: str) -> bool:
    if inspect.iscoroutinefunction(asker):
        answer: Any = await asker(prompt)
    else:
        answer = await trio.to_thread.run_sync(asker, prompt, abandon_on_cancel=True)
        if inspect.isawaitable(answer):
            answer = await answer
    return answer is True


async def follow(session: Session, on_event: Callable[[Event], None] | None = None, *,
                 asker: Asker | None = None, deltas: bool = False) -> SessionResult:
    """Read ``session`` to its end (see the module docstring)."""
    async with trio.open_nursery() as nursery:

        async def approve(ev: ApprovalRequest) -> None:
            assert asker is not None
            try:
                allowed = await _ask(asker, prompt_of(ev.name, ev.arguments))
            except Exception as exc:
                await session.approve(ev.call_id, False, f"approval prompt failed "
                                      f"({type(exc).__name__}: {exc}); the call was not run")
                return
            await session.approve(ev.call_id, allowed,
                                  None if allowed else f"the user declined to run {ev.name}")

        async for ev in session.events(deltas=deltas):
            if on_event is not None:
                on_event(ev)
            if type(ev) is ApprovalRequest and asker is not None:
                nursery.start_soon(approve, ev)
        nursery.cancel_scope.cancel()
    return await session.result()
