"""conductor: a structured-concurrency runtime for long-running LLM agent sessions.

The public face (documented in README.md, "Using it from Python"); everything else is
reachable through its module (``runtime.testing``, ``runtime.wire``, ...). Names are resolved
on first use, so importing a pure module (``runtime.wire.sse``, ``runtime.resilience.ratelimit``)
never drags in trio or httpx.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._lazy import lazy_exports

if TYPE_CHECKING:
    from .config import AgentConfig as AgentConfig
    from .config import load_config as load_config
    from .engine import Engine as Engine
    from .engine import run_session as run_session
    from .errors import ConductorError as ConductorError
    from .errors import ConfigError as ConfigError
    from .errors import ErrorKind as ErrorKind
    from .errors import ProviderError as ProviderError
    from .hooks import Hooks as Hooks
    from .model import Message as Message
    from .model import Request as Request
    from .model import Response as Response
    from .model import ToolSpec as ToolSpec
    from .model import Usage as Usage
    from .session.handle import Session as Session
    from .session.outcome import SessionResult as SessionResult
    from .tools import ToolRegistry as ToolRegistry
    from .tools import make_tool as make_tool
    from .tools import tool as tool

_WHERE = {
    "Engine": "engine", "run_session": "engine", "Session": "session.handle",
    "SessionResult": "session.outcome", "AgentConfig": "config", "load_config": "config",
    "ConductorError": "errors", "ConfigError": "errors", "ErrorKind": "errors",
    "ProviderError": "errors", "Hooks": "hooks", "Message": "model", "Request": "model",
    "Response": "model", "ToolSpec": "model", "Usage": "model", "ToolRegistry": "tools",
    "make_tool": "tools", "tool": "tools",
}

__all__ = sorted(_WHERE)


__getattr__ = lazy_exports(__name__, _WHERE, globals())
