"""The fake provider: a real HTTP/1.1 server on 127.0.0.1 speaking the three wire protocols.

It answers from a ``Script`` (canonical responses, callables, faults, raw replies) or replays
a recording, records every provider request and injects faults on request. It runs inside
the caller's trio run, so ``trio.testing.MockClock`` drives its stalls too::

    async with open_fake_server([Response(parts=[TextPart("hi")])]) as server:
        client = httpx.AsyncClient(base_url=server.base_url("anthropic"))
        ...

    server = await nursery.start(serve_fake_provider, script)

    with FakeProviderServer.in_thread(script) as server:   # from synchronous code
        ...

``max_context_tokens=N`` makes it a model with an N-token window: a larger request gets
the vendor's context-length error (``testing.context``), and ``refused_in_a_row`` /
``max_refused_in_a_row`` count the refusals. With ``context_dialect="llama.cpp"`` it also
answers llama-server's ``GET /props`` with that window as ``n_ctx`` (``serve_props``).

Routes: ``POST`` to a path ending in ``/chat/completions`` (openai-chat), ``/responses``
(openai-responses) or ``/messages`` (anthropic), query ignored; ``GET /health``; ``GET
/props`` as above; anything else is a 404. Only provider requests are recorded and consume script entries.
"""

from __future__ import annotations

import collections
import json
import queue
import threading
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from functools import partial
from typing import Any

import h11
import msgspec
import trio

from ..model import Response, Usage
from ..providers.kinds import KINDS
from ._http import serve_connection
from .context import ContextDialect, context_refusal, count_tokens
from .faults import Fault, error_body
from .script import (
    Entry,
    Raw,
    RecordedRequest,
    Script,
    Step,
    encoder_for,
    plan_of,
    protocol_of_path,
)

__all__ = ["FakeProviderServer", "open_fake_server", "serve_fake_provider"]

_MAX_NESTING = 8


