"""Budgets counted across the fleet: USD per UTC day, per UTC month and per session.

One script checks all three before a request (``check``); one adds a response's cost to
all three (``charge``, ``INCRBYFLOAT``): every worker and ``serve`` process sees the same
totals. While Redis is unreachable both wait for it (with backoff), as the journal does. Day and month are UTC.
"""

from __future__ import annotations

import time

from ..budgets import budget_message
from .connection import Backend, retrying
from .keys import periods

__all__ = ["RedisBudget"]


class RedisBudget:
    def __init__(self, backend: Backend, daily_usd: float | None,
                 monthly_usd: float | None) -> None:
        self.backend = backend
        self.daily_usd = daily_usd
        self.monthly_usd = monthly_usd

    def _keys(self, run_id: str) -> list[str]:
        day, month = periods(time.time())
        k = self.backend.keys
        return [k.budget_day(day), k.budget_month(month), k.budget_session(run_id)]

    async def check(self, run_id: str, estimate: float,
                    session_limit: float | None = None) -> str | None:
        if self.daily_usd is None and self.monthly_usd is None and session_limit is None:
            return None
        keys = self._keys(run_id)
        args = ["check", self.daily_usd, self.monthly_usd, session_limit, float(estimate)]
        found = await retrying(self.backend, lambda: self.backend.run("budget", keys, args))
        text = found.decode() if isinstance(found, bytes) else str(found or "")
        if not text:
            return None
        which, spent, limit = text.split(" ")
        return budget_message(which, float(spent), float(limit), estimate)

    async def charge(self, run_id: str, cost: float) -> None:
        if cost > 0:
            keys = self._keys(run_id)
            await retrying(self.backend,
                           lambda: self.backend.run("budget", keys, ["charge", float(cost)]))

    async def totals(self, run_id: str = "") -> tuple[float, float]:
        """(spent today, spent this month) across the fleet."""
        keys = self._keys(run_id)
        day, month = await self.backend.redis.mget(keys[:2])
        return float(day or 0), float(month or 0)
