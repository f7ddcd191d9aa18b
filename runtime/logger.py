"""The logger actor: the only writer of the run folder.

It reads messages from a bounded mailbox (so a slow disk slows the producers instead of
growing a queue), redacts every one, then writes and flushes it before taking the next:
a crash loses nothing that was already seen.

Messages (``LogMsg``):

* ``Record(type, turn, fields)``: one line of ``transcript.jsonl``, stamped with ``ts``
  and ``run_id``;
* ``ErrorRecord(turn, record)``: appended to the JSON list of ``errors/turn_<n>.json``;
* ``WriteFile(name, data)``: a whole file replaced atomically (``state.json``,
  ``summary.json``); ``append=True`` appends raw bytes (``reasoning.enc`` frames, which are
  encrypted and never redacted: they contain no secret in the clear);
* ``Barrier(done)``: set ``done`` once everything before it is on disk.
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import attrs
import msgspec
import trio

from .redact import Redactor

__all__ = ["Barrier", "ErrorRecord", "LogMsg", "Record", "WriteFile", "logger_actor"]


@attrs.frozen
class Record:
    type: str
    turn: int
    fields: dict[str, Any] = attrs.field(factory=dict)


@attrs.frozen
class ErrorRecord:
    turn: int
    record: dict[str, Any]


@attrs.frozen
class WriteFile:
    name: str
    data: Any
    append: bool = False


@attrs.frozen
class Barrier:
    done: trio.Event


LogMsg = Record | ErrorRecord | WriteFile | Barrier

_enc = msgspec.json.Encoder()


def _jsonable(obj: Any) -> Any:
    """msgspec enc_hook: Paths and other odd values become strings, never a crash."""
    return str(obj)


_enc_safe = msgspec.json.Encoder(enc_hook=_jsonable)


class RunFolder:
    """Synchronous writes into ``logging/<run_id>/`` (used only by the logger actor)."""

    def __init__(self, path: Path, run_id: str, redactor: Redactor,
                 clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.run_id = run_id
        self.redactor = redactor
        self.clock = clock
        path.mkdir(parents=True, exist_ok=True)
        fd = os.open(path / "transcript.jsonl", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._transcript = fd
        self._errors: dict[int, list[dict[str, Any]]] = {}
        self.lines = 0

    def close(self) -> None:
        os.close(self._transcript)

    def handle(self, msg: LogMsg) -> None:
        if isinstance(msg, Record):
            line = {"ts": round(self.clock(), 6), "run_id": self.run_id, "turn": msg.turn,
                    "type": msg.type, **msg.fields}
            os.write(self._transcript, _enc_safe.encode(self.redactor.value(line)) + b"\n")
            self.lines += 1
        elif isinstance(msg, ErrorRecord):
            records = self._errors.setdefault(msg.turn, self._load_errors(msg.turn))
            records.append(self.redactor.value(msg.record))
            self._replace(f"errors/turn_{msg.turn}.json", _enc_safe.encode(records))
        elif isinstance(msg, WriteFile):
            if msg.append:
                with open(self.path / msg.name, "ab") as f:
                    f.write(msg.data)
            else:
                data = msg.data if isinstance(msg.data, bytes) else \
                    _enc_safe.encode(self.redactor.value(msg.data))
                self._replace(msg.name, data)

    def _load_errors(self, turn: int) -> list[dict[str, Any]]:
        p = self.path / "errors" / f"turn_{turn}.json"
        if p.exists():  # a resumed run keeps what the earlier process recorded
            try:
                data = msgspec.json.decode(p.read_bytes())
                return data if isinstance(data, list) else []
            except msgspec.DecodeError:
                return []
        return []

    def _replace(self, name: str, data: bytes) -> None:
        target = self.path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        with open(tmp, "wb") as f:
            f.write(data)
            if not data.endswith(b"\n"):
                f.write(b"\n")
        os.replace(tmp, target)


async def logger_actor(
    run_dir: Path,
    run_id: str,
    redactor: Redactor,
    *,
    bound: int = 64,
    clock: Callable[[], float] = time.time,
    before_write: Callable[[LogMsg], Awaitable[None]] | None = None,
    task_status: trio.TaskStatus[trio.MemorySendChannel[LogMsg]] = trio.TASK_STATUS_IGNORED,
) -> int:
    """Run the logger until every clone of its mailbox is closed; return lines written.

    ``before_write`` is a seam for tests (e.g. a slow disk)."""
    folder = RunFolder(run_dir, run_id, redactor, clock)
    send, recv = trio.open_memory_channel[LogMsg](bound)
    try:
        async with recv:
            task_status.started(send)
            async for msg in recv:
                if before_write is not None:
                    await before_write(msg)
                if isinstance(msg, Barrier):
                    msg.done.set()
                    continue
                folder.handle(msg)
    finally:
        folder.close()
    return folder.lines
