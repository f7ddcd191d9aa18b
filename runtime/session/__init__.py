"""Sessions: the conductor (the tool loop), the journal, the session state and the handle.

Submodules load on first use, so the pure ones (``records``, ``restore``, ``traces``,
``outcome``) never drag trio in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from .handle import Dropped as Dropped
    from .handle import Session as Session
    from .outcome import SessionResult as SessionResult

_WHERE = {"Session": "handle", "Dropped": "handle", "SessionResult": "outcome"}

__all__ = sorted(_WHERE)


__getattr__ = lazy_exports(__name__, _WHERE, globals())
