"""``python main.py --config agent.yaml [...]``: the command line (see README.md).

A thin client of the engine (``runtime.engine``): it parses the arguments, loads the config,
starts or resumes a session, renders its records on the console and maps its status to the
exit code: 0 finished, 1 an internal failure, 2 bad configuration or usage, 3 provider
failure after retries and fallbacks, 4 a budget or turn limit was hit, 130 interrupted
(SIGINT), 143 terminated (SIGTERM).

With no task and a terminal on stdin (or ``-i``) it is interactive
(``runtime.cli.interactive``); otherwise a live status line is drawn on stderr when stderr
is a terminal (``runtime.cli.status``). ``--tasks FILE`` runs a batch of tasks instead
(``runtime.cli.batch``, README "Batch mode").

Subcommands (``python main.py NAME ...``) live in their own modules, listed in
``SUBCOMMANDS``: each module has ``main(argv, *, stdout, stderr) -> int``: ``compare``, ``runs`` (the
runs, newest first) and ``report RUN_ID`` (one run as Markdown or HTML).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO, cast

import trio

from ..config import AgentConfig, load_config
from ..errors import ConfigError
from ..redact import Redactor
from .console import Console, configure_logging
from .status import Screen, ScreenStream, is_terminal

__all__ = ["SUBCOMMANDS", "build_parser", "main"]

EXIT_USAGE = 2

# name -> module of runtime.cli with main(argv, *, stdout, stderr) -> int
SUBCOMMANDS: dict[str, str] = {"compare": "compare", "runs": "runs", "report": "report",
                               "serve": "serve", "audit": "audit", "worker": "worker",
                               "fleet": "fleet"}


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
    p.add_argument("--resume", metavar="RUN_ID", help="continue an earlier run from its journal "
                   "(an id as `runs` lists it, or last: the newest run)")
    p.add_argument("-i", "--interactive", action="store_true",
                   help="chat on the terminal (the default with no task and a terminal on "
                        "stdin); a task, if given, is the first message")
    p.add_argument("--log-format", choices=["console", "json"],
                   help="stderr log format (logging.format)")
    batch = p.add_argument_group("batch mode (README: Batch mode)")
    batch.add_argument("--tasks", metavar="FILE",
                       help="run every task of a JSON-lines file (- reads stdin), each in "
                            "its own run folder")
    batch.add_argument("--concurrency", type=int, metavar="N",
                       help="tasks running at once (default 8)")
    batch.add_argument("--batch-id", metavar="ID",
                       help="name of the batch folder under logging/; rerun it to finish it")
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
    if args.tasks is None and (args.concurrency is not None or args.batch_id is not None):
        err.write("error: --concurrency and --batch-id go with --tasks FILE\n")
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
    if args.tasks is not None:  # batch mode: its own display, no status line
        from . import batch

        configure_logging(redactor, fmt, err)
        return batch.main(args, cfg, Console(out, err, redactor, fmt=fmt), redactor=redactor,
                          fmt=fmt)
    screen = Screen(out, err, live=None if fmt == "console" else False)
    # log lines of the runtime (MCP, tools) go above the status line too
    configure_logging(redactor, fmt, cast(TextIO, ScreenStream(screen, answer=False))
                      if screen.enabled else err)
    resume, folder = args.resume, None
    if resume is not None:
        from ..report.folder import resolve_run

        try:
            resume, folder, _ = resolve_run(Path(cfg.logging.dir), resume)
        except ConfigError as exc:
            err.write(f"error: {exc}\n")
            return EXIT_USAGE
        if folder == Path(cfg.logging.dir):
            folder = None
    chat = args.interactive or (args.task is None and _isatty(sys.stdin)
                                and (args.resume is not None or not cfg.task))
    if chat:
        if not _isatty(sys.stdin):
            err.write("error: interactive mode needs a terminal on stdin (fix: give --task, "
                      "or run it in a terminal)\n")
            return EXIT_USAGE
        return _interactive(cfg, out, err, redactor, task=task, resume=resume,
                            folder=folder, run_id=args.run_id, screen=screen)
    if screen.enabled:
        console = Console(cast(TextIO, ScreenStream(screen, answer=True)),
                          cast(TextIO, ScreenStream(screen, answer=False)), redactor, fmt=fmt)
    else:
        console = Console(out, err, redactor, fmt=fmt)
    if not resume:
        task = task or cfg.task
        if not task or not task.strip():
            console.line(f"error: {args.config}: task: no task given (fix: pass --task TEXT, "
                         "--task - to read stdin, or set task: in the config)")
            return EXIT_USAGE

    from .attach import run

    try:
        result = trio.run(lambda: run(cfg, console, task=task, run_id=args.run_id,
                                      resume=resume, folder=folder, screen=screen))
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


def _isatty(stream: object) -> bool:
    return is_terminal(stream)


def _interactive(cfg: AgentConfig, out: TextIO, err: TextIO, redactor: Redactor, *,
                 task: str | None, resume: str | None, folder: Path | None,
                 run_id: str | None, screen: Screen) -> int:
    """Interactive mode (``runtime.cli.interactive``); the terminal's modes are restored
    whatever happens to the line editor."""
    from .interactive import run_interactive

    saved = _terminal_modes()
    try:
        result = trio.run(lambda: run_interactive(cfg, out, err, redactor=redactor,
                                                  resume=resume, run_id=run_id,
                                                  folder=folder, task=task, screen=screen))
    except ConfigError as exc:
        err.write(f"error: {exc}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        err.write("interrupted\n")
        return 130
    finally:
        _restore_terminal(saved)
    return result.exit_code


def _terminal_modes() -> Any:
    try:
        import termios

        return termios.tcgetattr(sys.stdin.fileno())
    except (ImportError, OSError, ValueError, AttributeError):
        return None


def _restore_terminal(saved: Any) -> None:
    if saved is None:
        return
    import termios

    try:
        termios.tcsetattr(sys.stdin.fileno(), termios.TCSADRAIN, saved)
    except (OSError, ValueError):
        pass
