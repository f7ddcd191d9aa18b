"""``/proc/<pid>/stat`` read by its rules (Linux): the one parser of it, for a session's
liveness (``session.liveness``) and a tool's process tree (``tools.proctree``).

The command name (field 2) may hold spaces and parentheses, so the fields are split after
its last ``)``. A process that is gone, a system without ``/proc`` or a line that does not
parse all give None. Reading ``/proc`` reads kernel memory, not a disk.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["ProcStat", "parse_stat", "proc_stat"]


class ProcStat(NamedTuple):
    ppid: int
    pgrp: int
    session: int
    state: str       # R, S, D, Z (a zombie), X (dead), ...
    starttime: int   # clock ticks after boot: with the pid, names one process for good


def parse_stat(raw: bytes) -> ProcStat | None:
    """The fields of one ``stat`` line, or None when it does not parse."""
    fields = raw[raw.rfind(b")") + 2:].split()
    try:
        return ProcStat(int(fields[1]), int(fields[2]), int(fields[3]),
                        fields[0].decode("ascii", "replace"), int(fields[19]))
    except (IndexError, ValueError):
        return None


def proc_stat(pid: int | str) -> ProcStat | None:
    """The ``stat`` of process ``pid``, or None (gone, no ``/proc``, unreadable)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return parse_stat(f.read())
    except OSError:
        return None
