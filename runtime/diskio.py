"""Short disk writes on a few long-lived worker threads.

The journal writes a batch before every request (what the run saw is on disk before the
next step) and must not block the event loop while it does. ``trio.to_thread.run_sync``
does that, at ~70-100 µs of CPU per call on this kind of machine, most of it its own
bookkeeping (a thread from the cache, a context copy, a limiter) rather than the write
(~5 µs for an append of a few KB). A turn writes once or twice, so that hop was a fifth of
a turn's CPU.

:func:`run_write` hands the call to one of ``THREADS`` worker threads that live as long as
the process (as trio's own thread cache does) over a ``queue.SimpleQueue``, and is woken
back through the run's ``TrioToken``: about 40 % cheaper. The calls must be short (an
append, a small file replaced): a long read would hold a worker that every session's
journal shares; those keep using :func:`trio.to_thread.run_sync`. Callers reach both through
``runtime.session.journal.offload`` (``short=True`` for this one). Like ``run_sync``, the wait
cannot be cancelled: a write that started finishes, and its result (or exception) comes back.
Each worker holds at most one file open at a time, so this never needs descriptors beyond
``THREADS``.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import outcome
import trio

__all__ = ["THREADS", "run_write"]

THREADS = 2  # a stalled disk holds back every journal of the process either way

T = TypeVar("T")

Job = tuple[Callable[[], Any], Callable[[outcome.Outcome[Any]], None]]


class _Workers:
    __slots__ = ("jobs", "lock", "pid")

    def __init__(self) -> None:
        self.jobs: queue.SimpleQueue[Job] = queue.SimpleQueue()
        self.lock = threading.Lock()
        self.pid = 0  # the process the threads were started in (a fork has none)

    def submit(self, job: Job) -> None:
        if self.pid != os.getpid():
            self._start()
        self.jobs.put(job)

    def _start(self) -> None:
        with self.lock:
            if self.pid == os.getpid():
                return
            self.jobs = queue.SimpleQueue()  # a forked child starts with an empty queue
            for i in range(THREADS):
                threading.Thread(target=self._serve, args=(self.jobs,),
                                 name=f"conductor-disk-{i}", daemon=True).start()
            self.pid = os.getpid()

    @staticmethod
    def _serve(jobs: queue.SimpleQueue[Job]) -> None:
        while True:
            fn, deliver = jobs.get()
            try:
                deliver(outcome.capture(fn))
            except trio.RunFinishedError:
                pass  # the run that asked has ended: nobody is left to tell; serve the next


_workers = _Workers()


async def run_write(fn: Callable[..., T], *args: Any,
                    limiter: trio.CapacityLimiter | None = None) -> T:
    """``fn(*args)`` on a disk worker thread; its result, or its exception raised here.
    ``limiter`` (the engine's file slots) is held for the call."""
    if limiter is not None:
        try:
            limiter.acquire_nowait()
        except trio.WouldBlock:
            await limiter.acquire()
    try:
        task = trio.lowlevel.current_task()
        token = trio.lowlevel.current_trio_token()

        def deliver(result: outcome.Outcome[Any]) -> None:
            token.run_sync_soon(trio.lowlevel.reschedule, task, result)

        _workers.submit((lambda: fn(*args), deliver))
        return await trio.lowlevel.wait_task_rescheduled(  # type: ignore[no-any-return]
            lambda _: trio.lowlevel.Abort.FAILED)
    finally:
        if limiter is not None:
            limiter.release()
