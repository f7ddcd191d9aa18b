"""The journal actor: the only writer of a run folder, an append-only journal.

The run folder ``logging/<run_id>/`` (directory 0700, files 0600):

* ``transcript.jsonl`` — one record a line, appended; never rewritten;
* ``errors/turn_<n>.json`` — every provider failure of turn n, a JSON list;
* ``reasoning.enc`` — encrypted reasoning frames, appended;
* ``state.json`` and ``summary.json`` — replaced whole (atomically) at checkpoints.

Messages arrive already redacted and encoded (the session does that once per record, on the
way to every consumer). The actor gathers them into a batch and writes the batch in a worker
thread (one of the process's long-lived disk workers, :mod:`runtime.diskio`; :func:`offload`
is the one way to the disk off the event loop, for short writes and long reads alike), so
the event loop never waits on the disk, and a file is open only while a batch is
being written: a session holds no file descriptor between writes. A batch is written when a
``Flush`` arrives, when it holds ``bound`` messages or 64 KiB, when ``linger`` seconds have
passed since its first message, or when the mailbox closes: a turn costs one trip to a
worker thread (the conductor's flush before each request), not one per record. The
session's records come as one ``Lines`` message per batch, which the recorder keeps
appending to until the actor takes it for a write (``taken``): a batch of records wakes the
actor once, not once per record. A
process-wide ``CapacityLimiter`` (the engine's file slots) bounds how many batches are
written at once, so thousands of sessions share a bounded number of descriptors. ``Flush``
is a barrier: its event is set once everything before it is on disk (a tool that may not run
twice starts only after its ``tool_start`` record is written); when the actor ends without
writing it, the event is set too and ``written`` stays False.

A failure to write (disk full, permission) ends the actor with :class:`JournalError`; a
transient shortage of descriptors (EMFILE, ENFILE) is waited out first.
"""

from __future__ import annotations

import errno
import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import attrs
import msgspec
import trio

from ..diskio import run_write

__all__ = [
    "MAX_BATCH_BYTES",
    "AppendBytes",
    "AppendError",
    "Flush",
    "JournalError",
    "JournalMsg",
    "Lines",
    "RunFolder",
    "WriteFile",
    "append_file",
    "journal_actor",
    "offload",
    "receive_batch",
    "replace_file",
]

DIR_MODE = 0o700
FILE_MODE = 0o600
TRANSCRIPT = "transcript.jsonl"
_BATCH = 512
MAX_BATCH_BYTES = 1 << 16  # a batch this large is written without waiting for a flush
LINGER = 0.5           # seconds a record may wait in memory for the next flush
_SCARCE = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.EAGAIN})


@attrs.define(eq=False)
class Lines:
    """Transcript lines (encoded and redacted, without their newlines) that the sender may
    keep adding to (``add``) until the journal takes them for a write: then ``taken`` is
    set, and the sender starts a new ``Lines``. One message, one wake-up of the actor, for
    every record of a batch."""

    lines: list[bytes] = attrs.field(factory=list)
    size: int = 0
    taken: bool = False

    def add(self, line: bytes) -> None:
        self.lines.append(line)
        self.size += len(line)


@attrs.frozen
class AppendError:
    """One provider failure for ``errors/turn_<turn>.json`` (already redacted)."""

    turn: int
    record: dict[str, Any]


@attrs.frozen
class WriteFile:
    """A whole file, replaced atomically (``summary.json``, ``state.json``)."""

    name: str
    data: bytes


@attrs.frozen
class AppendBytes:
    """Raw bytes appended to a file (``reasoning.enc`` frames, encrypted: never redacted)."""

    name: str
    data: bytes


@attrs.define(eq=False)
class Flush:
    """Set ``done`` once everything queued before this message is on disk (``written``), or
    once the actor ended without writing it (``written`` stays False)."""

    done: trio.Event
    written: bool = False


JournalMsg = Lines | AppendError | WriteFile | AppendBytes | Flush


class JournalError(Exception):
    """The run folder could not be written; the cause is attached."""


