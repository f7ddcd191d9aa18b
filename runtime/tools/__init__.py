"""Tools: the registry, argument validation, approval, the built-in tools and the
supervisor that runs a turn's tool calls."""

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

__all__ = [
    "BUILTIN_NAMES",
    "Asker",
    "Decision",
    "Tool",
    "ToolError",
    "ToolOutcome",
    "ToolRegistry",
    "Validation",
    "Workspace",
    "builtin_tools",
    "decide",
    "make_tool",
    "parse_arguments",
    "run_tool_calls",
    "terminal_asker",
    "tool",
    "validate_call",
]
