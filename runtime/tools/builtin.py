"""The built-in tools: ``read_file``, ``write_file``, ``list_dir``, ``search_files``,
``run_shell`` and ``apply_patch``, with the argument names the models are prompted with
(ARCHITECTURE.md).

File tools and ``apply_patch`` are confined to the workspace (see ``workspace.py``) and
default to approval ``auto``: ``apply_patch`` writes files exactly as ``write_file`` does,
all or nothing; its calls of one turn apply in call order. ``run_shell`` is not confined (a shell can reach anything the user can), so
its default approval is ``ask``: in a session without a terminal it is denied until
``tools.approval.run_shell: auto`` allows it. ``run_shell`` also answers the Responses
``shell`` and ``local_shell`` calls, and ``apply_patch`` the ``apply_patch`` calls (see
``kinds.py``), under the same approval.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import trio

from ..redact import Redactor
from .kinds import NativeReply, PatchOperation
from .patching import PatchApplier, operation_ops
from .registry import NativeHandler, Tool
from .shell_env import SecretTest, secret_test
from .shell_tool import ShellRunner
from .workspace import Workspace, prepare_workspace

__all__ = ["BUILTIN_NAMES", "builtin_tools"]

BUILTIN_NAMES = ("read_file", "write_file", "list_dir", "search_files", "run_shell",
                 "apply_patch")
READ_ONLY = frozenset({"read_file", "list_dir", "search_files"})


def _obj(props: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": required,
            "additionalProperties": False}


_PATH = {"type": "string", "description": "a path relative to the workspace"}
_PATCH_HELP = (
    "Edit files of the workspace with a patch in the V4A format, applied all or nothing:\n"
    "*** Begin Patch\n*** Add File: <path>\n+<each line of the new file>\n"
    "*** Update File: <path>\n*** Move to: <new path>   (optional)\n"
    "@@ <a line above the change, e.g. a def or class line>   (optional)\n"
    " <context line>\n-<removed line>\n+<added line>\n*** Delete File: <path>\n"
    "*** End Patch\n"
    "Give about 3 lines of context around each change; paths are relative to the workspace.")

SCHEMAS: dict[str, tuple[str, dict[str, Any]]] = {
    "read_file": ("Read a text file of the workspace.", _obj({"path": _PATH}, ["path"])),
    "write_file": ("Write a text file in the workspace (created or replaced, parent folders "
                   "created).",
                   _obj({"path": _PATH, "content": {"type": "string",
                                                    "description": "the whole new content"}},
                        ["path", "content"])),
    "list_dir": ("List a folder of the workspace: folders end in /, symlinks in @.",
                 _obj({"path": {**_PATH, "default": "."}}, [])),
    "search_files": ("Search file contents under a folder of the workspace with a regular "
                     "expression (Python syntax); prints path:line: text for each match.",
                     _obj({"pattern": {"type": "string", "description": "a regular expression"},
                           "path": {**_PATH, "default": "."}}, ["pattern"])),
    "run_shell": ("Run a command with /bin/sh -c in the workspace folder; prints the exit "
                  "code and the output (stdout and stderr).",
                  _obj({"command": {"type": "string", "description": "the shell command"}},
                       ["command"])),
    "apply_patch": (_PATCH_HELP,
                    _obj({"patch": {"type": "string",
                                    "description": "the whole patch, from '*** Begin Patch' "
                                                   "to '*** End Patch'"}}, ["patch"])),
}


def builtin_tools(workspace: Path, names: Sequence[str] = BUILTIN_NAMES, *,
                  max_output_chars: int = 20000, shell_timeout: float | None = 60.0,
                  kill_grace: float = 2.0, shell_approval: str = "ask",
                  shell_env: Sequence[str] = (),
                  redactor: Redactor | SecretTest | None = None,
                  max_file_bytes: int = 2_000_000) -> list[Tool]:
    """The built-in tools called ``names``, working in ``workspace``.

    ``workspace`` is created if it is missing and its parent exists; otherwise, or if it is
    a file, :class:`~runtime.tools.workspace.WorkspaceError` (a ConfigError naming
    ``tools.workspace``). ``shell_env`` (``tools.shell_env``) are the variable names or
    globs that commands may see besides the base allowlist; ``redactor`` (or a predicate)
    says which names and values are secrets that never reach a command. Raises
    ``ValueError`` naming unknown tool names and the available ones.
    """
    unknown = [n for n in names if n not in SCHEMAS]
    if unknown:
        raise ValueError(f"unknown built-in tools: {', '.join(unknown)} "
                         f"(available: {', '.join(BUILTIN_NAMES)})")
    ws = Workspace(prepare_workspace(workspace), max_output_chars=max_output_chars,
                   max_file_bytes=max_file_bytes)
    runner = ShellRunner(ws, timeout=shell_timeout, max_output_chars=max_output_chars,
                         kill_grace=kill_grace, allow=shell_env,
                         is_secret=secret_test(redactor))
    applier = PatchApplier(ws)

    async def native_patch(op: PatchOperation) -> NativeReply:
        ops = operation_ops(op)
        summary = await trio.to_thread.run_sync(applier.apply, ops)
        return NativeReply(summary, True, {"status": "completed"})

    fns: dict[str, Callable[..., Any]] = {
        "read_file": ws.read_file, "write_file": ws.write_file, "list_dir": ws.list_dir,
        "search_files": ws.search_files, "run_shell": runner.run_shell,
        "apply_patch": applier.apply_text}
    native: dict[str, dict[str, NativeHandler]] = {
        "run_shell": {"shell": runner.shell, "local_shell": runner.local_shell},
        "apply_patch": {"apply_patch": native_patch}}
    tools = []
    for name in dict.fromkeys(names):
        description, schema = SCHEMAS[name]
        tools.append(Tool(name, description, schema, fns[name],
                          approval=shell_approval if name == "run_shell" else "auto",
                          read_only=name in READ_ONLY, native=native.get(name, {}),
                          serial=name == "apply_patch"))
    return tools
