"""Test doubles shipped with the package, for this project's tests and for users' own:

* ``open_fake_server`` / ``serve_fake_provider`` / ``FakeProviderServer.in_thread``: a real
  HTTP server on 127.0.0.1 speaking the three wire protocols, answering from a script or a
  recording, recording what it received, and injecting faults (``faults``);
* ``ScriptedProvider``: an in-process provider answering from a script, no HTTP at all.
"""

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
from .local_model import local_model_server as local_model_server
from .local_model import start_server as start_local_model_server
from .script import Raw as Raw
from .script import RecordedRequest as RecordedRequest
from .script import Script as Script
from .scripted import ScriptedProvider as ScriptedProvider
from .scripted import response_from_turn as response_from_turn
from .server import FakeProviderServer as FakeProviderServer
from .server import open_fake_server as open_fake_server
from .server import serve_fake_provider as serve_fake_provider

__all__ = [
    "FakeProviderServer",
    "Fault",
    "Raw",
    "RecordedRequest",
    "Script",
    "ScriptedProvider",
    "custom",
    "cut_mid_stream",
    "dropped_connection",
    "echo_auth",
    "error_in_stream",
    "faults",
    "html_error",
    "local_model_server",
    "malformed_chunk",
    "open_fake_server",
    "overloaded",
    "rate_limited",
    "response_from_turn",
    "serve_fake_provider",
    "server_error",
    "stall",
    "start_local_model_server",
    "streaming_refused",
]
