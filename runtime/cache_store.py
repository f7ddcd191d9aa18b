"""The response cache's store: SQLite (stdlib) on disk, and the trio-facing cache object.

::

    CacheStore        blocking; one sqlite3 connection per thread; WAL + busy_timeout, so
                      several processes may read and write one file at once
    AsyncCacheStore   the same calls run on a worker thread (one at a time), never on the
                      trio loop
    ResponseCache     the mode logic (read-through | record-only | bypass | replay) over an
                      AsyncCacheStore, in terms of canonical Requests and Responses

Table ``entries``: ``key`` (hex sha256, primary key), ``material`` (the canonical request
document as JSON, prompt-hashed with ``hash_prompts``), ``response`` (the canonical
``Response`` as msgspec JSON), ``size`` (bytes of the three), ``created`` and ``last_used``
(nanoseconds since the epoch; ``last_used`` strictly increases across processes, so the
least recently used entry is well defined). After each ``put`` the least recently used entries
are evicted while the total size exceeds ``max_bytes``.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import attrs
import msgspec
import trio

from runtime.cache import (
    MODES,
    CacheMissError,
    CacheMode,
    decode_response,
    encode_response,
    key_material,
    key_of_material,
    nearest,
    redact_material,
)
from runtime.model import Request, Response

__all__ = ["DB_NAME", "AsyncCacheStore", "CacheStats", "CacheStore", "ResponseCache", "db_path"]

T = TypeVar("T")

DB_NAME = "responses.sqlite3"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    key TEXT PRIMARY KEY,
    material TEXT NOT NULL,
    response BLOB NOT NULL,
    size INTEGER NOT NULL,
    created INTEGER NOT NULL,
    last_used INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS entries_last_used ON entries (last_used);
"""
# A tick of the shared logical clock: now, or just after the latest use if the clock lags.
_TICK = "max(?, coalesce((SELECT max(last_used) FROM entries), 0) + 1)"


def db_path(path: str | Path) -> Path:
    """The database file for ``cache.path``: the path itself when it names a file
    (has a suffix), else ``<path>/responses.sqlite3`` (``.conductor/cache`` is a folder)."""
    p = Path(path)
    if p.is_dir() or not p.suffix:
        return p / DB_NAME
    return p


@attrs.frozen
class CacheStats:
    path: str
    entries: int
    total_bytes: int
    max_bytes: int


class CacheStore:
    """A size-capped LRU store of responses in one SQLite file (blocking calls)."""

    def __init__(self, path: str | Path, *, max_bytes: int = 256 * 2**20,
                 busy_timeout: float = 30.0) -> None:
        if max_bytes <= 0:
            raise ValueError("max_bytes must be positive")
        self.path = db_path(path)
        self.max_bytes = max_bytes
        self.busy_timeout = busy_timeout
        self._local = threading.local()
        self._lock = threading.Lock()
        self._conns: dict[int, tuple[threading.Thread, sqlite3.Connection]] = {}
        self._closed = False

    # -- connections ------------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        if self._closed:
            raise sqlite3.ProgrammingError("cache store is closed")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None,
                               check_same_thread=False)
        try:
            self._setup(conn)
        except BaseException:
            conn.close()
            raise
        with self._lock:
            # Connections of threads that ended (trio's idle workers expire) are closed here.
            for ident, (thread, old) in list(self._conns.items()):
                if not thread.is_alive():
                    old.close()
                    del self._conns[ident]
            self._conns[threading.get_ident()] = (threading.current_thread(), conn)
        self._local.conn = conn
        return conn

    def _setup(self, conn: sqlite3.Connection) -> None:
        conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
        deadline = time.monotonic() + self.busy_timeout
        while True:
            # Switching to WAL needs a moment alone with the file; SQLite may report
            # "locked" at once instead of waiting, so this retries until busy_timeout.
            try:
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                conn.execute("PRAGMA synchronous = NORMAL")
                try:
                    conn.executescript("BEGIN IMMEDIATE;" + _SCHEMA + "COMMIT;")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
        if str(mode).lower() != "wal":
            raise sqlite3.OperationalError(f"cannot enable WAL on {self.path} (got {mode})")

    def close(self) -> None:
        """Close every connection this store opened (call when no call is in flight)."""
        with self._lock:
            self._closed = True
            for _thread, conn in self._conns.values():
                conn.close()
            self._conns.clear()
        self._local = threading.local()

    # -- operations -------------------------------------------------------------------

    def get(self, key: str) -> bytes | None:
        """The stored response for ``key`` (marking it used), or None."""
        conn = self._conn()
        row = conn.execute("SELECT response FROM entries WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        conn.execute(f"UPDATE entries SET last_used = {_TICK} WHERE key = ?",
                     (time.time_ns(), key))
        return bytes(row[0])

    def put(self, key: str, material: dict[str, Any], response: bytes) -> None:
        """Store (or replace) an entry, then evict least recently used ones over the cap."""
        text = msgspec.json.encode(material, order="sorted").decode()
        size = len(key) + len(text.encode()) + len(response)
        now = time.time_ns()
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(
                "INSERT OR REPLACE INTO entries (key, material, response, size, created, "
                f"last_used) VALUES (?, ?, ?, ?, ?, {_TICK})",
                (key, text, response, size, now, now),
            )
            self._evict(conn, key)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _evict(self, conn: sqlite3.Connection, newest: str) -> None:
        total = conn.execute("SELECT coalesce(sum(size), 0) FROM entries").fetchone()[0]
        if total <= self.max_bytes:
            return
        doomed: list[tuple[str]] = []
        rows = conn.execute(
            "SELECT key, size FROM entries WHERE key != ? ORDER BY last_used, created",
            (newest,))
        for old, size in rows:
            if total <= self.max_bytes:
                break
            doomed.append((old,))
            total -= size
        if total > self.max_bytes:  # the new entry alone is over the cap: keep nothing
            doomed.append((newest,))
        conn.executemany("DELETE FROM entries WHERE key = ?", doomed)

    def delete(self, key: str) -> None:
        self._conn().execute("DELETE FROM entries WHERE key = ?", (key,))

    def materials(self, limit: int = 200) -> list[tuple[str, dict[str, Any]]]:
        """``(key, material)`` of the most recently used entries, newest first."""
        rows = self._conn().execute(
            "SELECT key, material FROM entries ORDER BY last_used DESC LIMIT ?", (limit,)
        ).fetchall()
        out: list[tuple[str, dict[str, Any]]] = []
        for key, text in rows:
            try:
                out.append((key, msgspec.json.decode(text)))
            except msgspec.DecodeError:
                continue
        return out

    def stats(self) -> CacheStats:
        count, total = self._conn().execute(
            "SELECT count(*), coalesce(sum(size), 0) FROM entries").fetchone()
        return CacheStats(str(self.path), int(count), int(total), self.max_bytes)

    def checkpoint(self) -> None:
        """Move the WAL into the database file and truncate it."""
        self._conn().execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()


