"""``python main.py fleet --config agent.yaml [--json]``: the fleet at a glance.

Workers (heartbeat age, sessions running of their concurrency, finished, resumed), the
queue (entries waiting, delivered and unfinished), sessions under lease (worker, claims,
lease left), each provider's shared limiter (requests and tokens left, a provider's hold)
and circuit, and the budgets spent. Tables on stdout (``rich``), or one JSON object.
Exit 2: bad configuration or no ``backend:``; 1: Redis unreachable.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import Any, TextIO

import trio

from ..config import load_config
from ..errors import ConfigError

__all__ = ["main"]


def main(argv: Sequence[str], *, stdout: TextIO, stderr: TextIO) -> int:
    p = argparse.ArgumentParser(prog="python main.py fleet",
                                description="Show the workers, queue, leases and shared "
                                            "limits of a fleet (backend: in agent.yaml).")
    p.add_argument("--config", required=True, help="the agent.yaml (with backend:)")
    p.add_argument("--json", action="store_true", help="one JSON object instead of tables")
    try:
        args = p.parse_args(list(argv))
    except SystemExit as exc:
        return 2 if exc.code else 0
    try:
        cfg = load_config(args.config)
    except ConfigError as exc:
        stderr.write(f"error: {exc}\n")
        return 2
    if cfg.backend is None:
        stderr.write(f"error: {args.config}: backend: is not set (fix: add backend: "
                     "{url: redis://HOST:PORT/0})\n")
        return 2
    from ..fleet.connection import DOWN

    try:
        snap = trio.run(_snapshot, cfg)
    except DOWN as exc:
        stderr.write(f"error: cannot reach Redis at {cfg.backend.url}: {exc}\n")
        return 1
    if args.json:
        stdout.write(json.dumps(snap.to_dict()) + "\n")
    else:
        _render(snap, stdout)
    return 0


async def _snapshot(cfg: Any) -> Any:
    from ..fleet.connection import open_backend
    from ..fleet.status import snapshot

    async with open_backend(cfg.backend) as backend:
        return await snapshot(backend, cfg)


def _render(snap: Any, out: TextIO) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(file=out, width=120)
    console.print(f"redis: {snap.redis}   queue: {snap.queued} waiting, "
                  f"{snap.delivered} delivered and unfinished")

    def table(title: str, rows: list[dict[str, Any]], empty: str) -> None:
        if not rows:
            console.print(f"{title}: {empty}")
            return
        t = Table(title=title, title_justify="left")
        for col in rows[0]:
            t.add_column(col)
        for row in rows:
            t.add_row(*("-" if v is None else str(v) for v in row.values()))
        console.print(t)

    table("workers", snap.workers, "none alive")
    table("leases", snap.leases, "no session is running")
    table("providers", snap.providers, "none")
    b = snap.budgets
    console.print(f"budgets: today ${b['today_usd']:.4f} of {_limit(b['daily_usd'])}, "
                  f"this month ${b['month_usd']:.4f} of {_limit(b['monthly_usd'])}")


def _limit(value: float | None) -> str:
    return "no limit" if value is None else f"${value:.2f}"