class RunFolder:
    """Synchronous writes into one run folder (called in a worker thread by the actor)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._errors: dict[int, list[Any]] = {}
        self.lines = 0

    def create(self, *, exist_ok: bool) -> None:
        """Make the folder private (0700), refusing an existing non-empty one unless
        ``exist_ok``."""
        if self.path.exists() and not exist_ok and any(self.path.iterdir()):
            raise FileExistsError(str(self.path))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.mkdir(mode=DIR_MODE, exist_ok=True)
        os.chmod(self.path, DIR_MODE)

    def repair(self) -> int:
        """Cut a torn last line (a crash mid-write) off the transcript before appending to
        it again; returns the number of bytes cut."""
        target = self.path / TRANSCRIPT
        try:
            size = target.stat().st_size
        except FileNotFoundError:
            return 0
        if size == 0:
            return 0
        with open(target, "rb+") as f:
            f.seek(size - 1)
            if f.read(1) == b"\n":
                return 0
            keep, pos = 0, size
            while pos > 0:
                step = min(65536, pos)
                pos -= step
                f.seek(pos)
                cut = f.read(step).rfind(b"\n")
                if cut >= 0:
                    keep = pos + cut + 1
                    break
            f.truncate(keep)
            return size - keep

    def write_batch(self, batch: list[JournalMsg]) -> None:
        """Write one batch: transcript lines in one append, then the other files."""
        lines: list[bytes] = []
        for m in batch:
            if type(m) is Lines:
                lines += m.lines  # type: ignore[union-attr]
        if lines:
            self._append(TRANSCRIPT, b"\n".join(lines) + b"\n")
            self.lines += len(lines)
        for m in batch:
            if type(m) is Lines or type(m) is Flush:
                continue
            if isinstance(m, AppendBytes):
                self._append(m.name, m.data)
            elif isinstance(m, WriteFile):
                self._replace(m.name, m.data)
            elif isinstance(m, AppendError):
                records = self._errors.get(m.turn)
                if records is None:
                    records = self._errors[m.turn] = self._load_errors(m.turn)
                records.append(m.record)
                self._replace(f"errors/turn_{m.turn}.json", msgspec.json.encode(records) + b"\n")

    def _append(self, name: str, data: bytes) -> None:
        append_file(self.path / name, data)

    def _replace(self, name: str, data: bytes) -> None:
        target = self.path / name
        if target.parent != self.path:
            target.parent.mkdir(mode=DIR_MODE, exist_ok=True)
        replace_file(target, data)

    def _load_errors(self, turn: int) -> list[Any]:
        p = self.path / "errors" / f"turn_{turn}.json"
        try:
            data = msgspec.json.decode(p.read_bytes())
        except (FileNotFoundError, msgspec.DecodeError):
            return []
        return data if isinstance(data, list) else []


def _write_all(fd: int, data: bytes) -> None:
    """Write every byte of ``data``: ``os.write`` may write fewer than asked."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def append_file(path: Path, data: bytes, *, sync: bool = False) -> None:
    """Append every byte of ``data`` to ``path`` (created private, 0600); ``sync``: fsync'd
    before returning."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, FILE_MODE)
    try:
        _write_all(fd, data)
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)


def replace_file(path: Path, data: bytes, *, sync: bool = False) -> None:
    """Replace ``path`` whole and atomically with ``data``, a private (0600) file: written
    beside it as ``<name>.tmp``, then renamed over it, so a reader sees the old file or the
    new one, never a part. ``sync``: the new file is fsync'd before the rename."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        _write_all(fd, data)
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _scarce(exc: OSError) -> bool:
    return exc.errno in _SCARCE


def virtual_time() -> bool:
    """Whether this trio run keeps virtual time (a test's ``MockClock``; a program that never
    imported ``trio.testing`` cannot be using one)."""
    testing = sys.modules.get("trio.testing")
    return testing is not None and isinstance(trio.lowlevel.current_clock(), testing.MockClock)


T = TypeVar("T")


async def offload(fn: Callable[..., T], *args: Any,
                  limiter: trio.CapacityLimiter | None = None, short: bool = False) -> T:
    """Run blocking file work in a worker thread, so the event loop never waits on the disk.

    ``short`` work (an append, a small file replaced: the journal's batches) goes to the
    process's long-lived disk workers (:func:`runtime.diskio.run_write`, cheaper per call);
    anything else, reads of a whole journal above all, to ``trio.to_thread.run_sync``, so
    it never holds a worker that every journal shares. Under virtual time (a test's
    ``MockClock``) it runs inline instead: a worker thread looks like idleness to trio, and
    an autojumping clock would run ahead of a session waiting for its disk (a 3600 s
    deadline would pass during a 100 µs write)."""
    if virtual_time():
        return fn(*args)
    if short:
        return await run_write(fn, *args, limiter=limiter)
    return await trio.to_thread.run_sync(fn, *args, limiter=limiter)


async def _write(folder: RunFolder, batch: list[JournalMsg], slots: trio.CapacityLimiter | None,
                 patience: float, sleep: Callable[[float], Any]) -> None:
    """Write a batch, waiting out a shortage of descriptors for up to ``patience`` s."""
    waited, delay = 0.0, 0.05
    while True:
        try:
            await offload(folder.write_batch, batch, limiter=slots, short=True)
            return
        except OSError as exc:
            if not _scarce(exc) or waited >= patience:
                raise JournalError(f"cannot write the run folder {folder.path}: {exc}") from exc
            await sleep(delay)
            waited += delay
            delay = min(delay * 2, 1.0)


