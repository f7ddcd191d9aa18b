"""Service mode: sessions over an authenticated HTTP API (``python main.py serve``).

``run.serve`` runs the engine, the ``Service`` and the Starlette app (``app.build_app``
with ``handlers.HANDLERS``) under Hypercorn's trio worker. The pure parts: ``spec`` (the
route table), ``models`` (the bodies), ``openapi``, ``errors``, ``sse``, ``audit`` (the hash
chain), ``limits``, ``store``. The actors and I/O: ``service``, ``stream``, ``auditlog``,
``files``. Submodules load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from .app import build_app as build_app
    from .run import serve as serve
    from .service import Service as Service

_WHERE = {"build_app": "app", "serve": "run", "Service": "service"}

__all__ = sorted(_WHERE)


__getattr__ = lazy_exports(__name__, _WHERE, globals())
