"""Where the service keeps its sessions and its queue: a small interface, in process here.

``SessionRecord`` is the service's plain, serializable view of one session (who owns it,
what it was started with, its last known status); live handles are not in it. The service
talks to a ``SessionStore`` (records, pages, idempotency keys) and a ``SessionQueue`` (the
sessions waiting for a free slot) only through the methods below, so another backend (a
shared one for several processes) can replace ``LocalStore`` / ``LocalQueue`` without
touching the service. Both here are plain data structures (no I/O, no clock).
"""

from __future__ import annotations

import collections
from typing import Any, Protocol

import msgspec

__all__ = ["LocalQueue", "LocalStore", "SessionQueue", "SessionRecord", "SessionStore"]

FINAL = frozenset({"finished", "failed", "limit", "cancelled", "interrupted"})


class SessionRecord(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One session of the service. ``status`` is the contract's status; ``task`` is kept
    only until the session starts (a queued session needs it to start after a restart);
    ``resume`` marks a session to resume from its run folder (stopped by a drain)."""

    id: str
    owner: str
    created_at: float
    status: str                                   # always written (no default)
    task: str | None = None
    provider: str | None = None
    model: str | None = None
    max_turns: int | None = None
    keep_open: bool = False
    metadata: dict[str, Any] | None = None
    resume: bool = False
    started: bool = False
    idempotency: tuple[str, str] | None = None   # (key digest, body fingerprint)
    ordinal: int = 0
    turns: int = 0                                # the rest: once it has ended
    totals: dict[str, Any] | None = None
    answer: str | None = None
    message: str | None = None


class SessionStore(Protocol):
    """The records of a service's sessions."""

    def put(self, rec: SessionRecord) -> None: ...
    def get(self, session_id: str) -> SessionRecord | None: ...
    def page(self, owner: str | None, cursor: str | None, limit: int,
             status: str | None = None) -> tuple[list[SessionRecord], str | None]: ...
    def by_idempotency(self, owner: str, key_digest: str) -> SessionRecord | None: ...
    def counts(self) -> dict[str, int]: ...
    def all(self) -> list[SessionRecord]: ...


class SessionQueue(Protocol):
    """Sessions waiting to start, first in first out, at most ``capacity``."""

    capacity: int

    def push(self, session_id: str, *, force: bool = False) -> bool: ...
    def pop(self) -> str | None: ...
    def remove(self, session_id: str) -> bool: ...
    def __len__(self) -> int: ...
    def ids(self) -> list[str]: ...


class BadCursor(ValueError):
    """A ``cursor`` that this store did not hand out."""


class LocalStore:
    """Records in a dict, newest first by ``ordinal`` (the order of creation)."""

    def __init__(self) -> None:
        self._records: dict[str, SessionRecord] = {}
        self._idem: dict[tuple[str, str], str] = {}
        self._next = 1

    def put(self, rec: SessionRecord) -> None:
        if rec.ordinal == 0:
            rec.ordinal = self._next
        self._next = max(self._next, rec.ordinal + 1)
        self._records[rec.id] = rec
        if rec.idempotency is not None:
            self._idem[(rec.owner, rec.idempotency[0])] = rec.id

    def get(self, session_id: str) -> SessionRecord | None:
        return self._records.get(session_id)

    def page(self, owner: str | None, cursor: str | None, limit: int,
             status: str | None = None) -> tuple[list[SessionRecord], str | None]:
        before = _decode_cursor(cursor) if cursor is not None else None
        picked: list[SessionRecord] = []
        for rec in reversed(self._records.values()):  # insertion order is creation order
            if before is not None and rec.ordinal >= before:
                continue
            if owner is not None and rec.owner != owner:
                continue
            if status is not None and rec.status != status:
                continue
            picked.append(rec)
            if len(picked) > limit:
                break
        more = len(picked) > limit
        picked = picked[:limit]
        return picked, (_encode_cursor(picked[-1].ordinal) if more and picked else None)

    def by_idempotency(self, owner: str, key_digest: str) -> SessionRecord | None:
        sid = self._idem.get((owner, key_digest))
        return self._records.get(sid) if sid is not None else None

    def counts(self) -> dict[str, int]:
        return dict(collections.Counter(rec.status for rec in self._records.values()))

    def all(self) -> list[SessionRecord]:
        return list(self._records.values())


class LocalQueue:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._ids: collections.deque[str] = collections.deque()

    def push(self, session_id: str, *, force: bool = False) -> bool:
        """Queue a session; False when full (``force``: sessions restored at start)."""
        if len(self._ids) >= self.capacity and not force:
            return False
        self._ids.append(session_id)
        return True

    def pop(self) -> str | None:
        return self._ids.popleft() if self._ids else None

    def remove(self, session_id: str) -> bool:
        try:
            self._ids.remove(session_id)
        except ValueError:
            return False
        return True

    def __len__(self) -> int:
        return len(self._ids)

    def ids(self) -> list[str]:
        return list(self._ids)


def _encode_cursor(ordinal: int) -> str:
    return f"c{ordinal}"


def _decode_cursor(cursor: str) -> int:
    if len(cursor) < 2 or cursor[0] != "c" or not cursor[1:].isdigit() or len(cursor) > 19:
        raise BadCursor(f"not a cursor of this list: {cursor[:40]!r}")
    return int(cursor[1:])
