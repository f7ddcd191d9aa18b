"""The audit log actor: who did what to which session, when, hash-chained.

``AuditLog.record(action, who, ...)`` queues one record without waiting on the disk; the
actor seals records in arrival order (``audit.seal``: ``seq``, ``prev``, ``hash``) and
appends them with fsync in a worker thread (``files.line_writer``). On start it reads the
last record of an existing log, so the chain continues across restarts.

A record: ``ts`` (UTC, ISO 8601), ``action`` (``auth_failure``, ``forbidden``,
``session_create``, ``approval``, ``denial``, ``cancel``, ``message``, ``admin_access``,
``rate_limited``), ``who`` (``key:<name>``, ``jwt:<subject>`` or ``anonymous``; never a key or
a token), ``ip``, and what it concerns (``session``, ``call_id``, ``reason``, ``path``...).
"""

from __future__ import annotations

import datetime as dt
import json
from functools import partial
from pathlib import Path
from typing import Any

import trio

from ..session.journal import offload
from .audit import GENESIS, seal
from .files import line_writer, read_lines

__all__ = ["AuditLog"]


def _last(path: Path) -> tuple[int, str]:
    """The seq and hash of the last sealed record of an existing log."""
    for raw in reversed(read_lines(path)):
        try:
            rec = json.loads(raw)
        except ValueError:
            continue
        if isinstance(rec, dict) and isinstance(rec.get("hash"), str) and isinstance(
                rec.get("seq"), int):
            return rec["seq"], rec["hash"]
    return 0, GENESIS


class AuditLog:
    """See the module docstring; ``run`` is the actor, started in the service's nursery."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._send: trio.MemorySendChannel[dict[str, Any]] | None = None
        self._seq = 0
        self._prev = GENESIS

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                  ) -> None:
        self._seq, self._prev = await offload(_last, self.path)
        async with trio.open_nursery() as nursery:
            self._send = await nursery.start(partial(line_writer, self.path, self._seal, sync=True))
            task_status.started()

    def _seal(self, record: dict[str, Any]) -> bytes:
        self._seq += 1
        line, self._prev = seal(record, self._seq, self._prev)
        return line

    async def record(self, action: str, who: str, **fields: Any) -> None:
        """Queue one record (waits only when thousands are already queued)."""
        if self._send is None:
            raise RuntimeError("the audit log is not running")
        now = dt.datetime.now(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
        rec = {"ts": now, "action": action, "who": who,
               **{k: v for k, v in fields.items() if v is not None}}
        await self._send.send(rec)

    async def aclose(self) -> None:
        """No more records; the actor writes what is queued and ends."""
        if self._send is not None:
            await self._send.aclose()
