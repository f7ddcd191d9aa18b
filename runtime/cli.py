"""``python main.py --config agent.yaml [...]``: the command line (see README.md).

Exit codes: 0 finished, 2 bad configuration or usage, 3 provider failure after retries and
fallbacks, 4 a budget or turn limit was hit, 130 interrupted. The final answer goes to
stdout; progress, warnings and ``[provider-error]`` lines to stderr.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import TextIO

import structlog
import trio

from .config import load_config
from .errors import ConfigError
from .redact import Redactor

__all__ = ["build_parser", "configure_logging", "main"]

EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python main.py",
        description="Run an LLM agent session described by an agent.yaml.",
        epilog="exit codes: 0 finished, 2 bad configuration or usage, 3 provider failure "
               "after retries and fallbacks, 4 budget or turn limit, 130 interrupted",
    )
    p.add_argument("--config", required=True, help="the agent.yaml to run")
    p.add_argument("--task", help="the task (overrides task: in the config); - reads stdin")
    p.add_argument("--provider", help="the provider entry that drives the session")
    p.add_argument("--model", help="the model of that provider")
    p.add_argument("--max-turns", type=int, help="turn limit (limits.max_turns)")
    p.add_argument("--cache", choices=["read-through", "record-only", "bypass", "replay"],
                   help="response cache mode (cache.mode)")
    p.add_argument("--run-id", help="name of the run folder under logging/")
    p.add_argument("--resume", metavar="RUN_ID", help="continue an earlier run from its state")
    p.add_argument("--log-format", choices=["console", "json"],
                   help="stderr log format (logging.format)")
    return p


def configure_logging(redactor: Redactor, fmt: str, stream: TextIO) -> None:
    """structlog on stderr: console renderer (colours on a TTY) or JSON lines; every line
    carries the bound run_id/turn and goes through the redactor."""
    renderer: structlog.types.Processor
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=stream.isatty())
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redactor,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )


def main(argv: Sequence[str] | None = None, *, stdout: TextIO | None = None,
         stderr: TextIO | None = None) -> int:
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse already printed the usage error
        return EXIT_USAGE if exc.code else 0
    task = args.task
    if task == "-":
        task = sys.stdin.read()
    if args.max_turns is not None and args.max_turns < 1:
        err.write("error: --max-turns must be at least 1\n")
        return EXIT_USAGE
    overrides = {k: v for k, v in {
        "provider": args.provider, "model": args.model, "max_turns": args.max_turns,
        "cache": args.cache, "task": task}.items() if v is not None}
    try:
        cfg = load_config(args.config, overrides=overrides)
    except ConfigError as exc:
        err.write(f"error: {exc}\n")
        return EXIT_USAGE
    if not args.resume:
        task = task or cfg.task
    if not task and not args.resume:
        err.write(f"error: {args.config}: task: no task given (fix: pass --task TEXT, "
                  "--task - to read stdin, or set task: in the config)\n")
        return EXIT_USAGE
    redactor = Redactor(cfg.secrets(), cfg.logging.redact)
    configure_logging(redactor, args.log_format or cfg.logging.format, err)

    from .app import run_session

    try:
        outcome, run_dir = trio.run(lambda: run_session(
            cfg, task=task, run_id=args.run_id, resume=args.resume, stdout=out, stderr=err))
    except ConfigError as exc:
        err.write(f"error: {redactor.text(str(exc))}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        err.write("interrupted\n")
        return 130
    except BaseException as exc:  # a bug or a dead actor: reported whole, but redacted
        import traceback

        text = "".join(traceback.format_exception(exc))
        err.write(redactor.text(text))
        err.write("error: the session stopped on an internal failure (above); its run folder "
                  "was closed with session_end status error\n")
        return 1
    err.write(f"run folder: {run_dir}\n")
    return outcome.exit_code
