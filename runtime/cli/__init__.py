"""``python main.py --config agent.yaml [...]``: the command line (see README.md).

A thin client of the engine (``runtime.engine``): it parses the arguments, loads the config,
starts or resumes a session, renders its records on the console and maps its status to the
exit code: 0 finished, 1 an internal failure, 2 bad configuration or usage, 3 provider
failure after retries and fallbacks, 4 a budget or turn limit was hit, 130 interrupted
(SIGINT), 143 terminated (SIGTERM).

Subcommands (``python main.py NAME ...``) live in their own modules, listed in
``SUBCOMMANDS``: each module has ``main(argv, *, stdout, stderr) -> int``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TextIO

import trio

from ..config import load_config
from ..errors import ConfigError
from ..redact import Redactor
from .console import Console, configure_logging

__all__ = ["SUBCOMMANDS", "build_parser", "main"]

EXIT_USAGE = 2

# name -> module of runtime.cli with main(argv, *, stdout, stderr) -> int
SUBCOMMANDS: dict[str, str] = {"compare": "compare", "serve": "serve", "audit": "audit"}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python main.py",
        description="Run an LLM agent session described by an agent.yaml.",
        epilog="exit codes: 0 finished, 1 internal failure, 2 bad configuration or usage, "
               "3 provider failure after retries and fallbacks, 4 budget or turn limit, "
               "130 interrupted, 143 terminated",
    )
    p.add_argument("--config", required=True, help="the agent.yaml to run")
    p.add_argument("--task", help="the task (overrides task: in the config); - reads stdin")
    p.add_argument("--provider", help="the provider entry that drives the session")
    p.add_argument("--model", help="the model of that provider")
    p.add_argument("--max-turns", type=int, help="turn limit (limits.max_turns)")
    p.add_argument("--cache", choices=["read-through", "record-only", "bypass", "replay"],
                   help="response cache mode (cache.mode)")
    p.add_argument("--run-id", help="name of the run folder under logging/")
    p.add_argument("--resume", metavar="RUN_ID", help="continue an earlier run from its journal")
    p.add_argument("--log-format", choices=["console", "json"],
                   help="stderr log format (logging.format)")
    return p


def _read_stdin() -> str:
    """The task from stdin; bytes that are not UTF-8 are kept visible, never fatal."""
    data = sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read()
    if isinstance(data, bytes):
        return data.decode("utf-8", "backslashreplace")
    return data


def main(argv: Sequence[str] | None = None, *, stdout: TextIO | None = None,
         stderr: TextIO | None = None) -> int:
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list and args_list[0] in SUBCOMMANDS:
        import importlib

        module = importlib.import_module(f".{SUBCOMMANDS[args_list[0]]}", __name__)
        code: int = module.main(args_list[1:], stdout=out, stderr=err)
        return code
    parser = build_parser()
    try:
        args = parser.parse_args(args_list)
    except SystemExit as exc:  # argparse already printed the usage error
        return EXIT_USAGE if exc.code else 0
    task = args.task
    if task == "-":
        task = _read_stdin()
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
    redactor = Redactor(cfg.secrets(), cfg.logging.redact)
    fmt = args.log_format or cfg.logging.format
    configure_logging(redactor, fmt, err)
    console = Console(out, err, redactor, fmt=fmt)
    if not args.resume:
        task = task or cfg.task
        if not task or not task.strip():
            console.line(f"error: {args.config}: task: no task given (fix: pass --task TEXT, "
                         "--task - to read stdin, or set task: in the config)")
            return EXIT_USAGE

    from .attach import run

    try:
        result = trio.run(lambda: run(cfg, console, task=task, run_id=args.run_id,
                                      resume=args.resume))
    except ConfigError as exc:
        console.line(f"error: {exc}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        console.line("interrupted")
        return 130
    except BaseException as exc:  # a bug: reported whole, but redacted
        import traceback

        text = "".join(traceback.format_exception(exc))
        if fmt == "json":
            console.line("internal failure", traceback=text)
        else:
            err.write(redactor.text(text))
        console.line("error: the session stopped on an internal failure (above)")
        return 1
    if result.status == "error":
        console.line(f"error: {result.message}")
    return result.exit_code
