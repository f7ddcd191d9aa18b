"""Every session's journal in Redis: one stream per session, appended record by record.

A worker's session writes its run folder as always and, through ``RedisTee`` (the
recorder's ``tee``), the same lines to ``P:j:<run>``: stream id ``<seq>-0`` holds
transcript line ``seq`` (field ``l``), ids ``<seq>-<k>`` the reasoning frames written after
it (field ``t``, encrypted as in ``reasoning.enc``). The tee is an actor: lines are queued
in order, sent in batches by one script that appends only while the session's owner token
is the tee's (fencing: a worker whose lease was taken writes nothing more) and skips ids
already there (a batch sent again after a lost connection). ``flush`` is a barrier, as the
local journal's: once it returns, everything emitted before is in Redis.

Readers: :func:`read_stream` (every entry), :func:`follow` (records from a position, then
live ones until ``session_end``: what a watcher on any ``serve`` process reads), and
:func:`rebuild_folder` (the run folder of a session to resume, written from its stream).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path
from typing import Any

import attrs
import trio

from ..session.journal import (
    DIR_MODE,
    TRANSCRIPT,
    JournalError,
    RunFolder,
    offload,
    replace_file,
)
from ..session.records import RecordBase, SessionEnd, decode_line
from ..session.traces import TRACE_FILE
from .connection import Backend, as_text, retrying

__all__ = ["RedisTee", "StreamEntry", "follow", "read_stream", "rebuild_folder"]

_BATCH = 256


@attrs.frozen
class StreamEntry:
    seq: int
    sub: int
    field: bytes     # b"l" a transcript line, b"t" a reasoning frame
    value: bytes

    @property
    def id(self) -> str:
        return f"{self.seq}-{self.sub}"


@attrs.frozen
class _Barrier:
    done: trio.Event


class RedisTee:
    """The recorder's tee into a session's stream, fenced by the owner's lease token."""

    def __init__(self, backend: Backend, run_id: str, token: str, *, bound: int = 1024,
                 ) -> None:
        self.backend = backend
        self.run_id = run_id
        self.token = token
        self.fenced = False           # the lease was taken: nothing more is written
        self.stopped = False          # the worker stopped forwarding (it is handing over)
        self.sent = 0
        self._frames: tuple[int, int] = (0, 0)    # (seq, frames written after it)
        self._send, self._recv = trio.open_memory_channel[StreamEntry | _Barrier](bound)
        self._closed = trio.Event()

    # ---- the recorder's side --------------------------------------------------------

    async def line(self, seq: int, line: bytes) -> None:
        await self._put(StreamEntry(seq, 0, b"l", line))

    async def frame(self, seq: int, data: bytes) -> None:
        last, k = self._frames
        k = k + 1 if last == seq else 1
        self._frames = (seq, k)
        await self._put(StreamEntry(seq, k, b"t", data))

    async def _put(self, item: StreamEntry | _Barrier) -> None:
        if self.fenced or self.stopped:
            return
        try:
            await self._send.send(item)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass

    async def flush(self) -> None:
        """Return once everything before is in Redis; :class:`JournalError` when the tee
        is fenced or stopped (the session must not act on what Redis may not hold)."""
        if not (self.fenced or self.stopped):
            done = trio.Event()
            await self._put(_Barrier(done))
            async with trio.open_nursery() as nursery:

                async def closed() -> None:
                    await self._closed.wait()
                    nursery.cancel_scope.cancel()

                nursery.start_soon(closed)
                await done.wait()
                nursery.cancel_scope.cancel()
        if self.fenced:
            raise JournalError(f"session {self.run_id} was taken over by another worker "
                               "(its lease expired): this worker writes nothing more")
        if self.stopped:
            raise JournalError(f"session {self.run_id} is being handed to another worker")

    def stop(self) -> None:
        """Forward nothing more (the worker hands the session back to the queue)."""
        self.stopped = True

    def close(self) -> None:
        """No more lines will come; :meth:`run` returns once the queue is sent."""
        self._send.close()

    # ---- the actor --------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                  ) -> None:
        """Send what is queued, batch by batch, riding out a lost connection."""
        task_status.started()
        try:
            async with self._recv:
                while True:
                    try:
                        batch = [await self._recv.receive()]
                    except trio.EndOfChannel:
                        return
                    while len(batch) < _BATCH:
                        try:
                            batch.append(self._recv.receive_nowait())
                        except (trio.WouldBlock, trio.EndOfChannel):
                            break
                    entries = [b for b in batch if isinstance(b, StreamEntry)]
                    if entries and not (self.fenced or self.stopped):
                        await self._append(entries)
                    for b in batch:
                        if isinstance(b, _Barrier):
                            b.done.set()
        finally:
            self._closed.set()

    async def _append(self, entries: list[StreamEntry]) -> None:
        keys = self.backend.keys
        args: list[Any] = [self.token]
        for e in entries:
            args += [e.id, e.field, e.value]
        n = await retrying(self.backend, partial(
            self.backend.run, "append", [keys.session(self.run_id), keys.journal(self.run_id)],
            args))
        if int(n) < 0:
            self.fenced = True
        else:
            self.sent += int(n)


