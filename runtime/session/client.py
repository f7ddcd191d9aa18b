"""Following a session from outside: every record to a callback, approvals to an asker.

The command line, ``run_session`` and users' programs are such clients: ``follow`` reads
``Session.events()`` until the session ends, hands each event to ``on_event``, answers each
``approval_request`` with ``asker(prompt) -> bool`` (plain, run in a worker thread so it may
block on a terminal, or async), and returns the session's result.
"""

from __future__ import annotations

from collections.abc import Callable

import trio

from ..tools.approval import Asker, prompt_of, run_asker
from .handle import Session
from .outcome import SessionResult
from .records import ApprovalRequest, Event

__all__ = ["Asker", "follow"]

async def follow(session: Session, on_event: Callable[[Event], None] | None = None, *,
                 asker: Asker | None = None, deltas: bool = False) -> SessionResult:
    """Read ``session`` to its end (see the module docstring)."""
    async with trio.open_nursery() as nursery:

        async def approve(ev: ApprovalRequest) -> None:
            assert asker is not None
            try:
                allowed = await run_asker(asker, prompt_of(ev.name, ev.arguments))
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
