"""``python main.py worker --config agent.yaml [--concurrency N] [--name NAME]``.

A fleet worker (``runtime.fleet.worker``): it needs ``backend:`` in the config, claims
queued sessions from Redis and runs up to N at once on one engine. Progress goes to stderr
as structlog lines (``--log-format json``: one JSON object a line). SIGTERM or SIGINT
stops claiming, gives running sessions ``--grace`` seconds, hands the rest back to the
queue and exits 0; a second signal stops at once (the leases then run out and other
workers resume the sessions). Exit 2: bad configuration or usage.
"""

from __future__ import annotations

import argparse
import signal
from collections.abc import Sequence
from typing import Any, TextIO

import structlog
import trio

from ..config import load_config
from ..errors import ConfigError
from ..redact import Redactor
from .console import configure_logging

__all__ = ["main"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python main.py worker",
                                description="Run queued sessions of a fleet (backend: in "
                                            "agent.yaml).")
    p.add_argument("--config", required=True, help="the agent.yaml (with backend:)")
    p.add_argument("--concurrency", type=int, default=4, help="sessions at once (default 4)")
    p.add_argument("--name", help="this worker's name (default host-pid)")
    p.add_argument("--grace", type=float, default=30.0,
                   help="seconds running sessions get when stopping (default 30)")
    p.add_argument("--log-format", choices=["console", "json"], help="stderr log format")
    return p


def main(argv: Sequence[str], *, stdout: TextIO, stderr: TextIO) -> int:
    try:
        args = build_parser().parse_args(list(argv))
    except SystemExit as exc:
        return 2 if exc.code else 0
    if args.concurrency < 1:
        stderr.write("error: --concurrency must be at least 1\n")
        return 2
    try:
        cfg = load_config(args.config)
    except ConfigError as exc:
        stderr.write(f"error: {exc}\n")
        return 2
    if cfg.backend is None:
        stderr.write(f"error: {args.config}: backend: a worker needs the fleet's Redis (fix: "
                     "add backend: {url: redis://HOST:PORT/0} to the config)\n")
        return 2
    redactor = Redactor(cfg.secrets(), cfg.logging.redact)
    configure_logging(redactor, args.log_format or cfg.logging.format, stderr)
    log = structlog.get_logger("worker")

    def on_event(name: str, fields: dict[str, Any]) -> None:
        level = "warning" if name in ("redis_lost", "session_lost", "session_failed") else "info"
        getattr(log, level)(name, **fields)

    try:
        trio.run(_run, cfg, args, on_event)
    except ConfigError as exc:
        stderr.write(f"error: {exc}\n")
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


async def _run(cfg: Any, args: argparse.Namespace, on_event: Any) -> None:
    from ..engine import Engine
    from ..fleet.connection import open_backend
    from ..fleet.worker import Worker

    stop = trio.Event()
    async with open_backend(cfg.backend) as backend, \
            Engine.open(cfg, backend=backend) as engine:
        worker = Worker(engine, backend, name=args.name, concurrency=args.concurrency,
                        on_event=on_event)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_signals, stop)
            await worker.run(stop, grace=args.grace)
            nursery.cancel_scope.cancel()


async def _signals(stop: trio.Event) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _sig in signals:
            if stop.is_set():
                raise KeyboardInterrupt
            stop.set()
