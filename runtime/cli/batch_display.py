"""What a person sees of a batch on stderr: a live progress bar on a terminal, otherwise one
line per finished task.

``BarDisplay`` draws a ``rich`` progress bar (done/total, running, failed, tokens, cost,
ETA) and prints each task that did not finish above it; the batch redraws it
(:meth:`update`) a few times a second. ``LineDisplay`` writes one structlog line per ended
task (a JSON object with ``--log-format json``), ``info`` when it finished and ``warning``
otherwise. Both send notes (the batch's start, warnings) and every line through the
redactor. Neither touches stdout: the batch's summary goes there once, at the end.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from rich.console import Console as RichConsole
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from ..redact import Redactor
from .console import Console

__all__ = ["BarDisplay", "Display", "LineDisplay", "task_fields"]


class Display(Protocol):
    redraws: bool   # wants update() a few times a second

    def begin(self, stats: dict[str, Any]) -> None: ...
    def note(self, text: str, **fields: Any) -> None: ...
    def task_done(self, row: dict[str, Any], done: int, total: int) -> None: ...
    def update(self, stats: dict[str, Any]) -> None: ...
    def close(self, stats: dict[str, Any]) -> None: ...


def task_fields(row: dict[str, Any], done: int, total: int) -> dict[str, Any]:
    """The fields of a task's line."""
    fields = {"id": row["id"], "status": row["status"], "exit_code": row["exit_code"],
              "turns": row["turns"], "tokens": row["tokens"], "cost_usd": row["cost_usd"],
              "duration_s": row["duration_s"], "folder": row["folder"],
              "done": done, "total": total}
    if row.get("message"):
        fields["message"] = row["message"]
    return fields


class LineDisplay:
    """One line per ended task on stderr (no terminal, or ``--log-format json``)."""

    redraws = False

    def __init__(self, console: Console) -> None:
        self.console = console

    def begin(self, stats: dict[str, Any]) -> None:
        pass

    def note(self, text: str, **fields: Any) -> None:
        self.console.line(text, **fields)

    def task_done(self, row: dict[str, Any], done: int, total: int) -> None:
        log = self.console.log.info if row["status"] == "finished" else self.console.log.warning
        event = "task" if self.console.json else f"task {row['id']} {row['status']}"
        log(event, **task_fields(row, done, total))

    def update(self, stats: dict[str, Any]) -> None:
        pass

    def close(self, stats: dict[str, Any]) -> None:
        pass


def _money(cost: float) -> str:
    return f"${cost:.4f}"


class BarDisplay:
    """A live progress bar on a terminal (``rich``, drawn on stderr)."""

    redraws = True

    def __init__(self, console: RichConsole, redactor: Redactor, *,
                 get_time: Callable[[], float] | None = None) -> None:
        self.redactor = redactor
        self.progress = Progress(
            TextColumn("[bold]batch[/]"), BarColumn(), MofNCompleteColumn(),
            TextColumn("running {task.fields[running]}"),
            TextColumn("failed {task.fields[failed]}"),
            TextColumn("{task.fields[tokens]} tokens"),
            TextColumn("{task.fields[cost]}"),
            TextColumn("ETA"), TimeRemainingColumn(),
            console=console, auto_refresh=False, transient=False,
            redirect_stdout=False, redirect_stderr=False, get_time=get_time)
        self._task: TaskID | None = None

    @staticmethod
    def _fields(stats: dict[str, Any]) -> dict[str, Any]:
        return {"running": stats["running"], "failed": stats["failed"],
                "tokens": f"{stats['tokens']:,}", "cost": _money(stats["cost_usd"])}

    def begin(self, stats: dict[str, Any]) -> None:
        self.progress.start()
        self._task = self.progress.add_task("batch", total=stats["total"],
                                            completed=stats["done"], **self._fields(stats))
        self.progress.refresh()

    def note(self, text: str, **fields: Any) -> None:
        self.progress.console.print(Text(self.redactor.text(text)))

    def task_done(self, row: dict[str, Any], done: int, total: int) -> None:
        """A task that did not finish gets a line above the bar (which the batch redraws
        a few times a second)."""
        if row["status"] != "finished":
            message = f": {row['message']}" if row.get("message") else ""
            self.note(f"[{row['status']}] {row['id']}{message}")

    def update(self, stats: dict[str, Any]) -> None:
        if self._task is None:
            return
        self.progress.update(self._task, completed=stats["done"], **self._fields(stats))
        self.progress.refresh()

    def close(self, stats: dict[str, Any]) -> None:
        self.update(stats)
        self.progress.stop()
