"""Test doubles shipped with the package, for this project's tests and for users' own:

* ``open_fake_server`` / ``serve_fake_provider`` / ``FakeProviderServer.in_thread``: a real
  HTTP server on 127.0.0.1 speaking the three wire protocols, answering from a script or a
  recording, recording what it received, and injecting faults (``faults``);
* ``ScriptedProvider``: an in-process provider answering from a script, no HTTP at all
  (``runtime.providers.scripted``, re-exported here).

Names are resolved on first use, so the pure parts (``runtime.testing.faults``,
``runtime.testing.script``, the encoders in ``runtime.testing.wire``) import without
trio, httpx or h11.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..providers.scripted import ScriptedProvider as ScriptedProvider
    from ..providers.scripted import response_from_turn as response_from_turn
    from . import faults as faults
    from .faults import Fault as Fault
    from .faults import custom as custom
    from .faults import cut_mid_stream as cut_mid_stream
    from .faults import dropped_connection as dropped_connection
    from .faults import echo_auth as echo_auth
    from .faults import error_in_stream as error_in_stream
    from .faults import html_error as html_error
    from .faults import malformed_chunk as malformed_chunk
    from .faults import overloaded as overloaded
    from .faults import rate_limited as rate_limited
    from .faults import server_error as server_error
    from .faults import stall as stall
    from .faults import streaming_refused as streaming_refused
    from .script import Raw as Raw
    from .script import RecordedRequest as RecordedRequest
    from .script import Script as Script
    from .server import FakeProviderServer as FakeProviderServer
    from .server import open_fake_server as open_fake_server
    from .server import serve_fake_provider as serve_fake_provider

_FAULTS = ("Fault", "custom", "cut_mid_stream", "dropped_connection", "echo_auth",
           "error_in_stream", "html_error",
           "malformed_chunk", "overloaded", "rate_limited", "server_error", "stall",
           "streaming_refused")
_WHERE: dict[str, str] = {
    **dict.fromkeys(_FAULTS, ".faults"),
    "Raw": ".script", "RecordedRequest": ".script", "Script": ".script",
    "FakeProviderServer": ".server", "open_fake_server": ".server",
    "serve_fake_provider": ".server",
    "ScriptedProvider": "..providers.scripted", "response_from_turn": "..providers.scripted",
}

__all__ = sorted([*_WHERE, "faults"])


def __getattr__(name: str) -> Any:
    if name == "faults":
        value: Any = importlib.import_module(".faults", __name__)
    else:
        module = _WHERE.get(name)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value