class FakeProviderServer:
    """The state of one fake provider: its script, what it received and what it served.

    Create it with ``open_fake_server``, ``serve_fake_provider`` or ``in_thread``; the
    attributes below are for tests to read.
    """

    def __init__(self, script: Script | Iterable[Entry] | None = None, *,
                 host: str = "127.0.0.1", port: int = 0, chunk_chars: int = 8,
                 chunk_delay: float = 0.0, max_context_tokens: int | None = None,
                 context_dialect: ContextDialect = "vendor") -> None:
        self.script = script if isinstance(script, Script) else Script(script or ())
        self.host = host
        self.port = port
        self.chunk_chars = chunk_chars
        self.chunk_delay = chunk_delay
        self.requests: list[RecordedRequest] = []
        self.faults_served: collections.Counter[str] = collections.Counter()
        self.exhausted = 0
        self.connections = 0
        self.errors: list[BaseException] = []
        self._injected: list[list[Any]] = []  # [fault, remaining]
        # context window: refuse larger requests as the vendor does (``testing.context``)
        self.max_context_tokens = max_context_tokens
        self.context_dialect: ContextDialect = context_dialect
        self.context_counts: list[int] = []     # the size of every counted request
        self.context_refused = 0                # requests refused for their size
        self.refused_in_a_row = 0               # the current streak of refusals
        self.max_refused_in_a_row = 0           # the longest streak
        self.serve_props = True                 # llama.cpp dialect: GET /props answers
        self.props_served = 0
        self._lock = threading.Lock()

    # --- what tests use -------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def base_url(self, kind: str) -> str:
        """The base URL a client of a provider kind (or of a wire protocol, each of which
        is also a kind) configures (ARCHITECTURE.md "Base URLs")."""
        entry = KINDS.get(kind)
        if entry is None or entry.in_process:
            raise ValueError(f"{kind!r} is not a provider kind that speaks HTTP")
        return f"{self.url}/v1" if entry.openai_base else self.url

    @property
    def request_count(self) -> int:
        return len(self.requests)

    def inject(self, fault: Fault, times: int = 1) -> None:
        """Answer the next ``times`` requests the fault applies to with it, before the
        script (which those requests do not consume)."""
        if times < 1:
            raise ValueError("times must be at least 1")
        with self._lock:
            self._injected.append([fault, times])

    def add(self, *entries: Entry) -> None:
        """Append entries to the script."""
        self.script.add(*entries)

    @classmethod
    @contextmanager
    def in_thread(cls, script: Script | Iterable[Entry] | None = None,
                  **options: Any) -> Iterator[FakeProviderServer]:
        """Run the server in a daemon thread with its own ``trio.run``; stop it on exit."""
        yield from _in_thread(script, options)

    # --- answering ------------------------------------------------------------------

    def _take_injected(self, req: RecordedRequest) -> Fault | None:
        with self._lock:
            for slot in self._injected:
                fault: Fault = slot[0]
                if fault.applies_to(req):
                    slot[1] -= 1
                    if slot[1] <= 0:
                        self._injected.remove(slot)
                    return fault
        return None

    def handle(self, request: h11.Request, body: bytes, connection: int) -> list[Step]:
        """The plan answering one HTTP request."""
        method = request.method.decode("ascii", "replace")
        target = request.target.decode("utf-8", "replace")
        path, _, query = target.partition("?")
        protocol = protocol_of_path(path)
        if method == "GET" and path.rstrip("/") == "/health":
            return plan_of(Raw.json(200, {"status": "ok", "requests": self.request_count}))
        if (method == "GET" and path.rstrip("/") == "/props" and self.serve_props
                and self.context_dialect == "llama.cpp" and self.max_context_tokens):
            self.props_served += 1
            return plan_of(Raw.json(200, {"default_generation_settings": {
                "n_ctx": self.max_context_tokens}, "total_slots": 1}))
        if protocol is None or method != "POST":
            return plan_of(Raw.json(404, {"error": {
                "message": f"fake provider: no route for {method} {path}", "type":
                "not_found_error", "param": None, "code": "not_found"}}))
        headers: dict[str, str] = {}
        for name, value in request.headers:
            key = name.decode("latin-1").lower()
            val = value.decode("latin-1")
            headers[key] = f"{headers[key]}, {val}" if key in headers else val
        try:
            parsed = json.loads(body) if body else {}
        except ValueError:
            parsed = None
        req = RecordedRequest(method, path, query, protocol, headers,
                              parsed if isinstance(parsed, dict) else {}, body, connection)
        self.requests.append(req)
        if not isinstance(parsed, dict):
            return self._error(req, 400, "fake provider: the request body is not a JSON object")
        refusal = self._context_check(req)
        if refusal is not None:
            return refusal
        fault = self._take_injected(req)
        entry: Entry | None = fault if fault is not None else self.script.take(req)
        if entry is None:
            self.exhausted += 1
            return self._error(req, 500, (
                f"fake provider: the script ran out: request #{self.request_count} "
                f"({method} {path}) has no scripted answer; add entries to the script"),
                type="script_exhausted")
        try:
            return self._plan(entry, req, 0)
        except Exception as exc:
            self.errors.append(exc)
            return self._error(req, 500, f"fake provider: the script entry failed: {exc!r}",
                               type="script_error")

    def _context_check(self, req: RecordedRequest) -> list[Step] | None:
        """The vendor's refusal when the request is over ``max_context_tokens``."""
        if self.max_context_tokens is None:
            return None
        try:
            count = count_tokens(req)
        except ValueError as exc:
            return self._error(req, 400, f"fake provider: not a valid request: {exc}")
        self.context_counts.append(count)
        if count <= self.max_context_tokens:
            self.refused_in_a_row = 0
            return None
        self.context_refused += 1
        self.refused_in_a_row += 1
        self.max_refused_in_a_row = max(self.max_refused_in_a_row, self.refused_in_a_row)
        return plan_of(context_refusal(req.protocol, count, self.max_context_tokens,
                                       self.context_dialect))

    def _error(self, req: RecordedRequest, status: int, message: str, *,
               type: str | None = None) -> list[Step]:
        return plan_of(Raw.json(status, error_body(req.protocol, status, message, type=type)))

    def _plan(self, entry: Entry, req: RecordedRequest, depth: int) -> list[Step]:
        if depth > _MAX_NESTING:
            raise RecursionError("script entries nest too deeply")
        if isinstance(entry, Fault):
            self.faults_served[entry.name] += 1
            if entry.action in ("reply", "refuse_stream"):
                return entry.plan(req)
            return entry.plan(req, self._plan(entry.answer, req, depth + 1))
        if isinstance(entry, Raw):
            return plan_of(entry)
        if isinstance(entry, Response):
            return plan_of(self._encode(entry, req))
        if callable(entry):
            return self._plan(entry(req), req, depth + 1)
        raise TypeError(f"not a script entry: {entry!r}")

    def _encode(self, resp: Response, req: RecordedRequest) -> Raw:
        enc = encoder_for(req.protocol)
        if resp.usage is None and self.max_context_tokens is not None and self.context_counts:
            # a window-limited fake reports the input it counted, as a real provider does
            resp = msgspec.structs.replace(resp, usage=Usage(
                input_tokens=self.context_counts[-1], output_tokens=_output_tokens(resp)))
        if req.stream:
            events = list(enc.encode_stream(resp, chunk_chars=self.chunk_chars))
            return Raw(200, {"content-type": "text/event-stream; charset=utf-8"}, events)
        return Raw(200, {"content-type": "application/json"},
                   msgspec.json.encode(enc.encode_json(resp)))


