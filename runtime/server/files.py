"""The service's own files, written off the event loop: an append-only line writer.

``line_writer`` is an actor: it owns one file, takes whatever lines are queued as one batch
and appends them in a worker thread (0600, fsync'd when asked), so a request handler never
waits on the disk and a file is never written by two tasks at once. ``prepare`` turns each
queued item into its line inside the actor, in arrival order (the audit log's hash chain is
built there). ``read_lines`` and ``replace`` are the synchronous helpers the service calls
through ``trio.to_thread``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import trio

from ..session.journal import append_file, offload, receive_batch, replace_file

__all__ = ["line_writer", "read_lines", "replace"]

_BATCH = 512


def _append(path: Path, data: bytes, sync: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    append_file(path, data, sync=sync)


def read_lines(path: Path) -> list[bytes]:
    """The lines of a file (none when it does not exist)."""
    try:
        return path.read_bytes().splitlines()
    except FileNotFoundError:
        return []


def replace(path: Path, data: bytes) -> None:
    """Write a whole file atomically (0600), fsync'd before it replaces the old one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    replace_file(path, data, sync=True)


async def line_writer(path: Path, prepare: Callable[[Any], bytes], *, sync: bool = False,
                      bound: int = 4096,
                      task_status: trio.TaskStatus[trio.MemorySendChannel[Any]]
                      = trio.TASK_STATUS_IGNORED) -> None:
    """Append ``prepare(item)`` for every item sent, until the channel is closed; then
    return once everything sent is on disk. An ``OSError`` ends the actor (the caller
    decides what a file that cannot be written means)."""
    send, recv = trio.open_memory_channel[Any](bound)
    async with recv:
        task_status.started(send)
        while (batch := await receive_batch(recv, _BATCH)) is not None:
            data = b"".join(prepare(item) for item in batch)
            with trio.CancelScope(shield=True):  # a batch taken is a batch written
                await offload(_append, path, data, sync)
