"""The session's one way out: every record is stamped, redacted and encoded once here, then
handed to the journal (disk), the accounts, the hooks and the live watchers.

``emit`` is the only place a record gets its ``seq``, so the journal's order, the live
order and the order a reader of the file sees are the same. Redaction happens before
anything leaves (files, watchers, the HTTP API): a record is walked once by the compiled
redactor, and rebuilt only when a secret was found. Text that cannot be encoded as UTF-8
(lone surrogates from a filename, stdin or a provider) is made valid here, once, with
U+FFFD: the record path is total.

A ``tee`` (a fleet worker's journal stream in Redis, ``runtime.fleet.journal``) gets every
line and every reasoning frame too, in order; ``flush`` then also waits until the tee has
them (a tool that may not run twice starts only once its ``tool_start`` is there).

Watchers (``Session.events``) get ``(record, line)`` pairs through bounded channels with
``send_nowait``: a watcher that falls behind is cut off (``overflowed``) and never slows
the session; the session's reader then catches up from the journal on disk. The last
``RECENT`` records stay in memory (``recent``): a watcher that starts close behind the
session replays them from there instead of from the disk.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from typing import Any, Protocol

import attrs
import msgspec
import trio

from ..accounting import Accounts
from ..channels import send_soon
from ..redact import Redactor
from .journal import (
    MAX_BATCH_BYTES,
    AppendBytes,
    AppendError,
    Flush,
    JournalError,
    JournalMsg,
    Lines,
    WriteFile,
    now,
)
from .records import RecordBase, TextDelta, clean_text, sanitize
from .traces import TRACE_FILE

__all__ = ["RECENT", "Recorder", "Tee", "Watcher"]

RECENT = 256

_encoder = msgspec.json.Encoder()


class Tee(Protocol):
    """A second home for the journal: lines (with their ``seq``) and reasoning frames."""

    async def line(self, seq: int, line: bytes) -> None: ...

    async def frame(self, seq: int, data: bytes) -> None: ...

    async def flush(self) -> None: ...


@attrs.define(eq=False)
class Watcher:
    """One live reader of a session's records."""

    send: trio.MemorySendChannel[tuple[RecordBase, bytes | None]]
    recv: trio.MemoryReceiveChannel[tuple[RecordBase, bytes | None]]
    deltas: bool = False
    overflowed: bool = False