async def journal_actor(
    folder: RunFolder,
    *,
    slots: trio.CapacityLimiter | None = None,
    bound: int = 256,
    patience: float = 60.0,
    linger: float = LINGER,
    sleep: Callable[[float], Any] = trio.sleep,
    exited: trio.Event | None = None,
    task_status: trio.TaskStatus[trio.MemorySendChannel[JournalMsg]] = trio.TASK_STATUS_IGNORED,
) -> int:
    """Write what arrives until every clone of the mailbox is closed; return lines written.

    Raises :class:`JournalError` when the folder cannot be written; what was queued after the
    failure is lost, and the session reports it. ``exited`` is set when the actor ends, however
    it ends, and so is the event of every ``Flush`` it did not write (a writer waiting for a
    flush must not wait for a dead actor)."""
    send, recv = trio.open_memory_channel[JournalMsg](bound)
    batch = _Batch(bound)
    try:
        async with recv:
            task_status.started(send)
            try:
                await _serve(folder, recv, batch, slots, patience, linger, sleep)
            finally:
                batch.abandon(recv)
    finally:
        if exited is not None:
            exited.set()
    return folder.lines


M = TypeVar("M")


async def receive_batch(recv: trio.MemoryReceiveChannel[M], limit: int = _BATCH
                        ) -> list[M] | None:
    """Wait for one message, then take whatever else is already queued (up to ``limit``):
    one batch, written with one hop to a worker thread. ``None`` once the channel ended."""
    try:
        batch = [await recv.receive()]
    except trio.EndOfChannel:
        return None
    while len(batch) < limit:
        try:
            batch.append(recv.receive_nowait())
        except (trio.WouldBlock, trio.EndOfChannel):
            break
    return batch


class _Batch:
    """The messages gathered for the next write, and when it is due."""

    __slots__ = ("bound", "due", "flushes", "lines", "msgs", "size")

    def __init__(self, bound: int) -> None:
        self.bound = bound
        self.msgs: list[JournalMsg] = []
        self.flushes: list[Flush] = []
        self.lines: list[Lines] = []  # still growing until taken
        self.size = 0
        self.due = math.inf

    def add(self, m: JournalMsg) -> None:
        t = type(m)
        if t is Lines:
            self.lines.append(m)  # type: ignore[arg-type]
        elif t is Flush:
            self.flushes.append(m)  # type: ignore[arg-type]
        elif t is WriteFile or t is AppendBytes:
            self.size += len(m.data)  # type: ignore[union-attr]
        self.msgs.append(m)

    @property
    def full(self) -> bool:
        return (bool(self.flushes) or len(self.msgs) >= self.bound
                or self.size + sum(x.size for x in self.lines) >= MAX_BATCH_BYTES)

    def take(self) -> list[JournalMsg]:
        """The messages to write now: their ``Lines`` stop growing."""
        for x in self.lines:
            x.taken = True
        return self.msgs

    def written(self) -> None:
        for f in self.flushes:
            f.written = True
            f.done.set()
        self.msgs, self.flushes, self.lines, self.size, self.due = [], [], [], 0, math.inf

    def abandon(self, recv: trio.MemoryReceiveChannel[JournalMsg]) -> None:
        """The actor ends: release every flush that was not written, queued ones too; no
        ``Lines`` grows any more (a sender then finds the mailbox closed)."""
        while True:
            try:
                m = recv.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                break
            if type(m) is Flush:
                self.flushes.append(m)  # type: ignore[arg-type]
            elif type(m) is Lines:
                self.lines.append(m)  # type: ignore[arg-type]
        self.take()
        for f in self.flushes:
            f.done.set()
        self.flushes = []


async def _serve(folder: RunFolder, recv: trio.MemoryReceiveChannel[JournalMsg], batch: _Batch,
                 slots: trio.CapacityLimiter | None, patience: float, linger: float,
                 sleep: Callable[[float], Any]) -> None:
    ended = False
    while not ended:
        try:
            if batch.msgs:
                with trio.move_on_at(batch.due):
                    batch.add(await recv.receive())
            else:
                batch.add(await recv.receive())
                batch.due = trio.current_time() + linger
            while not batch.full:  # what is queued already joins without waiting
                batch.add(recv.receive_nowait())
        except trio.WouldBlock:
            pass
        except trio.EndOfChannel:
            ended = True
        if batch.msgs and (ended or batch.full or trio.current_time() >= batch.due):
            await _write(folder, batch.take(), slots, patience, sleep)
            batch.written()


def now() -> float:
    """The timestamp of a record (epoch seconds, microseconds)."""
    return round(time.time(), 6)
