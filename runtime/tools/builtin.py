"""The built-in tools: ``read_file``, ``write_file``, ``list_dir``, ``search_files`` and
``run_shell``, with the argument names the models are prompted with (ARCHITECTURE.md).

File tools are confined to the workspace (see ``workspace.py``). ``run_shell`` is not (a
shell can reach anything the user can), so its default approval is ``ask``: in a session
without a terminal it is denied until ``tools.approval.run_shell: auto`` allows it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from .registry import Tool
from .shell import format_result, run_command
from .workspace import Workspace

__all__ = ["BUILTIN_NAMES", "builtin_tools"]

BUILTIN_NAMES = ("read_file", "write_file", "list_dir", "search_files", "run_shell")
READ_ONLY = frozenset({"read_file", "list_dir", "search_files"})


def _obj(props: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": required,
            "additionalProperties": False}


_PATH = {"type": "string", "description": "a path relative to the workspace"}

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
}


def builtin_tools(workspace: Path, names: list[str] | tuple[str, ...] = BUILTIN_NAMES, *,
                  max_output_chars: int = 20000, shell_timeout: float | None = 60.0,
                  kill_grace: float = 2.0, shell_approval: str = "ask") -> list[Tool]:
    """The built-in tools called ``names``, working in ``workspace`` (created if missing).

    Raises ``ValueError`` naming the unknown names and the available ones.
    """
    unknown = [n for n in names if n not in SCHEMAS]
    if unknown:
        raise ValueError(f"unknown built-in tools: {', '.join(unknown)} "
                         f"(available: {', '.join(BUILTIN_NAMES)})")
    workspace.mkdir(parents=True, exist_ok=True)
    ws = Workspace(workspace, max_output_chars=max_output_chars)

    async def run_shell(command: str) -> str:
        result = await run_command(command, cwd=ws.root, timeout=shell_timeout,
                                   max_output_chars=max_output_chars, kill_grace=kill_grace)
        return format_result(result, shell_timeout)

    fns: dict[str, Callable[..., Any]] = {"read_file": ws.read_file, "write_file": ws.write_file, "list_dir": ws.list_dir,
           "search_files": ws.search_files, "run_shell": run_shell}
    tools = []
    for name in dict.fromkeys(names):
        description, schema = SCHEMAS[name]
        tools.append(Tool(name, description, schema, fns[name],
                          approval=shell_approval if name == "run_shell" else "auto",
                          read_only=name in READ_ONLY))
    return tools
