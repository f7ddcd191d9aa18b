"""The journal actor: the run folder as an append-only journal, written off the event loop."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
import trio
import trio.testing

from runtime.session.journal import (
    AppendBytes,
    AppendError,
    Flush,
    JournalError,
    JournalMsg,
    Lines,
    RunFolder,
    WriteFile,
    journal_actor,
)


def one_line(data: bytes) -> Lines:
    """A ``Lines`` message of one transcript line, as the recorder starts one."""
    lines = Lines()
    lines.add(data)
    return lines


def folder(tmp_path: Path) -> RunFolder:
    f = RunFolder(tmp_path / "run1")
    f.create(exist_ok=False)
    return f


async def test_a_flush_returns_once_everything_before_it_is_on_disk(tmp_path: Path) -> None:
    """Lines, error records, whole files and raw frames are on disk when the flush returns."""
    f = folder(tmp_path)
    async with trio.open_nursery() as nursery:
        send = await nursery.start(journal_actor, f)
        async with send:
            await send.send(one_line(b'{"type": "warning", "n": 1}'))
            await send.send(AppendError(2, {"kind": "server"}))
            await send.send(AppendError(2, {"kind": "timeout"}))
            await send.send(WriteFile("summary.json", b'{"status": "ok"}\n'))
            await send.send(AppendBytes("reasoning.enc", b"\x00\x01"))
            done = trio.Event()
            await send.send(Flush(done))
            await done.wait()
            [line] = (f.path / "transcript.jsonl").read_text().splitlines()
            assert json.loads(line) == {"type": "warning", "n": 1}
            errors = json.loads((f.path / "errors" / "turn_2.json").read_text())
            assert [e["kind"] for e in errors] == ["server", "timeout"]
            assert json.loads((f.path / "summary.json").read_text()) == {"status": "ok"}
            assert (f.path / "reasoning.enc").read_bytes() == b"\x00\x01"


async def test_the_folder_is_private(tmp_path: Path) -> None:
    """The run folder is 0700 and every file in it 0600, whatever the umask."""
    old = os.umask(0o022)
    try:
        f = folder(tmp_path)
        async with trio.open_nursery() as nursery:
            send = await nursery.start(journal_actor, f)
            async with send:
                await send.send(one_line(b"{}"))
                await send.send(AppendError(1, {"kind": "server"}))
                await send.send(WriteFile("state.json", b"{}"))
                await send.send(AppendBytes("reasoning.enc", b"x"))
    finally:
        os.umask(old)
    assert stat.S_IMODE(f.path.stat().st_mode) == 0o700
    assert stat.S_IMODE((f.path / "errors").stat().st_mode) == 0o700
    files = [p for p in f.path.rglob("*") if p.is_file()]
    assert len(files) == 4
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in files)


async def test_a_full_disk_slot_pool_pushes_back_on_the_producer(tmp_path: Path) -> None:
    """While no file slot is free, the actor waits with one batch in hand and the bounded
    mailbox fills: the producer blocks instead of growing a queue."""
    f = folder(tmp_path)
    slots = trio.CapacityLimiter(1)
    produced = 0

    async def producer(send: trio.MemorySendChannel[JournalMsg]) -> None:
        nonlocal produced
        async with send:
            for i in range(100):
                await send.send(one_line(b'{"n": %d}' % i))
                produced += 1

    await slots.acquire_on_behalf_of("the test")
    async with trio.open_nursery() as nursery:
        send = await nursery.start(
            lambda task_status: journal_actor(f, slots=slots, bound=8, task_status=task_status))
        nursery.start_soon(producer, send)
        await trio.testing.wait_all_tasks_blocked()
        # a batch in hand waits for a slot, the mailbox is full, the producer is blocked
        assert send.statistics().current_buffer_used == 8
        assert send.statistics().tasks_waiting_send == 1
        assert produced < 100
        slots.release_on_behalf_of("the test")
    assert produced == 100
    assert len((f.path / "transcript.jsonl").read_text().splitlines()) == 100


async def test_no_descriptor_is_held_between_writes(tmp_path: Path) -> None:
    """Between batches the actor holds no open file of the run folder."""
    f = folder(tmp_path)
    async with trio.open_nursery() as nursery:
        send = await nursery.start(journal_actor, f)
        async with send:
            await send.send(one_line(b"{}"))
            done = trio.Event()
            await send.send(Flush(done))
            await done.wait()
            opened = [os.readlink(f"/proc/self/fd/{fd}") for fd in os.listdir("/proc/self/fd")
                      if os.path.exists(f"/proc/self/fd/{fd}")]
            assert not [p for p in opened if p.startswith(str(f.path))]


async def test_an_unwritable_folder_ends_the_actor_with_a_journal_error(tmp_path: Path) -> None:
    """A write that cannot succeed (the folder is gone) is a JournalError naming the folder."""
    f = folder(tmp_path)
    with pytest.RaisesGroup(pytest.RaisesExc(JournalError, match="run1")):
        async with trio.open_nursery() as nursery:
            send = await nursery.start(journal_actor, f)
            os.rmdir(f.path)
            async with send:
                await send.send(one_line(b"{}"))


async def test_lines_grow_until_taken_and_a_flush_covers_them(tmp_path: Path) -> None:
    """A ``Lines`` message keeps taking lines after it was sent, until the actor writes it
    (``taken``); a flush sent after the last line covers every line, in order."""
    f = folder(tmp_path)
    async with trio.open_nursery() as nursery:
        send = await nursery.start(journal_actor, f)
        async with send:
            lines = Lines()
            lines.add(b'{"n": 0}')
            await send.send(lines)
            await trio.testing.wait_all_tasks_blocked()  # the actor holds it, unwritten
            assert not lines.taken
            lines.add(b'{"n": 1}')
            lines.add(b'{"n": 2}')
            await send.send(one_line(b'{"n": 3}'))
            done = trio.Event()
            await send.send(Flush(done))
            await done.wait()
            assert lines.taken
    got = [json.loads(x) for x in (f.path / "transcript.jsonl").read_text().splitlines()]
    assert got == [{"n": 0}, {"n": 1}, {"n": 2}, {"n": 3}]


async def test_lines_of_64_kib_are_written_without_a_flush(tmp_path: Path) -> None:
    """A batch whose lines reach 64 KiB is written when the next message arrives, without
    waiting for a flush or the linger time."""
    f = folder(tmp_path)
    async with trio.open_nursery() as nursery:
        send = await nursery.start(
            lambda task_status: journal_actor(f, linger=3600, task_status=task_status))
        async with send:
            lines = Lines()
            await send.send(lines)
            lines.add(b'"' + b"x" * (1 << 16) + b'"')
            await send.send(Lines())
            await trio.testing.wait_all_tasks_blocked()  # the actor is writing it
            assert lines.taken


async def test_an_ending_actor_stops_every_lines_from_growing(tmp_path: Path) -> None:
    """When the actor ends without writing them, held and queued ``Lines`` are marked taken,
    so a sender starts a new message (and finds the mailbox closed) instead of adding to
    one nobody will write."""
    f = folder(tmp_path)
    held, queued = Lines(), Lines()
    with pytest.RaisesGroup(pytest.RaisesExc(JournalError)):
        async with trio.open_nursery() as nursery:
            send = await nursery.start(
                lambda task_status: journal_actor(f, bound=4, task_status=task_status))
            held.add(b"{}")
            done = trio.Event()
            # queued before the actor runs: it takes the first three as a batch (the flush
            # ends it), fails to write it, and finds the last one still in its mailbox
            send.send_nowait(held)
            send.send_nowait(AppendBytes("../../outside/x", b"x"))  # cannot be written
            send.send_nowait(Flush(done))
            send.send_nowait(queued)
            await done.wait()
    assert held.taken and queued.taken


def test_repair_cuts_a_torn_last_line(tmp_path: Path) -> None:
    """A crash mid-write leaves a partial line; repair cuts it so appends start clean."""
    f = folder(tmp_path)
    path = f.path / "transcript.jsonl"
    path.write_bytes(b'{"a": 1}\n{"b": 2}\n{"c": ')
    assert f.repair() == len(b'{"c": ')
    assert path.read_bytes() == b'{"a": 1}\n{"b": 2}\n'
    assert f.repair() == 0
    path.write_bytes(b'{"only": "torn')
    f.repair()
    assert path.read_bytes() == b""


async def test_the_records_of_a_batch_reach_the_journal_as_one_message() -> None:
    """The recorder adds records to the ``Lines`` the journal has not taken yet: one message
    (one wake-up of the actor) per batch, a new one once it was taken."""
    from runtime.accounting import Accounts
    from runtime.redact import Redactor
    from runtime.session.recorder import Recorder
    from runtime.session.records import WarningRecord

    send, recv = trio.open_memory_channel[JournalMsg](16)
    rec = Recorder("run", send, Redactor(), Accounts())
    for i in range(3):
        await rec.emit(WarningRecord(message=f"w{i}"))
    [first] = [recv.receive_nowait()]
    assert isinstance(first, Lines) and len(first.lines) == 3
    assert send.statistics().current_buffer_used == 0
    first.taken = True  # the journal took it for a write
    await rec.emit(WarningRecord(message="w3"))
    second = recv.receive_nowait()
    assert isinstance(second, Lines) and [json.loads(x)["message"] for x in second.lines] == ["w3"]


def test_short_writes_are_carried_on_until_every_byte_is_written(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``os.write`` may write fewer bytes than asked (a signal, a nearly full disk): every
    file of a batch, appended or replaced whole, still ends up with all of its bytes."""
    real_write = os.write

    def short(fd: int, data: bytes | memoryview) -> int:
        return real_write(fd, bytes(data[:7]))

    f = folder(tmp_path)
    monkeypatch.setattr(os, "write", short)
    f.write_batch([Lines([b'{"type": "warning", "n": 1}', b'{"n": 2}']),
                   AppendError(2, {"kind": "server"}),
                   WriteFile("summary.json", b'{"status": "ok", "exit_code": 0}\n'),
                   AppendBytes("reasoning.enc", bytes(range(40)))])
    monkeypatch.undo()
    assert (f.path / "transcript.jsonl").read_bytes() == b'{"type": "warning", "n": 1}\n{"n": 2}\n'
    assert json.loads((f.path / "errors" / "turn_2.json").read_text()) == [{"kind": "server"}]
    assert json.loads((f.path / "summary.json").read_text()) == {"status": "ok", "exit_code": 0}
    assert (f.path / "reasoning.enc").read_bytes() == bytes(range(40))