class AsyncCacheStore:
    """``CacheStore`` for trio: each call runs on a worker thread, one call at a time."""

    def __init__(self, store: CacheStore) -> None:
        self.store = store
        self._limiter = trio.CapacityLimiter(1)

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await trio.to_thread.run_sync(fn, *args, limiter=self._limiter)

    async def get(self, key: str) -> bytes | None:
        return await self._run(self.store.get, key)

    async def put(self, key: str, material: dict[str, Any], response: bytes) -> None:
        await self._run(self.store.put, key, material, response)

    async def delete(self, key: str) -> None:
        await self._run(self.store.delete, key)

    async def materials(self, limit: int = 200) -> list[tuple[str, dict[str, Any]]]:
        return await self._run(self.store.materials, limit)

    async def stats(self) -> CacheStats:
        return await self._run(self.store.stats)

    async def checkpoint(self) -> None:
        await self._run(self.store.checkpoint)

    async def aclose(self) -> None:
        await self._run(self.store.close)


class ResponseCache:
    """The cache as the provider runtime uses it.

    ``lookup`` returns ``(key, response or None)``: in ``read-through`` a hit is served and a
    miss means "call the provider, then ``store``"; ``record-only`` and ``bypass`` never serve;
    ``replay`` serves a hit or raises ``CacheMissError`` naming the nearest stored request's
    differing paths. ``store`` writes in ``read-through`` and ``record-only`` only.
    """

    def __init__(self, store: AsyncCacheStore, mode: CacheMode = "read-through", *,
                 hash_prompts: bool = False, nearest_limit: int = 200) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown cache mode {mode!r}; expected one of {', '.join(MODES)}")
        self.backend = store
        self.mode: CacheMode = mode
        self.hash_prompts = hash_prompts
        self.nearest_limit = nearest_limit

    @property
    def serves(self) -> bool:
        """Whether a lookup may answer a turn."""
        return self.mode in ("read-through", "replay")

    @property
    def records(self) -> bool:
        """Whether ``store`` writes."""
        return self.mode in ("read-through", "record-only")

    async def lookup(self, provider_kind: str, req: Request) -> tuple[str, Response | None]:
        material = key_material(provider_kind, req)
        key = key_of_material(material)
        if not self.serves:
            return key, None
        data = await self.backend.get(key)
        if data is not None:
            try:
                return key, decode_response(data)
            except msgspec.DecodeError:
                await self.backend.delete(key)  # a damaged value is a miss, then re-recorded
        if self.mode == "replay":
            candidates = await self.backend.materials(self.nearest_limit)
            raise CacheMissError(key, nearest(material, candidates), provider=provider_kind)
        return key, None

    async def store(self, provider_kind: str, req: Request, resp: Response) -> str:
        """Record ``resp`` as the answer to ``req`` (when the mode records); returns the key."""
        material = key_material(provider_kind, req)
        key = key_of_material(material)
        if self.records:
            stored = redact_material(material) if self.hash_prompts else material
            await self.backend.put(key, stored, encode_response(resp))
        return key