def _entry(entry_id: bytes | str, fields: Any) -> StreamEntry | None:
    text = as_text(entry_id)
    seq, _, sub = text.partition("-")
    for field in (b"l", b"t"):
        value = fields.get(field)
        if value is None:
            value = fields.get(field.decode())
        if value is not None:
            return StreamEntry(int(seq), int(sub or 0), field,
                               value if isinstance(value, bytes) else str(value).encode())
    return None


async def read_stream(backend: Backend, run_id: str, after: str = "-",
                      page: int = 1000) -> list[StreamEntry]:
    """Every entry of a session's stream after id ``after`` (exclusive; ``-``: all)."""
    key = backend.keys.journal(run_id)
    out: list[StreamEntry] = []
    start = after if after == "-" else f"({after}"
    while True:
        rows = await backend.redis.xrange(key, start, "+", count=page)
        for row in rows:
            e = _entry(row.identifier, row.field_values)
            if e is not None:
                out.append(e)
        if len(rows) < page:
            return out
        last = rows[-1].identifier
        start = "(" + as_text(last)


async def follow(backend: Backend, run_id: str, since: int = 0, *,
                 block_ms: int = 5000) -> AsyncIterator[tuple[RecordBase, bytes]]:
    """The records after position ``since``, then each new one as it is appended, until
    the session's ``session_end`` (whichever worker writes it). A lost connection is
    ridden out: reading resumes after the last record yielded."""
    key = backend.keys.journal(run_id)
    last = f"{since}-0" if since > 0 else "0-0"
    while True:
        found = await retrying(backend, partial(backend.redis.xread, {key: last}, count=500,
                                                block=block_ms))
        for _stream, rows in (found or {}).items():
            for row in rows:
                ident = row.identifier
                last = as_text(ident)
                e = _entry(ident, row.field_values)
                if e is None or e.field != b"l":
                    continue
                rec = decode_line(e.value)
                if rec is None:
                    continue
                yield rec, e.value
                if isinstance(rec, SessionEnd):
                    return


def _write_folder(run_dir: Path, lines: list[bytes], frames: list[bytes]) -> None:
    folder = RunFolder(run_dir)
    folder.create(exist_ok=True)
    for name, data in ((TRANSCRIPT, b"".join(line + b"\n" for line in lines)),
                       (TRACE_FILE, b"".join(frames))):
        target = run_dir / name
        if name == TRACE_FILE and not frames:
            target.unlink(missing_ok=True)
            continue
        replace_file(target, data)
    os.chmod(run_dir, DIR_MODE)


async def rebuild_folder(backend: Backend, run_id: str, run_dir: Path,
                         entries: list[StreamEntry] | None = None) -> int:
    """Write ``transcript.jsonl`` and ``reasoning.enc`` of ``run_dir`` from the session's
    stream (what resuming needs; the folder is created if missing); returns the number
    of records."""
    if entries is None:
        entries = await read_stream(backend, run_id)
    lines = [e.value for e in entries if e.field == b"l"]
    frames = [e.value for e in entries if e.field == b"t"]
    await offload(_write_folder, run_dir, lines, frames)
    return len(lines)


def last_end(entries: list[StreamEntry]) -> SessionEnd | None:
    """The ``session_end`` a stream already holds (the session ended), if any."""
    for e in reversed(entries):
        if e.field != b"l":
            continue
        rec = decode_line(e.value)
        if isinstance(rec, SessionEnd):
            return rec
    return None