class Recorder:
    """Stamps, redacts and encodes records; writes, counts and broadcasts them."""

    def __init__(self, run_id: str, journal: trio.MemorySendChannel[JournalMsg],
                 redactor: Redactor, accounts: Accounts, *, seq: int = 0,
                 on_record: Callable[[RecordBase], None] | None = None,
                 journal_exited: trio.Event | None = None, tee: Tee | None = None) -> None:
        self.run_id = run_id
        self.journal = journal
        self.journal_exited = journal_exited if journal_exited is not None else trio.Event()
        self.redactor = redactor
        self.accounts = accounts
        self.seq = seq
        self.turn = 0
        self.on_record = on_record
        self.watchers: list[Watcher] = []
        self.delta_watchers = 0
        self.closed = False
        # the answer streaming now, as (text so far, request id, the position of its
        # ``request`` record): a watcher that joins mid-answer, having seen nothing of it,
        # gets it first as one delta (set by the turn reader)
        self.answer_so_far: Callable[[], tuple[str, str, int]] | None = None
        # the journal message the next records join while the journal has not taken it
        self._lines: Lines | None = None
        # the last records emitted, so that a new watcher close behind starts from memory
        self.recent: collections.deque[tuple[RecordBase, bytes]] = collections.deque(
            maxlen=RECENT)
        self.tee = tee

    # ---- records ----------------------------------------------------------------------

    def _encode(self, rec: RecordBase) -> tuple[RecordBase, bytes]:
        red = self.redactor
        if not red.changes(rec):  # one search over the record's strings
            try:
                return rec, _encoder.encode(rec)
            except UnicodeEncodeError:
                pass
        data = sanitize(red.value(msgspec.to_builtins(rec)))
        rec = msgspec.convert(data, type(rec))
        return rec, _encoder.encode(rec)

    async def emit(self, rec: RecordBase) -> RecordBase:
        """Write one record of the current turn; returns it as written (redacted)."""
        self.seq += 1
        rec.ts, rec.run_id, rec.turn, rec.seq = now(), self.run_id, self.turn, self.seq
        rec, line = self._encode(rec)
        self.accounts.apply(rec)
        self.recent.append((rec, line))
        if self.on_record is not None:
            self.on_record(rec)
        if self.watchers:
            self._publish(rec, line)
        lines = self._lines
        if lines is not None and not lines.taken:
            lines.add(line)  # joins the batch the journal holds: no wake-up
            if lines.size >= MAX_BATCH_BYTES:  # large enough to write now: wake it
                self._lines = Lines()
                await self._put(self._lines)
        else:
            self._lines = lines = Lines()
            lines.add(line)
            await self._put(lines)
        if self.tee is not None:
            await self.tee.line(rec.seq, line)
        return rec

    def delta(self, text: str, request_id: str) -> None:
        """A live piece of the answer, for watchers that asked for deltas (never written)."""
        if not self.delta_watchers or not text:
            return
        self._publish(self.delta_event(text, request_id), None)

    def delta_event(self, text: str, request_id: str) -> TextDelta:
        """A live ``text_delta`` event of the current turn, redacted."""
        return TextDelta(ts=now(), run_id=self.run_id, turn=self.turn, seq=self.seq,
                         text=self.redactor.text(clean_text(text)), request_id=request_id)

    # ---- other files ------------------------------------------------------------------

    async def error(self, turn: int, record: dict[str, Any]) -> None:
        await self._put(AppendError(turn, sanitize(self.redactor.value(record))))

    async def write_json(self, name: str, data: Any) -> None:
        """Replace a whole file with ``data`` as JSON, redacted: searched in one pass, and
        rebuilt only when a secret (or text that is not valid UTF-8) is in it."""
        body: bytes | None = None
        if not self.redactor.changes(data):
            try:
                body = _encoder.encode(data)
            except UnicodeEncodeError:
                body = None
        if body is None:
            body = _encoder.encode(sanitize(self.redactor.value(msgspec.to_builtins(data))))
        await self._put(WriteFile(name, body + b"\n"))

    async def append_bytes(self, name: str, data: bytes) -> None:
        await self._put(AppendBytes(name, data))
        if self.tee is not None and name == TRACE_FILE:
            await self.tee.frame(self.seq, data)

    async def _put(self, msg: JournalMsg) -> None:
        """To the journal, without a scheduling round trip while its mailbox has room."""
        await send_soon(self.journal, msg)

    async def flush(self) -> None:
        """Return once everything emitted so far is on disk; :class:`JournalError` when the
        journal actor is gone (its own failure is reported where it ended)."""
        flush = Flush(trio.Event())
        try:
            await send_soon(self.journal, flush)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise JournalError("the journal is closed") from exc
        await flush.done.wait()
        if not flush.written:
            raise JournalError("the journal ended before writing everything")
        if self.tee is not None:
            await self.tee.flush()

    # ---- watchers ---------------------------------------------------------------------

    def watch(self, *, deltas: bool, bound: int = 1024) -> Watcher:
        send, recv = trio.open_memory_channel[tuple[RecordBase, bytes | None]](bound)
        w = Watcher(send, recv, deltas)
        if self.closed:
            send.close()
            return w
        self.watchers.append(w)
        self.delta_watchers += deltas
        return w

    def unwatch(self, w: Watcher) -> None:
        if w in self.watchers:
            self.watchers.remove(w)
            self.delta_watchers -= w.deltas
        w.send.close()

    def _publish(self, ev: RecordBase, line: bytes | None) -> None:
        is_delta = line is None
        for w in list(self.watchers):
            if is_delta and not w.deltas:
                continue
            try:
                w.send.send_nowait((ev, line))
            except trio.WouldBlock:
                w.overflowed = True
                self.unwatch(w)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                self.unwatch(w)

    def close(self) -> None:
        """The session ended: every watcher's stream ends."""
        self.closed = True
        for w in list(self.watchers):
            self.unwatch(w)

