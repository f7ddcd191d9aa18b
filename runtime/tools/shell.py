"""``run_shell``: a command under ``/bin/sh -c`` in the workspace, in its own process group.

The command's process group is the unit of cleanup: on timeout or cancellation the whole
group gets SIGTERM, then SIGKILL after a short grace; after a normal exit the group's
leftovers (background jobs still holding the output pipe) are ended the same way, so a call
leaves nothing running. When this process reaps orphans (it is PID 1 in a container, or a
child subreaper) the dead members of the group are reaped too.

Output (stdout and stderr interleaved) is capped at ``max_output_chars``: the head and the
tail are kept, with a note saying how much was cut. Variables that look like secrets
(``*API_KEY*``, ``*TOKEN*``, ``*SECRET*``, ``*PASSWORD*``) are removed from the command's
environment.
"""

from __future__ import annotations

import math
import os
import re
import signal
import subprocess
from collections.abc import Mapping
from pathlib import Path

import trio

from ._text import OutputCapture
from .registry import ToolError

__all__ = ["ShellResult", "group_alive", "run_command", "scrub_env"]

_SECRET_NAME = re.compile(r"(?i)(api_?key|secret|token|passw(or)?d|credential)")
_POLL = 0.02


def scrub_env(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` without the variables whose names look like secrets."""
    return {k: v for k, v in env.items() if not _SECRET_NAME.search(k)}


class ShellResult:
    def __init__(self, exit_code: int | None, output: str, timed_out: bool) -> None:
        self.exit_code = exit_code
        self.output = output
        self.timed_out = timed_out


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "unknown"
    if code < 0:
        try:
            return f"{code} (killed by {signal.Signals(-code).name})"
        except ValueError:
            return f"{code} (killed by signal {-code})"
    return str(code)


def group_alive(pgid: int) -> bool:
    """Whether process group ``pgid`` has a member that is not a zombie."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        pids = [p for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return True
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2:].split()
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] != b"Z":
            return True
    return False


def _signal_group(pgid: int, sig: int) -> bool:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    return True


def _reap_group(pgid: int) -> None:
    """Reap dead members of ``pgid`` that are our children (orphans we inherited)."""
    while True:
        try:
            pid, _ = os.waitpid(-pgid, os.WNOHANG)
        except (ChildProcessError, OSError):
            return
        if pid == 0:
            return


async def _wait_group(pgid: int, timeout: float) -> bool:  # noqa: ASYNC109
    """Wait up to ``timeout`` s for every member of the group to be gone; True if gone."""
    with trio.move_on_after(timeout):
        while True:
            _reap_group(pgid)
            if not group_alive(pgid):
                return True
            await trio.sleep(_POLL)
    return False


async def terminate_group(proc: trio.Process, pgid: int, grace: float) -> None:
    """SIGTERM the group, wait up to ``grace`` s, SIGKILL what is left, reap the shell."""
    if proc.returncode is not None:
        _reap_group(pgid)
        if not group_alive(pgid):
            return
    if _signal_group(pgid, signal.SIGTERM) and not await _wait_group(pgid, grace):
        _signal_group(pgid, signal.SIGKILL)
        await _wait_group(pgid, max(grace, 1.0))
    await proc.wait()
    _reap_group(pgid)


async def _pump(stream: trio.abc.ReceiveStream, capture: OutputCapture,
                done: trio.Event) -> None:
    try:
        while True:
            data = await stream.receive_some(65536)
            if not data:
                break
            capture.feed(data)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass
    finally:
        done.set()


async def run_command(command: str, *, cwd: Path, timeout: float | None,  # noqa: ASYNC109
                      max_output_chars: int = 20000, kill_grace: float = 2.0,
                      env: Mapping[str, str] | None = None) -> ShellResult:
    """Run ``command``; on timeout or cancellation the whole process group is killed."""
    proc = await trio.lowlevel.open_process(
        ["/bin/sh", "-c", command], cwd=str(cwd), stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
        env={**scrub_env(os.environ if env is None else env), "PWD": str(cwd)})
    pgid = proc.pid  # start_new_session: the shell leads its own session and group
    assert proc.stdout is not None
    capture = OutputCapture(max_output_chars)
    done = trio.Event()
    timed_out = False
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_pump, proc.stdout, capture, done)
            with trio.move_on_after(math.inf if timeout is None else timeout) as scope:
                await proc.wait()
            timed_out = scope.cancelled_caught
            await terminate_group(proc, pgid, kill_grace)
            with trio.move_on_after(0.5):  # a member that left the group may hold the pipe
                await done.wait()
            nursery.cancel_scope.cancel()
    finally:
        with trio.CancelScope(shield=True):
            await terminate_group(proc, pgid, kill_grace)
            await proc.stdout.aclose()
    return ShellResult(None if timed_out else proc.returncode, capture.text(), timed_out)


def format_result(result: ShellResult, timeout: float | None) -> str:
    """The text the model reads; a timeout is raised as a ToolError with the output."""
    if result.timed_out:
        raise ToolError(f"timed out after {timeout:g} s; the command's process group was "
                        f"killed\noutput so far:\n{result.output}")
    body = result.output if result.output else "(no output)"
    return f"exit code: {_describe_exit(result.exit_code)}\n{body}"
