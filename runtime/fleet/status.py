"""What the fleet is doing, read from Redis (for ``python main.py fleet`` and ``/ready``):
workers and their heartbeats, the queue, sessions under lease, each provider's shared
limiter and breaker, the budgets spent."""

from __future__ import annotations

import time
from typing import Any

import attrs

from ..config import AgentConfig
from ..resilience.ratelimit import limiter_key
from .budgets import RedisBudget
from .connection import Backend, as_text
from .limiter import RedisBreaker, RedisLimiter
from .queue import SessionQueue

__all__ = ["Snapshot", "snapshot"]


@attrs.frozen
class Snapshot:
    redis: str
    workers: list[dict[str, Any]]
    queued: int
    delivered: int
    leases: list[dict[str, Any]]
    providers: list[dict[str, Any]]
    budgets: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


async def snapshot(backend: Backend, cfg: AgentConfig, *, recent: int = 500) -> Snapshot:
    """One look at the fleet (``recent``: how many of the newest sessions are searched for
    live leases)."""
    redis, keys = backend.redis, backend.keys
    now = time.time()
    info = await redis.info("server")
    version = as_text(info.get("redis_version", "?"))
    workers: list[dict[str, Any]] = []
    for name in sorted(as_text(n) for n in await redis.smembers(keys.workers)):
        beat = {as_text(k): as_text(v) for k, v in (await redis.hgetall(keys.worker(name))).items()}
        if not beat:
            await redis.srem(keys.workers, [name])  # its heartbeat expired: gone
            continue
        workers.append({"name": name, "host": beat.get("host", ""), "pid": beat.get("pid", ""),
                        "running": int(beat.get("running", 0)),
                        "concurrency": int(beat.get("concurrency", 0)),
                        "claiming": beat.get("claiming") == "1",
                        "finished": int(beat.get("finished", 0)),
                        "resumed": int(beat.get("resumed", 0)),
                        "beat_age_s": round(now - float(beat.get("beat", now)), 1)})
    queue = SessionQueue(backend)
    queued, delivered = await queue.depth()
    leases: list[dict[str, Any]] = []
    newest = await redis.zrange(keys.sessions, 0, recent - 1, rev=True)
    for rid in [as_text(r) for r in newest]:
        ttl = await redis.pttl(keys.lease(rid))
        if ttl is None or ttl < 0:
            continue
        s = await queue.info(rid)
        leases.append({"run_id": rid, "worker": s.get("worker", ""),
                       "status": s.get("status", ""), "claims": int(s.get("claims", 0)),
                       "records": int(s.get("seq", 0) or 0),
                       "lease_left_s": round(ttl / 1000, 1)})
    providers: list[dict[str, Any]] = []
    for name, pc in cfg.providers.items():
        shared = limiter_key(name, pc.base_url or pc.kind, pc.api_key)
        rl = pc.rate_limit
        lim = RedisLimiter(backend, shared, rl.requests_per_minute, rl.tokens_per_minute)
        req, tok, held = await lim.peek()
        state, failures, retry_in = await RedisBreaker(
            backend, shared, pc.circuit.failure_threshold, pc.circuit.cooldown).peek()
        providers.append({"provider": name, "rpm": rl.requests_per_minute,
                          "requests_left": None if req == float("inf") else round(req, 2),
                          "tpm": rl.tokens_per_minute,
                          "tokens_left": None if tok == float("inf") else round(tok, 1),
                          "held_s": round(held, 1), "circuit": state.value,
                          "failures": failures, "probe_in_s": round(retry_in, 1)})
    budget = RedisBudget(backend, cfg.budgets.daily_usd, cfg.budgets.monthly_usd)
    day, month = await budget.totals()
    return Snapshot(f"{backend.config.url} (redis {version})", workers, queued, delivered,
                    leases, providers,
                    {"today_usd": round(day, 6), "daily_usd": cfg.budgets.daily_usd,
                     "month_usd": round(month, 6), "monthly_usd": cfg.budgets.monthly_usd})
