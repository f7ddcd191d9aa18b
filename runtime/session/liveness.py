"""Which process runs a session, and whether it still does.

``session_start`` records carry ``process``: the host, the pid and the process's start time.
A run folder whose journal has no ``session_end`` was either cut short (kill -9, power
loss) or is still running in another process; :func:`alive` tells them apart without any
lock or file held open by the session: the same host, a process with that pid, started at
that time (a pid reused by a later process does not count).

Reading ``/proc`` is a read of kernel memory (no disk); elsewhere the start time is unknown
and the pid alone is checked.
"""

from __future__ import annotations

import functools
import os
import socket
from collections.abc import Mapping
from typing import Any

from ..procstat import proc_stat

__all__ = ["alive", "process_identity"]


def _start_time(pid: int) -> float | None:
    stat = proc_stat(pid)
    return None if stat is None else float(stat.starttime)


@functools.cache
def process_identity() -> dict[str, Any]:
    """This process: ``{"host", "pid", "started"}`` (``started`` None off Linux)."""
    pid = os.getpid()
    return {"host": socket.gethostname(), "pid": pid, "started": _start_time(pid)}


def alive(identity: Mapping[str, Any] | None) -> bool | None:
    """Whether the process ``identity`` names still runs; None when it cannot be told (no
    identity, or another host)."""
    if not identity:
        return None
    pid, host = identity.get("pid"), identity.get("host")
    if not isinstance(pid, int) or pid <= 0 or host != socket.gethostname():
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:   # it exists, owned by someone else
        pass
    stat = proc_stat(pid)
    if stat is not None and stat.state in ("Z", "X"):   # dead, not yet reaped
        return False
    started = identity.get("started")
    if started is None:
        return True
    return stat is not None and stat.starttime == started
