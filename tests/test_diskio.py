"""run_write: short disk calls on the long-lived disk worker threads."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
import trio
import trio.testing

from runtime.diskio import run_write


async def test_the_call_runs_off_the_event_loop_and_its_result_comes_back(tmp_path: Path) -> None:
    """The call runs on a thread other than the event loop's, and its return value comes back."""
    seen: list[int] = []

    def append(path: Path, data: bytes) -> int:
        seen.append(threading.get_ident())
        with open(path, "ab") as f:
            return f.write(data)

    target = tmp_path / "t.jsonl"
    assert await run_write(append, target, b"one\n") == 4
    assert await run_write(append, target, b"two\n") == 4
    assert target.read_bytes() == b"one\ntwo\n"
    assert threading.get_ident() not in seen


async def test_an_exception_of_the_call_is_raised_in_the_caller(tmp_path: Path) -> None:
    """An exception raised by the call is raised in the caller, and the worker lives on."""
    def fail() -> None:
        os.open(tmp_path / "missing" / "x", os.O_RDONLY)

    with pytest.raises(FileNotFoundError):
        await run_write(fail)
    assert await run_write(lambda: 7) == 7  # the worker survived it


async def test_the_limiter_is_held_for_the_call_and_waited_for_when_taken() -> None:
    """The limiter is held while the call runs; a second caller waits for it instead of
    running beside the first."""
    slots = trio.CapacityLimiter(1)
    inside: list[float] = []
    release = threading.Event()

    def slow() -> str:
        inside.append(slots.borrowed_tokens)
        release.wait(10)
        return "slow"

    results: list[str] = []

    async def call(fn: object) -> None:
        results.append(await run_write(fn, limiter=slots))  # type: ignore[arg-type]

    async with trio.open_nursery() as nursery:
        nursery.start_soon(call, slow)
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(call, lambda: "second")
        await trio.testing.wait_all_tasks_blocked()
        assert slots.borrowed_tokens == 1 and slots.statistics().tasks_waiting == 1
        assert results == []  # the second waits for the slot, not running beside the first
        release.set()
    assert results == ["slow", "second"] and inside == [1]
    assert slots.borrowed_tokens == 0


async def test_a_waiting_caller_cannot_be_cancelled_out_of_a_started_write(tmp_path: Path) -> None:
    """Like ``trio.to_thread.run_sync``: a write that started finishes and reports back, even
    when the caller's scope is cancelled meanwhile (a cancelled session's batch is on disk)."""
    gate = threading.Event()
    target = tmp_path / "t"

    def write() -> None:
        gate.wait(10)
        target.write_bytes(b"done")

    returned: list[str] = []

    async def caller() -> None:
        await run_write(write)
        returned.append("after the write")  # reached: the wait was not cancelled

    with trio.CancelScope() as scope:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(caller)
            await trio.testing.wait_all_tasks_blocked()
            scope.cancel()
            gate.set()
    assert returned == ["after the write"]
    assert target.read_bytes() == b"done"


def test_a_worker_outlives_a_run_that_ended_before_it_could_be_told() -> None:
    """A result that can no longer be delivered (its trio run has ended) does not end the
    worker thread: every worker still serves the next call."""
    import runtime.diskio as diskio

    def gone(_: object) -> None:
        raise trio.RunFinishedError("that run has ended")

    served = threading.Semaphore(0)
    for _ in range(diskio.THREADS):
        diskio._workers.submit((lambda: None, gone))
    for _ in range(diskio.THREADS * 2):
        diskio._workers.submit((lambda: None, lambda _: served.release()))
    assert all(served.acquire(timeout=10) for _ in range(diskio.THREADS * 2))
    workers = [t for t in threading.enumerate() if t.name.startswith("conductor-disk-")]
    assert len(workers) == diskio.THREADS and all(t.is_alive() for t in workers)
