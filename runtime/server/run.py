"""Serving: the engine, the service and Hypercorn's trio worker in one trio run.

``serve`` opens the engine (the same one the command line uses), starts the service actor
and serves the app with ``hypercorn.trio.serve`` in the same nursery, so sessions, streams
and the server share one event loop. SIGTERM or SIGINT starts the graceful drain
(``Service.drain``): ``/ready`` answers 503, new sessions 503, running sessions get
``server.shutdown_grace`` seconds to reach the end of a turn and the rest are stopped as
interrupted (resumable); then Hypercorn stops (open streams have ended by then) and the
engine closes. A second signal during the drain stops at once (run folders are still
closed). A watchdog ends the process (exit 0, its sessions already closed) if a connection
that never reads keeps Hypercorn from stopping 5 s after the grace period.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable
from functools import partial
from typing import Any, TextIO

import trio

from ..config import AgentConfig
from ..engine import Engine
from ..errors import ConfigError
from .app import build_app
from .handlers import HANDLERS
from .service import Service

__all__ = ["serve"]


async def serve(cfg: AgentConfig, *, host: str | None = None, port: int | None = None,
                err: TextIO | None = None, environ: dict[str, str] | None = None,
                log: Callable[..., None] | None = None, signals: bool = True,
                **engine_options: Any) -> None:
    """Serve ``cfg`` until a signal has drained it (see the module docstring)."""
    from hypercorn.config import Config as HyperConfig
    from hypercorn.trio import serve as hyper_serve

    srv = cfg.server
    if not srv.api_keys and srv.jwt is None:
        raise ConfigError("no credential is configured, so every request would be refused",
                          path="server.api_keys", fix="add a key: {name: ops, sha256: <hex of "
                          "the key>, scopes: [sessions:read, sessions:write]} or server.jwt")
    say = log or (lambda event, **kw: None)
    stream = err or sys.stderr
    hc = HyperConfig()
    hc.bind = [f"{_host(host or srv.host)}:{srv.port if port is None else port}"]
    hc.accesslog = None
    hc.errorlog = None
    hc.graceful_timeout = 1.0
    hc.include_server_header = False
    hc.backlog = 2048  # a burst of clients must not overflow the accept queue (SYN retries)
    async with Engine.open(cfg, environ=environ, mcp_errlog=stream, **engine_options) as engine:
        if engine.key_warning:
            say("warning", message=engine.key_warning, code="trace_key")
        service: Service
        if engine.backend is not None:  # a fleet: workers run the sessions
            from ..fleet.service import FleetService

            service = FleetService(engine, engine.backend)
        else:
            service = Service(engine)
        stop = trio.Event()
        async with trio.open_nursery() as nursery:
            await nursery.start(service.run)
            app = build_app(service, HANDLERS, log=lambda m: say("internal_error", detail=m))
            if signals and threading.current_thread() is threading.main_thread():
                await nursery.start(_signals, service, stop, srv.shutdown_grace, say,
                                    nursery.cancel_scope)
            binds = await nursery.start(partial(hyper_serve, app, hc,  # type: ignore[arg-type]
                                                shutdown_trigger=stop.wait, mode="asgi"))
            for url in binds:
                say("listening", url=url, sessions=len(service.store.all()),
                    queued=len(service.queue))
            await stop.wait()
    say("stopped")


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


async def _signals(service: Service, stop: trio.Event, grace: float, say: Callable[..., None],
                   everything: trio.CancelScope, *,
                   task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        task_status.started()
        async for sig in signals:
            say("signal", signal=signal.Signals(sig).name, grace=grace)
            _watchdog(grace + 4.5, say)
            async with trio.open_nursery() as nursery:

                async def second() -> None:
                    async for again in signals:
                        say("signal", signal=signal.Signals(again).name, action="stop now")
                        for s in list(service.live.values()):
                            s.cancel("terminated")
                        return

                nursery.start_soon(second)
                await service.drain(grace, log=lambda m: say("drain", detail=m))
                nursery.cancel_scope.cancel()
            say("drained", queued=len(service.queue))
            stop.set()
            return


def _watchdog(seconds: float, say: Callable[..., None]) -> None:
    """End the process if it is still here ``seconds`` from now (a stuck connection)."""

    def fire() -> None:
        say("forced_exit", reason="connections still open after the drain")
        os._exit(0)

    timer = threading.Timer(seconds, fire)
    timer.daemon = True
    timer.start()
