"""Spending budgets beyond one session: ``budgets: {daily_usd, monthly_usd}`` per config.

A ``Budget`` is asked before every request whether the next one may go out (``check``)
and told what each response cost (``charge``). ``LocalBudget`` counts in this process
(UTC days and months); ``runtime.fleet.budgets.RedisBudget`` counts across the fleet, and
also counts each session's own spending (``limits.max_cost_usd``) wherever it ran.

``check`` returns None, or the message of the budget the request would cross (the session
then ends with ``limit``, exit 4). A request in flight is not stopped: spending may pass a
budget by at most the requests already sent when it was reached.
"""

from __future__ import annotations

import datetime as _dt
import time
from collections.abc import Callable
from typing import Protocol, runtime_checkable

__all__ = ["Budget", "LocalBudget", "budget_message"]


@runtime_checkable
class Budget(Protocol):
    async def check(self, run_id: str, estimate: float,
                    session_limit: float | None = None) -> str | None: ...

    async def charge(self, run_id: str, cost: float) -> None: ...


def budget_message(which: str, spent: float, limit: float, estimate: float) -> str:
    """The message of a budget reached: which one, what was spent, the limit."""
    key = {"daily": "budgets.daily_usd", "monthly": "budgets.monthly_usd",
           "session": "limits.max_cost_usd"}[which]
    scope = {"daily": "today (UTC)", "monthly": "this month (UTC)",
             "session": "by this session"}[which]
    return (f"{which} budget reached: ${spent:.4f} spent {scope}, next turn estimated at "
            f"${estimate:.4f}, limit ${limit:.4f} ({key})")


class LocalBudget:
    """Daily and monthly budgets counted by this process only."""

    def __init__(self, daily_usd: float | None, monthly_usd: float | None, *,
                 wall: Callable[[], float] = time.time) -> None:
        self.daily_usd = daily_usd
        self.monthly_usd = monthly_usd
        self.wall = wall
        self.spent: dict[str, float] = {}

    def _periods(self) -> tuple[str, str]:
        t = _dt.datetime.fromtimestamp(self.wall(), _dt.UTC)
        return "d" + t.strftime("%Y-%m-%d"), "m" + t.strftime("%Y-%m")

    async def check(self, run_id: str, estimate: float,
                    session_limit: float | None = None) -> str | None:
        day, month = self._periods()
        for which, key, limit in (("daily", day, self.daily_usd),
                                  ("monthly", month, self.monthly_usd)):
            spent = self.spent.get(key, 0.0)
            if limit is not None and (spent >= limit or spent + estimate > limit):
                return budget_message(which, spent, limit, estimate)
        return None

    async def charge(self, run_id: str, cost: float) -> None:
        if cost <= 0:
            return
        for key in self._periods():
            self.spent[key] = self.spent.get(key, 0.0) + cost
