"""Tools: the registry, argument validation, approval, the built-in tools and the
supervisor that runs a turn's tool calls.

Names are resolved on first use, so that the pure modules of this package (``apply_patch``,
``kinds``, ``validate``, ``schema``, ``shell_env``, ``_text``) import without trio.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from .approval import Asker as Asker
    from .approval import Decision as Decision
    from .approval import decide as decide
    from .approval import terminal_asker as terminal_asker
    from .builtin import BUILTIN_NAMES as BUILTIN_NAMES
    from .builtin import builtin_tools as builtin_tools
    from .registry import Tool as Tool
    from .registry import ToolError as ToolError
    from .registry import ToolRegistry as ToolRegistry
    from .registry import make_tool as make_tool
    from .registry import tool as tool
    from .supervisor import ToolOutcome as ToolOutcome
    from .supervisor import run_tool_calls as run_tool_calls
    from .validate import Validation as Validation
    from .validate import parse_arguments as parse_arguments
    from .validate import validate_call as validate_call
    from .workspace import Workspace as Workspace
    from .workspace import WorkspaceError as WorkspaceError
    from .workspace import check_workspace as check_workspace
    from .workspace import prepare_workspace as prepare_workspace

_WHERE = {
    "Asker": "approval", "Decision": "approval", "decide": "approval",
    "terminal_asker": "approval", "BUILTIN_NAMES": "builtin", "builtin_tools": "builtin",
    "Tool": "registry", "ToolError": "registry", "ToolRegistry": "registry",
    "make_tool": "registry", "tool": "registry", "ToolOutcome": "supervisor",
    "run_tool_calls": "supervisor", "Validation": "validate", "parse_arguments": "validate",
    "validate_call": "validate", "Workspace": "workspace", "WorkspaceError": "workspace",
    "check_workspace": "workspace", "prepare_workspace": "workspace",
}

__all__ = sorted(_WHERE)


__getattr__ = lazy_exports(__name__, _WHERE, globals())