def _output_tokens(resp: Response) -> int:
    return max(1, len(msgspec.json.encode(resp.parts)) // 4)


async def serve_fake_provider(
    script: Script | Iterable[Entry] | None = None, *, host: str = "127.0.0.1", port: int = 0,
    chunk_chars: int = 8, chunk_delay: float = 0.0, max_context_tokens: int | None = None,
    context_dialect: ContextDialect = "vendor",
    task_status: trio.TaskStatus[FakeProviderServer] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until cancelled; reports the ``FakeProviderServer`` once it listens."""
    listeners = await trio.open_tcp_listeners(port, host=host)
    bound_port = listeners[0].socket.getsockname()[1]
    server = FakeProviderServer(script, host=host, port=bound_port, chunk_chars=chunk_chars,
                                chunk_delay=chunk_delay, max_context_tokens=max_context_tokens,
                                context_dialect=context_dialect)

    async def on_connection(stream: trio.SocketStream) -> None:
        server.connections += 1
        await serve_connection(stream, server.handle, server.connections, server.chunk_delay)

    async with trio.open_nursery() as nursery:
        await nursery.start(trio.serve_listeners, on_connection, listeners)
        task_status.started(server)


@asynccontextmanager
async def open_fake_server(script: Script | Iterable[Entry] | None = None,
                           **options: Any) -> AsyncIterator[FakeProviderServer]:
    """Run a fake provider for the body of an ``async with``; stop it on exit. An exception
    from the body comes out as itself, not wrapped in an exception group."""
    failure: BaseException | None = None
    async with trio.open_nursery() as nursery:
        server: FakeProviderServer = await nursery.start(
            partial(serve_fake_provider, script, **options))
        try:
            yield server
        except BaseException as exc:
            failure = exc
        nursery.cancel_scope.cancel()
    if failure is not None:
        raise failure


def _in_thread(script: Script | Iterable[Entry] | None,
               options: dict[str, Any]) -> Iterator[FakeProviderServer]:
    ready: queue.Queue[Any] = queue.Queue()
    crashed: list[BaseException] = []

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            server = await nursery.start(partial(serve_fake_provider, script, **options))
            ready.put((server, trio.lowlevel.current_trio_token(), nursery.cancel_scope))

    def run() -> None:
        try:
            trio.run(main)
        except BaseException as exc:
            crashed.append(exc)
            ready.put(exc)

    thread = threading.Thread(target=run, name="fake-provider-server", daemon=True)
    thread.start()
    item = ready.get(timeout=30)
    if isinstance(item, BaseException):
        thread.join(timeout=5)
        raise RuntimeError("the fake provider server failed to start") from item
    server, token, scope = item
    try:
        yield server
    finally:
        try:
            trio.from_thread.run_sync(scope.cancel, trio_token=token)
        except trio.RunFinishedError:
            pass
        thread.join(timeout=10)
    if crashed:
        raise RuntimeError("the fake provider server crashed") from crashed[0]

