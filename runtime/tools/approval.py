"""Approval of tool calls: ``auto`` runs, ``deny`` refuses, ``ask`` asks a person.

The asker is injectable: ``ask(prompt) -> bool``, sync (run in a worker thread, so it may
block on a terminal) or async. The default asker reads a line from stdin, only when stdin is
a terminal; with no terminal an ``ask`` call is denied and the reason says how to allow it.
A denied call never runs.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Awaitable, Callable, Mapping
from fnmatch import fnmatchcase
from typing import Any, TextIO

import msgspec
import trio

__all__ = ["Asker", "Decision", "approval_mode", "decide", "prompt_of", "run_asker",
           "terminal_asker"]

Asker = Callable[[str], bool | Awaitable[bool]]

_YES = {"y", "yes"}
_ARGS_PREVIEW = 500


class Decision(msgspec.Struct, frozen=True):
    """Whether a call may run; ``reason`` explains a denial (and is shown to the model)."""

    allowed: bool
    mode: str
    reason: str = ""


def approval_mode(name: str, approval: Mapping[str, str], default: str = "auto") -> str:
    """The policy for tool ``name``: ``tools.approval`` wins over the tool's default.

    A key is a tool name or a glob such as ``time__*`` (all tools of an MCP server); the
    exact name wins, then the longest matching pattern.
    """
    if name in approval:
        return approval[name]
    matches = [k for k in approval if any(c in k for c in "*?[") and fnmatchcase(name, k)]
    if matches:
        return approval[max(matches, key=len)]
    return default


def terminal_asker(stdin: TextIO | None = None, stderr: TextIO | None = None) -> Asker | None:
    """An asker that prompts on stderr and reads the answer from stdin, or ``None`` when
    stdin is not a terminal (nobody to ask)."""
    inp = stdin if stdin is not None else sys.stdin
    out = stderr if stderr is not None else sys.stderr
    try:
        tty = inp is not None and inp.isatty()
    except (ValueError, OSError):  # closed or detached stream
        tty = False
    if not tty:
        return None

    def ask(prompt: str) -> bool:
        out.write(prompt)
        out.flush()
        line = inp.readline()
        return line.strip().lower() in _YES

    return ask


def prompt_of(name: str, arguments: Mapping[str, Any] | None) -> str:
    args = msgspec.json.encode(arguments or {}).decode()
    if len(args) > _ARGS_PREVIEW:
        args = args[:_ARGS_PREVIEW] + f"... ({len(args) - _ARGS_PREVIEW} more characters)"
    return f"\nThe model wants to run {name} {args}\nAllow? [y/N] "


async def run_asker(ask: Asker, prompt: str) -> bool:
    """Ask: an async asker is awaited, a plain one runs in a worker thread (it may block on
    a terminal); only ``True`` allows."""
    if inspect.iscoroutinefunction(ask):
        answer: Any = await ask(prompt)
    else:
        answer = await trio.to_thread.run_sync(ask, prompt, abandon_on_cancel=True)
        if inspect.isawaitable(answer):
            answer = await answer
    return answer is True


async def decide(name: str, arguments: Mapping[str, Any] | None, mode: str,
                 ask: Asker | None) -> Decision:
    """Apply ``mode`` to one call. ``ask`` is the asker for ``ask`` mode (``None``: nobody
    to ask, so the call is denied)."""
    if mode == "auto":
        return Decision(True, mode)
    if mode == "deny":
        return Decision(False, mode, f"tool {name!r} is disabled by tools.approval.{name}: deny")
    if mode != "ask":
        return Decision(False, mode, f"unknown approval mode {mode!r} for tool {name!r} "
                                     "(use auto, ask or deny)")
    if ask is None:
        return Decision(False, mode, "approval required but no terminal to ask on; "
                                     f"set tools.approval.{name}: auto to allow")
    try:
        allowed = await run_asker(ask, prompt_of(name, arguments))
    except Exception as exc:
        return Decision(False, mode, f"approval prompt failed ({type(exc).__name__}: {exc}); "
                                     "the call was not run")
    if allowed:
        return Decision(True, mode)
    return Decision(False, mode, f"the user declined to run {name}")
