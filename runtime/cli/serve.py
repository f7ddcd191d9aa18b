"""``python main.py serve --config agent.yaml [--host H] [--port P]``: service mode.

Loads the config (``server:`` included), sets up the stderr log like the command line does,
and runs ``runtime.server.run.serve`` until a signal has drained it. Exit codes: 0 after a
drain, 2 bad configuration or usage, 1 an internal failure.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any, TextIO

import structlog
import trio

from ..config import load_config
from ..errors import ConfigError
from ..redact import Redactor
from .console import configure_logging

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python main.py serve",
                                description="Serve sessions over an authenticated HTTP API.")
    p.add_argument("--config", required=True, help="the agent.yaml (with its server: section)")
    p.add_argument("--host", help="address to listen on (server.host)")
    p.add_argument("--port", type=int, help="port to listen on (server.port; 0: any free one)")
    p.add_argument("--log-format", choices=["console", "json"],
                   help="stderr log format (logging.format)")
    return p


def main(argv: Sequence[str], *, stdout: TextIO | None = None,
         stderr: TextIO | None = None) -> int:
    err = stderr or sys.stderr
    try:
        args = _parser().parse_args(list(argv))
    except SystemExit as exc:
        return 2 if exc.code else 0
    if args.port is not None and not 0 <= args.port <= 65535:
        err.write("error: --port must be from 0 to 65535\n")
        return 2
    try:
        cfg = load_config(args.config)
    except ConfigError as exc:
        err.write(f"error: {exc}\n")
        return 2
    redactor = Redactor(cfg.secrets(), cfg.logging.redact)
    configure_logging(redactor, args.log_format or cfg.logging.format, err)
    logger = structlog.get_logger("conductor.serve")

    def say(event: str, **fields: Any) -> None:
        logger.info(event, **fields)

    from ..server.run import serve

    try:
        trio.run(lambda: serve(cfg, host=args.host, port=args.port, err=err, log=say))
    except ConfigError as exc:
        say("error", message=str(exc))
        return 2
    except KeyboardInterrupt:
        return 130
    except BaseException as exc:  # a bug: reported whole, but redacted
        import traceback

        say("internal_failure", traceback="".join(traceback.format_exception(exc)))
        return 1
    return 0
