"""Everything a shell command started, found and ended (Linux ``/proc``; ``killpg`` elsewhere).

A command's process group is not enough: a child may call ``setsid`` (a new session and
group) and its parent may exit, leaving it an orphan that ``killpg`` never reaches. So each
command is started with a unique *cookie* in its environment (``CONDUCTOR_SHELL_ID``, inherited
by every descendant that does not clear its environment), and a :class:`Tree` is every live
process that is in the command's group or session, carries the cookie, or descends from one
of those; only processes started after the command are looked at. Ending a tree sends
SIGTERM to all of it, waits a grace period, then SIGKILLs what is left, again and again until
nothing is left (a fork in between is caught by the next scan). Signals go through a pidfd
after re-checking the process's start time, so a recycled PID is never hit.

Scans read ``/proc`` (a few milliseconds) in a worker thread. Zombies count as gone; dead
orphans that were handed to this process (it is PID 1 or a subreaper) are reaped.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import attrs
import structlog
import trio

from ..procstat import ProcStat, proc_stat

__all__ = ["COOKIE", "Tree", "end_tree", "group_alive"]

COOKIE = "CONDUCTOR_SHELL_ID"
_POLL = 0.02
_MAX_ROUNDS = 200  # SIGKILL rounds before giving up (a fork bomb outrunning us)
log = structlog.get_logger("conductor.tools")


@attrs.frozen
class Tree:
    """The processes of one command: its leader PID, cookie and start time (clock ticks)."""

    leader: int
    cookie: str
    started: int = 0

    @classmethod
    def of(cls, leader: int, cookie: str) -> Tree:
        stat = proc_stat(leader)
        return cls(leader, cookie, stat.starttime if stat else 0)


def _has_cookie(pid: int, marker: bytes) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as fh:
            return marker in b"\0" + fh.read()
    except OSError:
        return False


def _processes() -> Iterator[tuple[int, ProcStat]]:
    try:
        entries = os.listdir("/proc")
    except OSError:
        return
    for entry in entries:
        if entry.isdigit() and (stat := proc_stat(entry)) is not None:
            yield int(entry), stat


def members(tree: Tree) -> dict[int, int]:
    """Live processes of ``tree``: PID -> start time. Reaps its dead orphans on the way."""
    me = os.getpid()
    marker = f"\0{COOKIE}={tree.cookie}\0".encode()
    children: dict[int, list[int]] = {}
    stats = {}
    seeds = []
    for pid, (ppid, pgrp, sid, state, start) in _processes():
        if start < tree.started or pid == me:
            continue
        stats[pid] = (state, start)
        children.setdefault(ppid, []).append(pid)
        if pgrp == tree.leader or sid == tree.leader or (state not in "ZX"
                                                        and _has_cookie(pid, marker)):
            seeds.append(pid)
    found: dict[int, int] = {}
    todo = seeds
    seen = set()
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        todo.extend(children.get(pid, []))
        state, start = stats[pid]
        if state in "ZX":
            if pid != tree.leader:  # trio reaps the leader; the others, if they are ours
                _reap(pid)
            continue
        found[pid] = start
    return found


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except (ChildProcessError, OSError):
        pass


def _signal(pid: int, start: int, sig: int) -> None:
    """Send ``sig`` to ``pid`` if it is still the process that started at ``start``."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    except (OSError, AttributeError):  # no pidfd here: the small PID-reuse window remains
        try:
            os.kill(pid, sig)
        except OSError:
            pass
        return
    try:
        stat = proc_stat(pid)
        if stat is not None and stat.starttime == start:
            signal.pidfd_send_signal(fd, sig)
    except OSError:
        pass
    finally:
        os.close(fd)


def _signal_all(tree: Tree, sig: int) -> int:
    """Signal the leader's group and every member; how many members there were."""
    try:
        os.killpg(tree.leader, sig)
    except OSError:
        pass
    found = members(tree)
    for pid, start in found.items():
        _signal(pid, start, sig)
    return len(found)


def group_alive(pgid: int) -> bool:
    """Whether process group ``pgid`` has a member that is not a zombie."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return any(p[1] == pgid and p[3] not in "ZX" for _, p in _processes())


async def _scan(tree: Tree) -> int:
    return len(await trio.to_thread.run_sync(members, tree))


async def end_tree(proc: trio.Process, tree: Tree, grace: float) -> None:
    """End every process of ``tree`` (see the module docstring) and reap its leader. Call
    it shielded: it must finish even when the caller is being cancelled."""
    if await trio.to_thread.run_sync(_signal_all, tree, signal.SIGTERM):
        with trio.move_on_after(grace):
            while True:  # polled: the death of processes that are not our children has no event
                if not await _scan(tree):
                    break
                await trio.sleep(_POLL)
    for _ in range(_MAX_ROUNDS):
        if not await trio.to_thread.run_sync(_signal_all, tree, signal.SIGKILL):
            break
        await trio.sleep(_POLL)
    else:
        log.warning("processes of a shell command outlived SIGKILL", leader=tree.leader,
                    left=await _scan(tree))
    await proc.wait()
