"""Sessions: the conductor (the tool loop), the journal, the session state and the handle.

Submodules load on first use, so the pure ones (``records``, ``restore``, ``traces``,
``outcome``) never drag trio in.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .handle import Dropped as Dropped
    from .handle import Session as Session
    from .outcome import SessionResult as SessionResult

_WHERE = {"Session": "handle", "Dropped": "handle", "SessionResult": "outcome"}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
