"""``run_shell`` and the Responses ``shell`` / ``local_shell`` calls, by the same rules.

All three run through :func:`~runtime.tools.shell.run_command`: the workspace as working
folder (a ``local_shell`` ``working_directory`` must lie inside it), the scrubbed
environment (``shell_env.py``), the configured timeout as a ceiling (a call's ``timeout_ms``
may only shorten it), output capped at ``tools.max_output_chars`` (a call's
``max_output_length`` may only lower it), and nothing left running afterwards. They are
one tool, ``run_shell``, for approval: ``tools.approval.run_shell`` (default ``ask``)
decides for every form.

``shell`` runs its commands in order, each with ``/bin/sh -c``, under one deadline for the
whole call; a command that times out ends the call (the rest are not run). ``local_shell``
runs its argv directly (no shell), with its ``env`` added (never a value the secret test
flags); a ``user`` other than ours is refused.
"""

from __future__ import annotations

import math
import os
import pwd
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import trio

from .kinds import NOT_RUN, LocalShellAction, NativeReply, ShellAction
from .registry import ToolError
from .shell import ShellResult, describe_exit, format_result, run_command
from .shell_env import SecretTest, scrub_env
from .workspace import Workspace

__all__ = ["ShellRunner"]

_NOT_FOUND = 127


def _exit_code(code: int | None) -> int:
    """An exit status as a shell reports it (killed by signal n: 128 + n)."""
    if code is None:
        return NOT_RUN
    return 128 - code if code < 0 else code


def _render(label: str, result: ShellResult) -> str:
    status = ("timed out; its processes were killed" if result.timed_out
              else f"exit code: {describe_exit(result.exit_code)}")
    parts = [f"$ {label}", status]
    if result.stdout:
        parts.append(result.stdout.rstrip("\n"))
    if result.stderr:
        parts += ["[stderr]", result.stderr.rstrip("\n")]
    return "\n".join(parts)


def _output(result: ShellResult) -> dict[str, Any]:
    out: dict[str, Any] = {"stdout": result.stdout, "stderr": result.stderr}
    out.update({"timed_out": True} if result.timed_out
               else {"exit_code": _exit_code(result.exit_code)})
    return out


def _current_user() -> str:
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return os.environ.get("USER", "")


class ShellRunner:
    """Runs commands in ``workspace`` (see the module docstring)."""

    def __init__(self, workspace: Workspace, *, timeout: float | None,
                 max_output_chars: int, kill_grace: float, allow: Sequence[str],
                 is_secret: SecretTest) -> None:
        self.ws = workspace
        self.timeout = timeout
        self.max_output_chars = max_output_chars
        self.kill_grace = kill_grace
        self.allow = list(allow)
        self.is_secret = is_secret

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """Our scrubbed environment, plus ``extra`` (a model's own variables) minus
        anything the secret test flags."""
        env = scrub_env(os.environ, allow=self.allow, is_secret=self.is_secret)
        for name, value in (extra or {}).items():
            if "=" in name or "\0" in name + value or any(
                    self.is_secret(t) for t in (name, value, f"{name}={value}")):
                continue
            env[name] = value
        return env

    def _limit(self, timeout_ms: int | None) -> float:
        ceiling = math.inf if self.timeout is None else self.timeout
        return ceiling if timeout_ms is None else min(ceiling, timeout_ms / 1000)

    async def run_shell(self, command: str) -> str:
        """The ``run_shell`` function tool: one ``/bin/sh -c`` command, output interleaved."""
        result = await run_command(command, cwd=self.ws.root, timeout=self.timeout,
                                   max_output_chars=self.max_output_chars,
                                   kill_grace=self.kill_grace, env=self.env())
        return format_result(result, self.timeout)

    async def shell(self, action: ShellAction) -> NativeReply:
        """A ``shell_call``: its commands in order, one output each."""
        cap = min(action.max_output_length or self.max_output_chars, self.max_output_chars)
        cap = max(1, min(cap, self.max_output_chars // len(action.commands)))
        deadline = trio.current_time() + self._limit(action.timeout_ms)
        env = self.env()
        outputs: list[dict[str, Any]] = []
        texts: list[str] = []
        for command in action.commands:
            result = await run_command(command, cwd=self.ws.root,
                                       timeout=max(0.0, deadline - trio.current_time()),
                                       max_output_chars=cap, kill_grace=self.kill_grace,
                                       env=env, merge_stderr=False)
            outputs.append(_output(result))
            texts.append(_render(command, result))
            if result.timed_out:
                left = len(action.commands) - len(outputs)
                if left:
                    texts.append(f"[{left} more command{'s' if left > 1 else ''} not run: the "
                                 "call's time was up]")
                return NativeReply("\n".join(texts), False, {"outputs": outputs})
        return NativeReply("\n".join(texts), True, {"outputs": outputs})

    def _cwd(self, directory: str | None) -> Path:
        if not directory:
            return self.ws.root
        if os.path.isabs(directory):
            path = Path(directory).resolve()
            if not path.is_relative_to(self.ws.root):
                raise ToolError(f"refused: working_directory {directory!r} is outside the "
                                "workspace")
        else:
            path = self.ws.resolve(directory)
        if not path.is_dir():
            raise ToolError(f"working_directory {directory!r} is not a folder")
        return path

    async def local_shell(self, action: LocalShellAction) -> NativeReply:
        """A ``local_shell_call``: an argv run directly, no shell."""
        if action.user and action.user != _current_user():
            raise ToolError(f"refused: cannot run as user {action.user!r} (commands run as "
                            f"{_current_user()!r})")
        cwd = self._cwd(action.working_directory)
        label = shlex.join(action.command)
        try:
            result = await run_command(action.command, cwd=cwd,
                                       timeout=self._limit(action.timeout_ms),
                                       max_output_chars=self.max_output_chars,
                                       kill_grace=self.kill_grace, env=self.env(action.env),
                                       merge_stderr=False)
        except OSError as exc:  # the program could not be started
            reason = f"cannot run {action.command[0]!r}: {exc.strerror or exc}"
            code = _NOT_FOUND if isinstance(exc, FileNotFoundError) else NOT_RUN
            return NativeReply(f"$ {label}\n{reason}", False, {
                "outputs": [{"stdout": "", "stderr": reason, "exit_code": code}]})
        return NativeReply(_render(label, result), not result.timed_out,
                           {"outputs": [_output(result)]})
