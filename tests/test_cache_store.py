"""The SQLite cache store, its trio facade and the cache modes."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio

from runtime.cache import CacheMissError, cache_key, encode_response
from runtime.cache_store import AsyncCacheStore, CacheStore, ResponseCache, db_path
from runtime.errors import ErrorKind
from runtime.model import (
    Message,
    Params,
    Request,
    Response,
    TextPart,
    ToolCallPart,
    ToolResultPart,
    ToolSpec,
    Usage,
)

CANARY = "CANARY-prompt-3b9e1d"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[CacheStore]:
    s = CacheStore(tmp_path / "cache", max_bytes=1 << 20)
    yield s
    s.close()


def _rows(path: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT key, size FROM entries ORDER BY key").fetchall()


# --------------------------------------------------------------------------- blocking store


def test_put_then_get_returns_the_bytes_and_a_miss_is_none(store: CacheStore) -> None:
    """A stored response comes back byte for byte; an unknown key is None."""
    store.put("k1", {"model": "m"}, b"response-1")
    assert store.get("k1") == b"response-1"
    assert store.get("nope") is None
    store.put("k1", {"model": "m"}, b"response-2")
    assert store.get("k1") == b"response-2"
    assert store.stats().entries == 1
    assert store.materials(10) == [("k1", {"model": "m"})]


def test_folder_path_gets_a_database_file_in_wal_mode(store: CacheStore, tmp_path: Path) -> None:
    """``cache.path`` names a folder; the file in it is in WAL mode with a busy timeout."""
    store.put("k", {}, b"x")
    assert store.path == db_path(tmp_path / "cache") == tmp_path / "cache" / "responses.sqlite3"
    with sqlite3.connect(store.path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    timeout = store._conn().execute("PRAGMA busy_timeout").fetchone()[0]
    assert timeout > 0


def test_lru_eviction_keeps_the_total_under_the_cap(tmp_path: Path) -> None:
    """Over max_bytes, the least recently used entries go first; a read counts as a use."""
    s = CacheStore(tmp_path / "c.sqlite3", max_bytes=1000)
    try:
        for i in range(4):
            s.put(f"k{i}", {"i": i}, b"x" * 200)
        assert s.get("k0") is not None  # k0 is now the most recently used
        s.put("k4", {"i": 4}, b"x" * 200)  # 5 x ~210 bytes > 1000
        stats = s.stats()
        assert stats.total_bytes <= 1000
        kept = {key for key, _ in _rows(s.path)}
        assert kept == {"k0", "k2", "k3", "k4"}
        assert sum(size for _, size in _rows(s.path)) == stats.total_bytes
        s.put("huge", {}, b"y" * 5000)  # alone over the cap: nothing over the cap is kept
        assert s.stats().total_bytes <= 1000
        assert s.get("huge") is None
    finally:
        s.close()


def _writer(path: str, prefix: str, count: int, barrier: Any) -> None:
    store = CacheStore(path, max_bytes=1 << 30, busy_timeout=60)
    barrier.wait()
    for i in range(count):
        store.put(f"{prefix}-{i}", {"writer": prefix, "i": i}, f"{prefix}:{i}".encode() * 20)
        if i % 7 == 0:
            store.get(f"{prefix}-{i // 2}")
    store.close()


def test_two_processes_writing_at_once_lose_nothing(tmp_path: Path) -> None:
    """2 processes x 300 puts on one file: every entry is there and the file is sound."""
    path = str(tmp_path / "shared.sqlite3")
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    procs = [ctx.Process(target=_writer, args=(path, name, 300, barrier)) for name in "ab"]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = dict(conn.execute("SELECT key, response FROM entries").fetchall())
    assert len(rows) == 600
    for name in "ab":
        for i in range(300):
            assert rows[f"{name}-{i}"] == f"{name}:{i}".encode() * 20


def test_connections_are_per_thread(store: CacheStore) -> None:
    """Each thread gets its own connection; close() closes all of them."""
    store.put("k", {}, b"v")
    seen: list[sqlite3.Connection] = []

    def use() -> None:
        assert store.get("k") == b"v"
        seen.append(store._conn())

    t = threading.Thread(target=use)
    t.start()
    t.join()
    assert seen[0] is not store._conn()
    store.close()
    with pytest.raises(sqlite3.ProgrammingError):
        seen[0].execute("SELECT 1")


# --------------------------------------------------------------------------- async, modes


def _request(text: str = "What is 2+2?", temperature: float = 0.0) -> Request:
    return Request(
        "model-x",
        [Message.user(f"{CANARY} hello"),
         Message("assistant", [TextPart("calling"), ToolCallPart("c1", "calc", "{}")]),
         Message("tool", [ToolResultPart("c1", f"{CANARY} result", name="calc")]),
         Message.user(text)],
        system=f"You are {CANARY}.",
        tools=[ToolSpec("calc", f"calculates for {CANARY}")],
        params=Params(temperature=temperature),
    )


RESPONSE = Response("resp-1", "model-x", [TextPart("4")], "stop", "stop", Usage(30, 1))


def _cache(tmp_path: Path, mode: Any, hash_prompts: bool = False) -> ResponseCache:
    return ResponseCache(AsyncCacheStore(CacheStore(tmp_path / "cache", max_bytes=1 << 20)),
                         mode, hash_prompts=hash_prompts)


async def test_async_facade_stores_and_serves_concurrent_turns(tmp_path: Path) -> None:
    """Concurrent stores and lookups from trio tasks all land; the loop keeps running."""
    cache = _cache(tmp_path, "read-through")
    reqs = [_request(f"question {i}") for i in range(20)]
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            for i, req in enumerate(reqs):
                resp = Response(f"r{i}", "model-x", [TextPart(f"answer {i}")])
                nursery.start_soon(cache.store, "openai_chat", req, resp)
        async with trio.open_nursery() as nursery:
            results: dict[int, Response | None] = {}

            async def look(i: int) -> None:
                key, results[i] = await cache.lookup("openai_chat", reqs[i])
                assert key == cache_key("openai_chat", reqs[i])

            for i in range(len(reqs)):
                nursery.start_soon(look, i)
        stats = await cache.backend.stats()
        await cache.backend.aclose()
    assert stats.entries == len(reqs)
    assert {i: r.text if r else None for i, r in results.items()} == {
        i: f"answer {i}" for i in range(len(reqs))}


@pytest.mark.parametrize(("mode", "serves", "records"), [
    ("read-through", True, True),
    ("record-only", False, True),
    ("bypass", False, False),
    ("replay", True, False),
])
async def test_modes_serve_and_record_as_specified(
    tmp_path: Path, mode: Any, serves: bool, records: bool
) -> None:
    """Each mode serves a stored answer and records a new one exactly as documented."""
    cache = _cache(tmp_path, mode)
    seed = ResponseCache(cache.backend, "record-only")
    old, new = _request("old"), _request("new")
    with trio.fail_after(10):
        await seed.store("anthropic", old, RESPONSE)
        key, hit = await cache.lookup("anthropic", old)
        assert (hit == RESPONSE) is serves and (hit is None) is not serves
        await cache.store("anthropic", new, RESPONSE)
        stored = await cache.backend.get(cache_key("anthropic", new))
        assert (stored is not None) is records
        if mode == "read-through":
            assert (await cache.lookup("anthropic", new))[1] == RESPONSE
        await cache.backend.aclose()
    assert key == cache_key("anthropic", old)


@pytest.mark.parametrize("hash_prompts", [False, True])
async def test_replay_miss_names_the_differing_path(tmp_path: Path, hash_prompts: bool) -> None:
    """A replay miss fails as bad_request naming the key prefix and messages[3].content."""
    recorder = _cache(tmp_path, "record-only", hash_prompts)
    with trio.fail_after(10):
        await recorder.store("openai_chat", _request(), RESPONSE)
        await recorder.store("openai_chat", _request("other", temperature=1.0), RESPONSE)
        replay = ResponseCache(recorder.backend, "replay", hash_prompts=hash_prompts)
        assert (await replay.lookup("openai_chat", _request()))[1] == RESPONSE
        changed = _request("What is 3+3?")
        with pytest.raises(CacheMissError) as info:
            await replay.lookup("openai_chat", changed)
        await recorder.backend.aclose()
    err = info.value
    assert err.kind is ErrorKind.BAD_REQUEST
    assert cache_key("openai_chat", changed)[:8] in err.message
    assert err.paths == ["messages[3].content"]
    assert "differs at messages[3].content" in err.message


async def test_replay_miss_on_an_empty_cache(tmp_path: Path) -> None:
    """With nothing recorded, the miss says so."""
    cache = _cache(tmp_path, "replay")
    with trio.fail_after(10), pytest.raises(CacheMissError, match="no recorded request"):
        await cache.lookup("openai_chat", _request())
    await cache.backend.aclose()


async def test_damaged_value_is_a_miss(tmp_path: Path) -> None:
    """A stored value that no longer decodes is dropped and treated as a miss."""
    cache = _cache(tmp_path, "read-through")
    req = _request()
    with trio.fail_after(10):
        await cache.backend.put(cache_key("k", req), {}, b"not json")
        assert (await cache.lookup("k", req))[1] is None
        assert await cache.backend.get(cache_key("k", req)) is None
        await cache.backend.aclose()


def _file_bytes(db: Path) -> bytes:
    return b"".join(p.read_bytes() for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm"))
                    if p.exists())


@pytest.mark.parametrize("hash_prompts", [True, False])
async def test_hash_prompts_keeps_prompt_text_out_of_the_file(
    tmp_path: Path, hash_prompts: bool
) -> None:
    """With hash_prompts the canary is nowhere in the db/-wal/-shm bytes (without, it is),
    and the response is still stored and served."""
    cache = _cache(tmp_path, "read-through", hash_prompts)
    req = _request()
    with trio.fail_after(10):
        await cache.store("openai_chat", req, RESPONSE)
        _, hit = await cache.lookup("openai_chat", req)
        await cache.backend.checkpoint()
        db = cache.backend.store.path
        data = _file_bytes(db)
        await cache.backend.aclose()
    assert hit == RESPONSE
    assert encode_response(RESPONSE) in data
    assert (CANARY.encode() in data) is not hash_prompts
