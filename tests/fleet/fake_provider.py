"""The fake provider as a process for the fleet tests: ``python -m tests.fleet.fake_provider
PORT_FILE LOG_FILE [--faults] [--delay S]``.

Every first request of a turn asks for one ``count`` call with a fresh label; a request
whose last message is a tool result gets a text answer. With ``--faults`` every 7th
request is a 500, every 11th a 429 (``retry-after: 0.2``) and every 13th stream is cut
mid-way. Each request's arrival time (epoch seconds) is appended to LOG_FILE: the
provider's own log. Stops on SIGTERM.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import sys
import threading
import time
import uuid
from typing import Any

from runtime.model import Response, TextPart, ToolCallPart, Usage
from runtime.testing import FakeProviderServer, Script
from runtime.testing.faults import cut_mid_stream, rate_limited, server_error
from runtime.testing.script import RecordedRequest


def answer(req: RecordedRequest) -> Response:
    messages: list[dict[str, Any]] = req.body.get("messages") or []
    last = messages[-1] if messages else {}
    usage = Usage(input_tokens=20, output_tokens=5)
    if last.get("role") == "tool":
        return Response(parts=[TextPart(f"done after {len(messages)} messages")],
                        stop="stop", finish_reason="stop", usage=usage)
    label = uuid.uuid4().hex
    call = ToolCallPart("call_" + label[:12], "count", json.dumps({"label": label}))
    return Response(parts=[call], stop="tool_calls", finish_reason="tool_calls", usage=usage)


class Endless(Script):
    """An answer for every request, with faults among them."""

    def __init__(self, log: str, faults: bool) -> None:
        super().__init__()
        self.log = log
        self.faults = faults
        self.n = itertools.count(1)
        self.lock = threading.Lock()

    def take(self, req: RecordedRequest) -> Any:
        with self.lock:
            n = next(self.n)
            fd = os.open(self.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            os.write(fd, f"{time.time():.6f}\n".encode())
            os.close(fd)
        if self.faults:
            if n % 7 == 0:
                return server_error(500)
            if n % 11 == 0:
                return rate_limited(0.2)
            if n % 13 == 0 and req.stream:
                return cut_mid_stream(answer)
        return answer


def main() -> None:
    port_file, log = sys.argv[1], sys.argv[2]
    faults = "--faults" in sys.argv
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with FakeProviderServer.in_thread(Endless(log, faults), chunk_chars=16) as server:
        tmp = port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(str(server.port))
        os.replace(tmp, port_file)
        stop.wait()


if __name__ == "__main__":
    main()
