"""Batch mode: ``python main.py --config agent.yaml --tasks tasks.jsonl [--concurrency N]
[--batch-id ID]`` runs every task of a file through one engine (see README "Batch mode").

Each task is a session with its own run folder ``<logging.dir>/<batch_id>/<task id>/``; at
most ``--concurrency`` run at once. ``batch.json`` beside them (``batch_report``) is
rewritten, atomically and off the event loop, as tasks start and end, so an interruption
leaves it true. A rerun with the same batch id leaves tasks that finished or hit a limit
alone, resumes the others from their journals and starts those that never started; a
rerun with nothing left to do sends no request and writes nothing. Nobody answers approvals
in a batch: ``approval: ask`` calls are denied (the model is told why).

Ctrl-C (SIGINT) cancels the running tasks as ``interrupted`` and starts no more (exit 130),
SIGTERM as ``terminated`` (exit 143); their folders are closed and resumable; a second Ctrl-C
stops at once. Otherwise the exit code is 0 when every task finished, else the most serious
among the tasks: 1 (internal failure), then 3 (provider failure), then 4 (limit).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import resource
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

import attrs
import msgspec
import trio

from ..config import AgentConfig
from ..engine import Engine, new_run_id, valid_run_id
from ..errors import ConfigError
from ..redact import Redactor
from ..session.handle import Session, read_journal
from ..session.journal import offload, replace_file
from ..session.outcome import Status
from .batch_display import BarDisplay, Display, LineDisplay
from .batch_report import Tally, batch_document, plan, progress, summary_lines
from .batch_tasks import TaskSpec, parse_tasks
from .console import Console

__all__ = ["DEFAULT_CONCURRENCY", "BatchResult", "concurrency_bound", "main", "read_tasks",
           "run_batch"]

DEFAULT_CONCURRENCY = 8
BATCH_FILE = "batch.json"
LOCK_FILE = ".lock"          # task ids cannot start with a dot
STDIN = "<stdin>"
_REFRESH = 0.2               # s between two redraws of the progress bar
_WRITE_GAP = 0.25            # s at least between two rewrites of batch.json
EXIT_USAGE = 2


def concurrency_bound() -> int:
    """The most tasks this process may run at once: about four descriptors each (a
    connection, a journal write, a tool's pipes) within the open-file limit."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 4096
    return max(1, (soft - 64) // 4)


def read_tasks(path: str, cfg: AgentConfig) -> list[TaskSpec]:
    """The checked tasks of a tasks file, ``-`` for stdin (``ConfigError`` naming file,
    line and fix)."""
    try:
        if path == "-":
            path, data = STDIN, sys.stdin.buffer.read()
        else:
            data = Path(path).read_bytes()
    except FileNotFoundError:
        raise ConfigError("tasks file not found", file=path,
                          fix=f"check the --tasks path (relative paths start at "
                              f"{Path.cwd()})") from None
    except OSError as exc:
        raise ConfigError(f"cannot read the tasks file: {exc}", file=path,
                          fix="give a readable JSON-lines file") from None
    return parse_tasks(data, path, providers={n: list(p.models) for n, p in
                                              cfg.providers.items()},
                       default_provider=cfg.provider, valid_id=valid_run_id)


@attrs.frozen
class BatchResult:
    """How a run of a batch ended: ``document`` is what ``batch.json`` now says."""

    batch_id: str
    folder: Path
    document: dict[str, Any]
    exit_code: int


# ---- the batch folder -----------------------------------------------------------------

def _prepare(batch_dir: Path) -> None:
    if (batch_dir / "transcript.jsonl").exists():
        raise ConfigError(f"{batch_dir} is the run folder of a single session, not a batch",
                          path="--batch-id", fix="choose another --batch-id")
    batch_dir.mkdir(parents=True, exist_ok=True, mode=0o700)


@contextlib.contextmanager
def _locked(batch_dir: Path) -> Iterator[None]:
    """Hold the batch's lock: two processes never run the same batch."""
    fd = os.open(batch_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(f"batch {batch_dir.name} is being run by another process",
                              path="--batch-id",
                              fix="wait for it to end, or choose another --batch-id") from None
        yield
    finally:
        os.close(fd)


def _survey(batch_dir: Path, specs: list[TaskSpec]) -> list[Tally]:
    """The state of every task from its run folder (a rerun's starting point)."""
    tallies = []
    for spec in specs:
        run_dir = batch_dir / spec.id
        records = [rec for rec, _ in read_journal(run_dir)] if run_dir.is_dir() else []
        tallies.append(Tally.of(records))
    return tallies


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


# ---- the batch ------------------------------------------------------------------------

@attrs.define(eq=False)
class _Batch:
    """The state of one run of a batch: a tally per task, the sessions running."""

    batch_id: str
    batch_dir: Path
    specs: list[TaskSpec]
    tallies: list[Tally]
    display: Display
    config: str
    tasks_file: str
    started_at: float = attrs.field(factory=time.time)
    stopping: Status | None = None
    done: int = 0                  # tasks ended (settled ones included)
    sessions: dict[int, Session] = attrs.field(factory=dict)
    _dirty: trio.Event = attrs.field(factory=trio.Event)
    written: bytes | None = None   # what batch.json holds
    folders: list[str] = attrs.field(init=False)
    _rows: list[dict[str, Any] | None] = attrs.field(init=False)   # None: running

    def __attrs_post_init__(self) -> None:
        self.folders = [str(self.batch_dir / s.id) for s in self.specs]
        self._rows = [None] * len(self.specs)

    def row(self, i: int) -> dict[str, Any]:
        """Task i's row; kept once the task is no longer running (a long batch rewrites
        batch.json without rebuilding every row)."""
        row = self._rows[i]
        if row is None:
            row = self.tallies[i].row(self.specs[i], self.folders[i])
            if self.tallies[i].status != "running":
                self._rows[i] = row
        return row

    def document(self, state: str) -> dict[str, Any]:
        return batch_document(batch_id=self.batch_id, state=state, specs=self.specs,
                              tallies=self.tallies, folders=self.folders, config=self.config,
                              tasks_file=self.tasks_file, folder=str(self.batch_dir),
                              started_at=self.started_at,
                              rows=[self.row(i) for i in range(len(self.specs))])

    def stats(self) -> dict[str, Any]:
        return progress(self.tallies)

    def changed(self) -> None:
        self._dirty.set()

    async def write(self, state: str) -> dict[str, Any]:
        """Write ``batch.json`` (in a worker thread) unless it already says this."""
        doc = self.document(state)
        data = await offload(_encode, doc)
        if data != self.written:
            await offload(replace_file, self.batch_dir / BATCH_FILE, data)
            self.written = data
        return doc

    async def writer(self, *, task_status: trio.TaskStatus[None]) -> None:
        """Rewrite ``batch.json`` whenever a task started or ended (at most every
        ``_WRITE_GAP`` s)."""
        task_status.started()
        gap = max(_WRITE_GAP, len(self.specs) / 8000)  # ~4 MB a second at most
        while True:
            await self._dirty.wait()
            self._dirty = trio.Event()
            await self.write("running")
            await trio.sleep(gap)

    async def redraw(self) -> None:
        while True:
            await trio.sleep(_REFRESH)
            self.display.update(self.stats())

    def stop(self, status: Status) -> None:
        """A signal: start nothing more, cancel what runs (their folders are closed)."""
        first = self.stopping is None
        if self.stopping is None or status == "terminated":
            self.stopping = status
        for s in list(self.sessions.values()):
            s.cancel(self.stopping)
        if first:
            self.display.note(f"{status}: cancelling {len(self.sessions)} running task(s); "
                              "a rerun with the same --batch-id finishes the rest",
                              batch_id=self.batch_id)

    async def signals(self, *, task_status: trio.TaskStatus[None]) -> None:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as received:
            task_status.started()
            async for sig in received:
                if sig == signal.SIGINT and self.stopping == "interrupted":
                    raise KeyboardInterrupt  # a second Ctrl-C: stop at once
                self.stop("terminated" if sig == signal.SIGTERM else "interrupted")

    async def run_task(self, engine: Engine, i: int) -> None:
        spec, before = self.specs[i], self.tallies[i]
        resume = plan(before) == "resume"
        tally = self.tallies[i] = Tally.running()
        self._rows[i] = None
        self.changed()
        try:
            session = await engine.start(
                None if resume else spec.task, resume=spec.id if resume else None,
                run_id=None if resume else spec.id, provider=spec.provider, model=spec.model,
                max_turns=spec.max_turns, folder=self.batch_dir, on_approval="deny")
        except Exception as exc:  # the task cannot start (its folder, its journal)
            self.tallies[i] = before
            self._rows[i] = None
            before.fail(f"the task could not start: {type(exc).__name__}: {exc}", time.time())
            self.ended(i)
            return
        self.sessions[i] = session
        if self.stopping is not None:
            session.cancel(self.stopping)
        with contextlib.suppress(Exception):  # a folder that cannot be read: the result
            async for ev in session.events():
                tally.apply(ev)
        result = await session.result()
        tally.settle(result.status, result.exit_code, turns=result.turns,
                     message=result.message, totals=result.totals, at=time.time())
        del self.sessions[i]
        self.ended(i)

    def ended(self, i: int) -> None:
        """A task ended: its line (a constant cost: a batch of any size stays linear)."""
        self.done += 1
        self._rows[i] = None
        self.display.task_done(self.row(i), self.done, len(self.specs))
        self.changed()

    async def run(self, engine: Engine, todo: list[int], concurrency: int) -> None:
        """``concurrency`` workers take the tasks in file order until none is left or a
        signal came."""
        queue = deque(todo)

        async def worker() -> None:
            while queue and self.stopping is None:
                await self.run_task(engine, queue.popleft())

        async with trio.open_nursery() as nursery:
            for _ in range(min(concurrency, len(queue))):
                nursery.start_soon(worker)

    async def settle_cut(self) -> None:
        """After a hard stop: the sessions that were running ended with the engine."""
        for i, session in list(self.sessions.items()):
            if session.done:
                result = await session.result()
                self.tallies[i].settle(result.status, result.exit_code, turns=result.turns,
                                       message=result.message, totals=result.totals,
                                       at=time.time())
        self.sessions.clear()
        for i, tally in enumerate(self.tallies):
            if tally.live:  # started, never got as far as a session
                tally.live, tally.status = False, "incomplete"
            if tally.status != "pending":
                self._rows[i] = None


def _encode(doc: dict[str, Any]) -> bytes:
    return msgspec.json.format(msgspec.json.encode(doc), indent=2) + b"\n"


def _approval_note(cfg: AgentConfig) -> str | None:
    asked = sorted(name for name, mode in cfg.tools.approval.items() if mode == "ask")
    if not asked:
        return None
    return (f"batch mode answers no approval: calls of {', '.join(asked)} (approval: ask) are "
            f"denied; set tools.approval.<tool>: auto to let them run")


async def run_batch(cfg: AgentConfig, specs: list[TaskSpec], *, batch_id: str,
                    display: Display, concurrency: int = DEFAULT_CONCURRENCY,
                    config_file: str = "", tasks_file: str = "", signals: bool = True,
                    environ: dict[str, str] | None = None, mcp_errlog: TextIO | None = None,
                    **engine_options: Any) -> BatchResult:
    """Run (or resume) a batch to its end or to a signal; see the module docstring.
    ``engine_options`` are :meth:`Engine.open`'s seams (``transport``, ``providers``,
    ``tools``, ``hooks``)."""
    batch_dir = Path(cfg.logging.dir) / batch_id
    await offload(_prepare, batch_dir)
    with _locked(batch_dir):
        tallies = await offload(_survey, batch_dir, specs)
        batch = _Batch(batch_id, batch_dir, specs, tallies, display, config_file, tasks_file)
        batch.written = await offload(_read, batch_dir / BATCH_FILE)
        plans = [plan(t) for t in tallies]
        batch.done = plans.count("skip")  # an interrupted task ended but runs again: not done
        todo = [i for i, p in enumerate(plans) if p != "skip"]
        display.note(f"batch {batch_id}: {len(specs)} tasks ({plans.count('skip')} settled, "
                     f"{plans.count('resume')} to resume, {plans.count('start')} to start), "
                     f"concurrency {concurrency}, folder {batch_dir}", batch_id=batch_id,
                     folder=str(batch_dir), tasks=len(specs), concurrency=concurrency)
        note = _approval_note(cfg)
        if note and todo:
            display.note(f"warning: {note}", code="batch_approval")
        display.begin(batch.stats())
        state = "error"
        try:
            if todo:
                async with Engine.open(cfg, environ=environ, mcp_errlog=mcp_errlog,
                                       **engine_options) as engine:
                    if engine.key_warning:
                        display.note(f"warning: {engine.key_warning}", code="trace_key")
                    async with trio.open_nursery() as nursery:
                        if signals and threading.current_thread() is threading.main_thread():
                            await nursery.start(batch.signals)
                        await nursery.start(batch.writer)
                        if display.redraws:
                            nursery.start_soon(batch.redraw)
                        await batch.run(engine, todo, concurrency)
                        nursery.cancel_scope.cancel()
            state = batch.stopping or "complete"
        except BaseException as exc:
            if _only(exc, KeyboardInterrupt) is not None and batch.stopping is None:
                batch.stopping = "interrupted"  # Ctrl-C before the signals were ours
            raise
        finally:
            if state == "error" and batch.stopping is not None:
                state = batch.stopping
            with trio.CancelScope(shield=True):
                await batch.settle_cut()
                doc = await batch.write(state)
            display.close(batch.stats())
    return BatchResult(batch_id, batch_dir, doc, int(doc["exit_code"]))


# ---- the command line -----------------------------------------------------------------

def _usage(args: argparse.Namespace) -> str | None:
    for flag, value in (("--task", args.task), ("--resume", args.resume),
                        ("--run-id", args.run_id)):
        if value is not None:
            return f"{flag} cannot be used with --tasks (each task is a line of the file)"
    if getattr(args, "interactive", False):
        return "--interactive cannot be used with --tasks (a batch runs on its own)"
    if args.concurrency is not None and args.concurrency < 1:
        return "--concurrency must be at least 1"
    if args.batch_id is not None and not valid_run_id(args.batch_id):
        return ("--batch-id: use letters, digits, '.', '_' and '-' (not first), at most 128 "
                "characters")
    return None


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (ValueError, OSError):
        return False


def _display(console: Console, redactor: Redactor, fmt: str, err: TextIO) -> Display:
    if fmt == "console" and _isatty(err):
        from rich.console import Console as RichConsole

        return BarDisplay(RichConsole(file=err), redactor, get_time=trio.current_time)
    return LineDisplay(console)


def _batch_id(cfg: AgentConfig, given: str | None) -> str:
    if given is not None:
        return given
    while True:  # a fresh id names a folder that does not exist yet
        batch_id = new_run_id()
        if not (Path(cfg.logging.dir) / batch_id).exists():
            return batch_id


def _only(exc: BaseException, kind: type[BaseException]) -> BaseException | None:
    """``exc`` if it is a ``kind``, or the first ``kind`` of a group holding nothing else."""
    if isinstance(exc, kind):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        match, rest = exc.split(kind)
        while match is not None and rest is None:
            first = match.exceptions[0]
            if not isinstance(first, BaseExceptionGroup):
                return first
            match = first
    return None


def main(args: argparse.Namespace, cfg: AgentConfig, console: Console, *, redactor: Redactor,
         fmt: str) -> int:
    """``--tasks``: check everything, run the batch, print its summary on stdout."""
    problem = _usage(args)
    if problem is not None:
        console.line(f"error: {problem}")
        return EXIT_USAGE
    try:
        specs = read_tasks(args.tasks, cfg)
    except ConfigError as exc:
        console.line(f"error: {exc}")
        return EXIT_USAGE
    concurrency = args.concurrency or DEFAULT_CONCURRENCY
    bound = concurrency_bound()
    if concurrency > bound:
        console.line(f"warning: --concurrency {concurrency} is more than the open-file limit "
                     f"allows; running {bound} at once (raise ulimit -n for more)")
        concurrency = bound
    batch_id = _batch_id(cfg, args.batch_id)
    display = _display(console, redactor, fmt, console.err)
    mcp_errlog = console.err if isinstance(display, LineDisplay) else None
    try:
        result = trio.run(lambda: run_batch(
            cfg, specs, batch_id=batch_id, display=display, concurrency=concurrency,
            config_file=str(cfg.source),
            tasks_file=STDIN if args.tasks == "-" else str(Path(args.tasks).resolve()),
            mcp_errlog=mcp_errlog))
    except BaseException as exc:
        bad = _only(exc, ConfigError)
        if bad is not None:
            console.line(f"error: {bad}")
            return EXIT_USAGE
        if _only(exc, KeyboardInterrupt) is not None:  # a second Ctrl-C
            console.line("interrupted", batch_id=batch_id)
            return 130
        import traceback  # a bug: reported whole, but redacted

        text = "".join(traceback.format_exception(exc))
        if fmt == "json":
            console.line("internal failure", traceback=text)
        else:
            console.err.write(redactor.text(text))
        console.line("error: the batch stopped on an internal failure (above)")
        return 1
    if fmt == "json":
        doc = result.document
        console.write_out(json.dumps({k: doc[k] for k in (
            "batch_id", "state", "exit_code", "folder", "total", "counts", "totals",
            "latency_s")}, ensure_ascii=False) + "\n")
    else:
        console.write_out("\n".join(summary_lines(result.document)) + "\n")
    return result.exit_code
