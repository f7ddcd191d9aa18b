"""The logger actor: redacts, writes and flushes each message; its bounded mailbox pushes back."""

from __future__ import annotations

import json
from pathlib import Path

import trio
import trio.testing

from runtime.logger import Barrier, ErrorRecord, LogMsg, Record, WriteFile, logger_actor
from runtime.redact import Redactor


async def test_each_record_is_on_disk_before_the_next_is_taken(tmp_path: Path) -> None:
    """A record is readable from the file as soon as the logger took the next message."""
    async with trio.open_nursery() as nursery:
        send = await nursery.start(logger_actor, tmp_path, "run1", Redactor(["sekrit-123"]))
        async with send:
            await send.send(Record("warning", 1, {"message": "key sekrit-123 leaked"}))
            done = trio.Event()
            await send.send(Barrier(done))
            await done.wait()
            [line] = (tmp_path / "transcript.jsonl").read_text().splitlines()
            rec = json.loads(line)
            assert (rec["run_id"], rec["turn"], rec["type"]) == ("run1", 1, "warning")
            assert rec["message"] == "key [REDACTED] leaked" and "ts" in rec
            await send.send(ErrorRecord(2, {"kind": "server"}))
            await send.send(ErrorRecord(2, {"kind": "timeout"}))
            await send.send(WriteFile("summary.json", {"status": "ok"}))
    errors = json.loads((tmp_path / "errors" / "turn_2.json").read_text())
    assert [e["kind"] for e in errors] == ["server", "timeout"]
    assert json.loads((tmp_path / "summary.json").read_text()) == {"status": "ok"}


async def test_slow_logger_slows_the_producer(tmp_path: Path) -> None:
    """With a stalled disk the producer blocks after `bound` messages instead of queueing more."""
    gate = trio.Event()
    produced = 0

    async def slow_disk(msg: LogMsg) -> None:
        await gate.wait()

    async def producer(send: trio.MemorySendChannel[LogMsg]) -> None:
        nonlocal produced
        async with send:
            for i in range(1000):
                await send.send(Record("tick", i))
                produced += 1

    async with trio.open_nursery() as nursery:
        send = await nursery.start(lambda task_status: logger_actor(
            tmp_path, "r", Redactor(), bound=8, before_write=slow_disk, task_status=task_status))
        nursery.start_soon(producer, send)
        await trio.testing.wait_all_tasks_blocked()
        # the logger holds one message in hand, the mailbox holds `bound`
        assert produced == 8 + 1
        assert send.statistics().current_buffer_used == 8
        gate.set()
    assert produced == 1000
    assert len((tmp_path / "transcript.jsonl").read_text().splitlines()) == 1000
