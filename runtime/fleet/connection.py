"""The connection to the fleet's Redis: one ``coredis`` client per process, its scripts.

``open_backend(cfg)`` is an async context manager (coredis clients are: the pool owns a
task group, which under trio is a nursery). Commands multiplex over a small pool; a
blocking read (``XREADGROUP ... BLOCK``, ``XREAD ... BLOCK``) takes a connection of its own
while it waits. A lost connection surfaces as ``coredis.exceptions.ConnectionError`` (or
``TimeoutError``) at the call, after coredis's own short retries; the next call connects
again, and a script missing after a Redis restart is loaded again (``EVALSHA`` falls back to
``EVAL``). Callers that must ride out a longer outage use :func:`retrying`.

The pool is coredis's with one correction (``_Pool``): a connection that comes back
unusable (a blocking read cancelled, or cut by a Redis restart) gives its slot back. As
shipped (6.9) that slot is lost, so a worker that cancels a blocking read once per session
(or lives through restarts) runs out of connections and every call then waits forever.
"""

from __future__ import annotations

import contextlib
import math
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import attrs
import coredis
import coredis.exceptions
import trio

from ..config import BackendConfig
from . import lua
from .keys import Keys

__all__ = ["DOWN", "Backend", "as_text", "backoff", "open_backend", "retrying"]

T = TypeVar("T")

# what a lost or unreachable Redis raises
DOWN: tuple[type[BaseException], ...] = (
    coredis.exceptions.ConnectionError, TimeoutError, ConnectionError, OSError)

_PING_FAILURES: tuple[type[BaseException], ...] = (trio.TooSlowError, *DOWN)

_SCRIPTS = {
    "limiter": lua.LIMITER, "breaker": lua.BREAKER, "budget": lua.BUDGET,
    "cache_put": lua.CACHE_PUT, "cache_get": lua.CACHE_GET, "cache_del": lua.CACHE_DEL, "append": lua.APPEND,
    "take": lua.TAKE, "renew": lua.RENEW, "finish": lua.FINISH, "requeue": lua.REQUEUE,
    "cancel_queued": lua.CANCEL_QUEUED,
}


@attrs.define(eq=False)
class Backend:
    """A process's handle on the fleet's Redis: the client, the key names, the scripts."""

    config: BackendConfig
    redis: Any                      # coredis.Redis[bytes]
    keys: Keys
    _scripts: dict[str, Any] = attrs.field(factory=dict)
    # set while Redis answers; cleared by a caller that saw it fail (status, /ready)
    healthy: bool = True
    last_error: str = ""

    @property
    def lease_ms(self) -> int:
        return int(self.config.lease_timeout * 1000)

    async def run(self, name: str, keys: list[str], args: list[Any]) -> Any:
        """Run one of the scripts of ``runtime.fleet.lua`` (EVALSHA, loading it if needed)."""
        script = self._scripts.get(name)
        if script is None:
            script = self._scripts[name] = self.redis.register_script(_SCRIPTS[name])
        try:
            result = await script(keys=keys, args=[_arg(a) for a in args])
        except DOWN as exc:
            self.mark_down(exc)
            raise
        self.healthy = True
        return result

    def mark_down(self, exc: BaseException) -> None:
        self.healthy = False
        self.last_error = f"{type(exc).__name__}: {exc}"

    async def ping(self) -> bool:
        """Whether Redis answers now (and remember it)."""
        try:
            with trio.fail_after(2.0):
                await self.redis.ping()
        except _PING_FAILURES as exc:
            self.mark_down(exc)
            return False
        self.healthy = True
        return True

    async def server_time(self) -> float:
        """Redis's clock (epoch seconds): the one clock of the fleet."""
        stamp = await self.redis.time()
        return float(stamp.timestamp())


def _arg(value: Any) -> Any:
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ("inf" if value > 0 else "-inf")
    if value is None:
        return ""
    return value


class _Pool(coredis.ConnectionPool[Any]):
    """coredis's pool, whose slots come back with the connections that die."""

    def release(self, connection: Any) -> None:
        if connection.usable:
            super().release(connection)
            return
        self.statistics.connection_released(connection)
        available = self._available_connections
        if connection not in available:  # the empty slot: a new connection when needed
            available.put_nowait(None)


@contextlib.asynccontextmanager
async def open_backend(cfg: BackendConfig, *, max_connections: int | None = None
                       ) -> AsyncIterator[Backend]:
    """Connect to ``backend.url`` (lazily: the first command connects). A blocking read
    holds a connection while it waits: ``max_connections`` bounds the watchers and
    workers' control readers of one process (default ``backend.max_connections``)."""
    pool = _Pool.from_url(cfg.url, decode_responses=False,
                          max_connections=max_connections or cfg.max_connections,
                          connect_timeout=5.0)
    client = coredis.Redis(connection_pool=pool, decode_responses=False)
    async with client:
        yield Backend(cfg, client, Keys(cfg.prefix))


def as_text(value: object) -> str:
    """A value of a Redis reply (the client answers bytes) as text."""
    return value.decode() if isinstance(value, bytes) else str(value)


def backoff(attempt: int, *, base: float = 0.1, cap: float = 5.0,
            rng: random.Random | None = None) -> float:
    """Seconds before reconnect attempt ``attempt`` (1, 2, ...): exponential with full
    jitter, at most ``cap``."""
    high = min(cap, base * (2 ** min(attempt - 1, 20)))
    return (rng or random).uniform(high / 2, high)


async def retrying(backend: Backend, call: Callable[[], Awaitable[T]], *,
                   sleep: Callable[[float], Awaitable[object]] = trio.sleep) -> T:
    """``call()`` until Redis answers it, waiting with :func:`backoff` in between (a
    restart or a lost connection is ridden out; other errors are raised)."""
    attempt = 0
    while True:
        try:
            result = await call()
        except DOWN as exc:
            backend.mark_down(exc)
            attempt += 1
            await sleep(backoff(attempt))
            continue
        backend.healthy = True
        return result
