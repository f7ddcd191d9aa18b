"""The response cache shared by the fleet: the store behind ``ResponseCache`` in Redis.

Same keys as the local cache (``runtime.cache``: the canonical request document's
sha256), same values (the canonical ``Response`` as msgspec JSON) and the same modes (the
mode logic is ``cache_store.ResponseCache``'s, unchanged). Each entry lives
``backend.cache_ttl`` seconds; ``cache.max_bytes`` caps the total, least recently used
entries evicted first (one script per put: the size bookkeeping is atomic). While Redis
is unreachable a lookup waits for it (as the journal does before every request); a store
that Redis does not answer is skipped.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec

from ..cache_store import CacheStats
from .connection import DOWN, Backend, retrying

__all__ = ["RedisCacheStore"]


class RedisCacheStore:
    """The ``AsyncCacheStore`` interface over Redis."""

    def __init__(self, backend: Backend, *, max_bytes: int, ttl: float | None) -> None:
        if max_bytes <= 0:
            raise ValueError("max_bytes must be positive")
        self.backend = backend
        self.max_bytes = max_bytes
        self.ttl = ttl

    async def get(self, key: str) -> bytes | None:
        k = self.backend.keys
        value = await retrying(self.backend, lambda: self.backend.run(
            "cache_get", [k.cache_entry(key), k.cache_lru, k.cache_size],
            [key, time.time_ns() // 1000, k.cache_material("")]))
        return bytes(value) if value else None

    async def put(self, key: str, material: dict[str, Any], response: bytes) -> None:
        k = self.backend.keys
        text = msgspec.json.encode(material, order="sorted")
        size = len(key) + len(text) + len(response)
        try:
            await self.backend.run(
                "cache_put", [k.cache_entry(key), k.cache_material(key), k.cache_lru,
                              k.cache_size],
                [key, response, text, "" if self.ttl is None else int(self.ttl * 1000),
                 self.max_bytes, time.time_ns() // 1000, size, k.cache_entry(""),
                 k.cache_material("")])
        except DOWN:
            pass

    async def delete(self, key: str) -> None:
        k = self.backend.keys
        try:
            await self.backend.run("cache_del", [k.cache_entry(key), k.cache_material(key),
                                                 k.cache_lru, k.cache_size], [key])
        except DOWN:
            pass

    async def materials(self, limit: int = 200) -> list[tuple[str, dict[str, Any]]]:
        """``(key, material)`` of the most recently used entries, newest first."""
        k = self.backend.keys
        names = await retrying(self.backend, lambda: self.backend.redis.zrange(
            k.cache_lru, 0, limit - 1, rev=True))
        if not names:
            return []
        keys = [n.decode() for n in names]
        docs = await self.backend.redis.mget([k.cache_material(key) for key in keys])
        out: list[tuple[str, dict[str, Any]]] = []
        for key, doc in zip(keys, docs, strict=True):
            if doc is None:
                continue
            try:
                out.append((key, msgspec.json.decode(doc)))
            except msgspec.DecodeError:
                continue
        return out

    async def stats(self) -> CacheStats:
        k = self.backend.keys
        count = await self.backend.redis.zcard(k.cache_lru)
        total = await self.backend.redis.hget(k.cache_size, "#total")
        return CacheStats(self.backend.config.url + " " + k.k("cache"), int(count),
                          int(total or 0), self.max_bytes)

    async def checkpoint(self) -> None:
        """Nothing to move: Redis persists on its own."""

    async def aclose(self) -> None:
        """The connection belongs to the backend."""
