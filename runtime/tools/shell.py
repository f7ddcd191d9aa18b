"""Running one command (``/bin/sh -c`` text, or an argv) so that nothing outlives it.

The command leads its own session and process group, and carries a cookie in its
environment (see ``proctree.py``). Its exit is awaited without reaping it, so its PID stays
its own until the tree is ended. Whatever way the call ends (normal exit, timeout,
cancellation by the session, an exception while reading its output), everything it started
is ended before :func:`run_command` returns or raises: SIGTERM, a short grace, then SIGKILL,
its setsid'd and orphaned descendants included. The cleanup is shielded, and it is set up
before the first checkpoint after the spawn, so a cancellation that arrives while the
process is being started still reaches it.

Output: stdout and stderr interleaved (``run_shell``) or apart (the Responses ``shell``
calls), each capped at ``max_output_chars`` in bounded memory, head and tail kept, with a
note saying how much was cut; bytes that are not UTF-8 are shown as ``\\xNN``. The
environment is given by the caller (scrubbed: see ``shell_env.py``).
"""

from __future__ import annotations

import math
import os
import secrets
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

import attrs
import trio
from trio.lowlevel import open_process

from ._text import OutputCapture
from .proctree import COOKIE, Tree, end_tree, group_alive
from .registry import ToolError
from .shell_env import scrub_env

__all__ = ["ShellResult", "describe_exit", "format_result", "group_alive", "run_command"]

_DRAIN = 0.5  # seconds to let the pipes drain once the tree is gone


@attrs.frozen
class ShellResult:
    """How a command ended: ``exit_code`` (None after a timeout; negative: killed by that
    signal), ``output`` (interleaved) or ``stdout`` and ``stderr`` (apart)."""

    exit_code: int | None
    output: str
    timed_out: bool
    stdout: str = ""
    stderr: str = ""


def describe_exit(code: int | None) -> str:
    if code is None:
        return "unknown"
    if code < 0:
        try:
            return f"{code} (killed by {signal.Signals(-code).name})"
        except ValueError:
            return f"{code} (killed by signal {-code})"
    return str(code)


async def _pump(stream: trio.abc.ReceiveStream, capture: OutputCapture, done: trio.Event,
                failed: list[BaseException], scope: trio.CancelScope) -> None:
    """Read ``stream`` into ``capture``; a failure is kept and stops the wait."""
    try:
        while data := await stream.receive_some(65536):
            capture.feed(data)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass
    except Exception as exc:
        failed.append(exc)
        scope.cancel()
    finally:
        done.set()


class _ExitWatch:
    """Waits for the command's exit *without reaping it* (a pidfd), so that its PID cannot
    be handed to an unrelated process while its tree is being ended; ``trio.Process.wait``
    (which reaps) is the fallback where pidfds do not exist."""

    def __init__(self, proc: trio.Process, fd: int | None) -> None:
        self.proc = proc
        self.fd = fd

    async def wait(self) -> None:
        if self.fd is None:
            await self.proc.wait()
        else:
            await trio.lowlevel.wait_readable(self.fd)

    def close(self) -> None:
        if self.fd is not None:
            trio.lowlevel.notify_closing(self.fd)
            os.close(self.fd)
            self.fd = None


def _exit_watch(proc: trio.Process) -> _ExitWatch:
    try:
        return _ExitWatch(proc, os.pidfd_open(proc.pid))
    except (OSError, AttributeError):
        return _ExitWatch(proc, None)


async def run_command(command: str | Sequence[str], *, cwd: Path,
                      timeout: float | None,  # noqa: ASYNC109
                      max_output_chars: int = 20000, kill_grace: float = 2.0,
                      env: Mapping[str, str] | None = None,
                      merge_stderr: bool = True) -> ShellResult:
    """Run ``command`` (text for ``/bin/sh -c``, or an argv run as is) in ``cwd``; see the
    module docstring. ``env`` defaults to our environment, scrubbed."""
    argv = ["/bin/sh", "-c", command] if isinstance(command, str) else list(command)
    cookie = secrets.token_hex(12)
    environment = {**(scrub_env(os.environ) if env is None else env), "PWD": str(cwd),
                   COOKIE: cookie}
    proc = await open_process(
        argv, cwd=str(cwd), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE,
        start_new_session=True, env=environment)
    tree = Tree.of(proc.pid, cookie)
    exited = _exit_watch(proc)
    ended = False
    try:  # no checkpoint between the spawn and this try: the cleanup always runs
        streams: list[trio.abc.ReceiveStream] = [
            s for s in (proc.stdout, proc.stderr) if s is not None]
        captures = [OutputCapture(max_output_chars) for _ in streams]
        failed: list[BaseException] = []
        async with trio.open_nursery() as nursery:
            drained = []
            with trio.move_on_after(math.inf if timeout is None else timeout) as scope:
                for stream, capture in zip(streams, captures, strict=True):
                    drained.append(trio.Event())
                    nursery.start_soon(_pump, stream, capture, drained[-1], failed, scope)
                await exited.wait()
            timed_out = scope.cancelled_caught and not failed
            with trio.CancelScope(shield=True):
                await end_tree(proc, tree, kill_grace)
                ended = True
            with trio.move_on_after(_DRAIN):  # a process that escaped may still hold a pipe
                for event in drained:
                    await event.wait()
            nursery.cancel_scope.cancel()
        if failed:
            raise failed[0]
    finally:
        with trio.CancelScope(shield=True):
            if not ended:
                await end_tree(proc, tree, kill_grace)
            exited.close()
            for pipe in (proc.stdout, proc.stderr):
                if pipe is not None:
                    await pipe.aclose()
    texts = [c.text() for c in captures]
    code = None if timed_out else proc.returncode
    if merge_stderr:
        return ShellResult(code, texts[0], timed_out)
    return ShellResult(code, "", timed_out, stdout=texts[0], stderr=texts[1])


def format_result(result: ShellResult, timeout: float | None) -> str:
    """The text the model reads; a timeout is raised as a ToolError with the output."""
    if result.timed_out:
        raise ToolError(f"timed out after {timeout:g} s; the command and every process it "
                        f"started were killed\noutput so far:\n{result.output}")
    body = result.output if result.output else "(no output)"
    return f"exit code: {describe_exit(result.exit_code)}\n{body}"
