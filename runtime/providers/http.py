"""One HTTP attempt against a provider: encode, send, stream, decode, deliver.

This is the only place where httpx meets the project. Foreign exceptions are mapped here,
once, with ``raise ... from exc``; everything above sees ``ProviderError`` only. A failure
whose cause is this machine's own shortage (too many open files, no memory, no free port:
``local_cause`` finds the errno behind httpx's wrappers; or a failed connect while the
process sits at its open-file limit; or a ``timeout.total`` lost to our own stalled event
loop or slow consumer) is ``local_resource``, never blamed on the provider.

The hot path is per network read: ``aiter_bytes`` -> ``EventSplitter.feed`` (the data of
each event as bytes) -> codec ``StreamDecoder.feed_all`` (a run of text chunks is one
``TextDelta``) -> ``Assembler.add``, and the events of one read go out as one list on the
channel: with ``send_nowait`` while the channel has room (no scheduling round trip) and an
awaiting ``send`` when it is full, so a slow consumer still applies backpressure.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from types import ModuleType
from typing import Any

import attrs
import httpx
import msgspec
import trio

from ..errors import (
    ErrorKind,
    ProviderError,
    error_from_event,
    error_from_response,
    local_cause,
    local_resource_error,
)
from ..events import Assembler, Event
from ..model import Request, Response
from ..wire import codec_for
from ..wire.sse_split import EventSplitter
from .actor import PoolUse
from .kinds import KINDS

__all__ = ["HTTPProvider", "PoolUse", "ProviderSpec", "Timeouts"]

_MAX_ERROR_BODY = 64 * 1024
# A timeout.total counts as ours when our side (a stalled event loop firing the deadline
# late, a consumer holding the stream back) took more than this share of it (>= 1 s).
_OURS_SHARE = 0.1
_FD_MARGIN = 8  # "at the open-file limit": fewer free descriptors than this
_encoder = msgspec.json.Encoder()


@attrs.frozen
class Timeouts:
    """Seconds: ``connect``; ``read`` between two chunks; ``total`` for the whole request."""

    connect: float = 10.0
    read: float = 120.0
    total: float = 600.0


@attrs.frozen
class ProviderSpec:
    """What one HTTP provider runtime needs to know (built from a config entry)."""

    name: str
    kind: str
    base_url: str
    model: str = ""
    api_key: str | None = attrs.field(default=None, repr=False)
    headers: dict[str, str] = attrs.field(factory=dict, repr=False)
    timeouts: Timeouts = attrs.field(factory=Timeouts)
    # the size of the client's connection pool (None: unknown) and whether it speaks
    # HTTP/2 (streams share a connection): to tell a request that waits for a connection
    pool_size: int | None = None
    http2: bool = False


class HTTPProvider:
    """Sends canonical requests to one provider over a shared ``httpx.AsyncClient``."""

    def __init__(self, spec: ProviderSpec, client: httpx.AsyncClient, *,
                 redact: Callable[[str], str] | None = None) -> None:
        kind = KINDS.get(spec.kind)
        if kind is None or kind.protocol is None:
            raise ValueError(f"{spec.kind!r} is not an HTTP provider kind")
        self.spec = spec
        self.name = spec.name
        self.protocol: str = kind.protocol
        self.dialect = kind.dialect
        self.codec: ModuleType = codec_for(self.protocol)
        self.client = client
        self.url = self.codec.url(spec.base_url)
        self._redact = redact or _scrub_key(spec.api_key)
        headers = dict(self.codec.headers(spec.api_key))
        headers.update(spec.headers)
        self._headers = headers
        t = spec.timeouts
        # no pool timeout: a request waits for a free connection within timeout.total (the
        # trio deadline around it), never failing after timeout.connect
        self._timeout = httpx.Timeout(connect=t.connect, read=t.read, write=t.read, pool=None)
        self.in_flight = 0  # requests of this provider holding or waiting for a connection
        # told the response headers of every attempt (the rate limiter adapts to them)
        self.on_headers: Callable[[httpx.Headers], None] | None = None
        # send a PoolUse on the reply channel when a response head arrives (the engine's
        # actor replies carry it to the session's accounts)
        self.report_pool = False

    def encode(self, req: Request, *, stream: bool) -> bytes:
        body: dict[str, Any] = self.codec.encode_request(req, stream=stream, dialect=self.dialect)
        return _encoder.encode(body)

    async def attempt(self, req: Request, send: trio.MemorySendChannel[list[Event]] | None = None,
                      *, stream: bool = True) -> Response:
        """One request. Events are delivered to ``send`` as they arrive (if given), in
        batches: one list per network read, so a consumer wakes once per read, not once per
        event (a trio channel ``receive`` is a scheduling point); the assembled response is
        returned. Failures raise ``ProviderError`` (with the provider
        name, a redacted body excerpt and the request id when the provider sent one).

        A pooled keep-alive connection that the server closed just before we reused it
        ("disconnected without sending a response") is not a provider failure: the request
        is sent once more on a fresh connection, within the same attempt."""
        content = self.encode(req, stream=stream)
        try:
            return await self._attempt(content, send)
        except _StaleConnection:
            return await self._attempt(content, send, stale_ok=False)

    async def _attempt(self, content: bytes, send: trio.MemorySendChannel[list[Event]] | None,
                       *, stale_ok: bool = True) -> Response:
        asm = Assembler(self.protocol, self.name)
        request_id: str | None = None
        in_body = False  # the response head arrived: a break now interrupts a response
        held = _Held()
        deadline = trio.current_time() + self.spec.timeouts.total
        conn = _Connection(self.spec.pool_size is not None and not self.spec.http2
                           and self.in_flight >= self.spec.pool_size)
        self.in_flight += 1
        try:
            with trio.fail_after(self.spec.timeouts.total):
                async with self.client.stream(
                    "POST", self.url, content=content, headers=self._headers,
                    timeout=self._timeout, extensions={"trace": conn.trace},
                ) as http:
                    request_id = http.headers.get("request-id") or http.headers.get("x-request-id")
                    in_body = True
                    if send is not None and self.report_pool:
                        await _deliver_use(conn.use(), send, held)
                    if self.on_headers is not None:
                        self.on_headers(http.headers)
                    if http.status_code >= 400:
                        raise await self._http_error(http)
                    ctype = http.headers.get("content-type", "")
                    if "text/event-stream" in ctype:
                        await self._read_stream(http, asm, send, held)
                    else:
                        await self._read_body(http, ctype, asm, send, held)
        except ProviderError as exc:
            exc.provider = exc.provider or self.name
            exc.request_id = exc.request_id or request_id
            if in_body and exc.kind is ErrorKind.MALFORMED_RESPONSE and exc.status is None:
                # garbage inside a 200 response: the transfer broke, a new request may not
                exc.retry_safe = True
                exc.output_started = asm.has_output
            raise
        except trio.TooSlowError as exc:
            raise self._total_timeout(deadline, held.seconds + conn.waiting(), request_id,
                                      asm.has_output) from exc
        except httpx.TimeoutException as exc:
            # trio delivers I/O before it expires deadlines, so a read or connect timeout
            # means no byte came for the whole window however busy we were: the provider's
            what = "connect" if isinstance(exc, httpx.ConnectTimeout) else "read"
            limit = self.spec.timeouts.connect if what == "connect" else self.spec.timeouts.read
            raise self._error(ErrorKind.TIMEOUT, f"{what} timed out after {limit:g} s "
                              f"(timeout.{what})", request_id, started=asm.has_output) from exc
        except (httpx.ConnectError, httpx.UnsupportedProtocol) as exc:
            raise self._local(exc, "connecting", request_id, connect=True) or self._error(
                ErrorKind.CONNECTION, f"cannot connect to {self.url}: {exc}",
                request_id) from exc
        except httpx.RemoteProtocolError as exc:
            if stale_ok and not in_body and "without sending" in str(exc):
                raise _StaleConnection from exc
            kind = ErrorKind.STREAM_INTERRUPTED if in_body else ErrorKind.CONNECTION
            raise self._local(exc, "talking to the provider", request_id,
                              started=asm.has_output) or self._error(
                kind, f"connection broken: {exc or type(exc).__name__}",
                request_id, started=asm.has_output) from exc
        except (httpx.ReadError, httpx.WriteError, httpx.DecodingError) as exc:
            kind = ErrorKind.STREAM_INTERRUPTED if in_body else ErrorKind.CONNECTION
            raise self._local(exc, "talking to the provider", request_id,
                              started=asm.has_output) or self._error(
                kind, f"connection broken: {exc or type(exc).__name__}",
                request_id, started=asm.has_output) from exc
        except (httpx.TransportError, OSError) as exc:  # OSError: one httpx did not wrap
            raise self._local(exc, "talking to the provider", request_id,
                              started=asm.has_output) or self._error(
                ErrorKind.CONNECTION, f"transport error: {exc!r}", request_id) from exc
        finally:
            self.in_flight -= 1
        if asm.error is not None:
            ev = asm.error
            err = error_from_event(ev.kind, self._redact(ev.message), provider=self.name,
                                   status=ev.status, type=ev.type, code=ev.code)
            err.request_id = request_id
            err.output_started = asm.has_output
            raise err
        resp = asm.response()
        if request_id is not None:
            resp.request_id = request_id
        return resp

    def _local(self, exc: BaseException, doing: str, request_id: str | None, *,
               connect: bool = False, started: bool = False) -> ProviderError | None:
        """The ``local_resource`` error when ``exc`` comes from this machine's own shortage
        (an errno behind it, or a failed connect while we sit at the open-file limit)."""
        code = local_cause(exc)
        if code is None and connect and _at_fd_limit():
            code = errno.EMFILE
            doing = "connecting with (almost) every allowed file descriptor in use"
        if code is None:
            return None
        err = local_resource_error(code, doing, provider=self.name, request_id=request_id)
        err.output_started = started
        return err

    def _total_timeout(self, deadline: float, held: float, request_id: str | None,
                       started: bool) -> ProviderError:
        """A ``timeout.total`` expiry: the provider's, unless our side took a fair share of
        the time (the deadline fired late because our event loop stalled, a slow consumer
        held the stream back, or the request waited for a connection of our own pool)."""
        total = self.spec.timeouts.total
        late = max(0.0, trio.current_time() - deadline)
        ours = late + held
        if ours > max(1.0, _OURS_SHARE * total):
            err = ProviderError(
                ErrorKind.LOCAL_RESOURCE,
                self._redact(f"timeout.total ({total:g} s) ran out while this process was too "
                             f"busy: the deadline fired {late:.1f} s late and the request was "
                             f"held back {held:.1f} s by a slow consumer or a full connection "
                             "pool; not the provider's fault"),
                provider=self.name, request_id=request_id,
                hint="the event loop of this process was stalled or overloaded, or every "
                     "connection of the pool was busy: lower concurrency, raise "
                     "providers.<name>.pool.max_connections, move CPU-heavy work off the "
                     "event loop, or raise timeout.total; the request is retried")
            err.output_started = started
            return err
        return self._error(ErrorKind.TIMEOUT, f"no complete response within {total:g} s "
                           "(timeout.total)", request_id, started=started)

    def _error(self, kind: ErrorKind, message: str, request_id: str | None, *,
               started: bool = False) -> ProviderError:
        err = ProviderError(kind, self._redact(message), provider=self.name,
                            request_id=request_id)
        err.output_started = started
        return err

    async def _http_error(self, resp: httpx.Response) -> ProviderError:
        body = bytearray()
        async for chunk in resp.aiter_bytes():
            body += chunk
            if len(body) >= _MAX_ERROR_BODY:
                break
        return error_from_response(resp.status_code, resp.headers, bytes(body),
                                   provider=self.name, redact=self._redact)

    async def _read_stream(self, resp: httpx.Response, asm: Assembler,
                           send: trio.MemorySendChannel[list[Event]] | None,
                           held: _Held) -> None:
        sse = EventSplitter()
        dec = self.codec.StreamDecoder()
        split = sse.feed
        feed_all = dec.feed_all
        add = asm.add
        async for chunk in resp.aiter_bytes():
            pairs = split(chunk)
            if not pairs:
                continue
            batch: list[Event] = []
            try:
                feed_all(pairs, batch)
            finally:  # what was decoded before a failure counts (output_started)
                for ev in batch:
                    add(ev)
            if batch:
                if send is not None:
                    try:
                        send.send_nowait(batch)
                    except trio.WouldBlock:
                        await held.send(send, batch)
                if asm.error is not None:
                    return
        tail = feed_all(sse.close(), [])
        if asm.error is None:
            tail += dec.close()
        await _deliver(tail, asm, send, held)

    async def _read_body(self, resp: httpx.Response, ctype: str, asm: Assembler,
                         send: trio.MemorySendChannel[list[Event]] | None,
                         held: _Held) -> None:
        body = await resp.aread()
        if "json" not in ctype and body.lstrip()[:1] not in (b"{", b"["):
            raise ProviderError(
                ErrorKind.MALFORMED_RESPONSE,
                f"expected JSON or an event stream, got {ctype or 'no content-type'}",
                provider=self.name, status=resp.status_code,
                details=self._redact(body[:400].decode("utf-8", "replace")),
            )
        events: list[Event] = self.codec.decode_body(body)
        await _deliver(events, asm, send, held)


class _StaleConnection(Exception):
    """A reused connection was closed by the server before it answered."""


class _Connection:
    """What the ``trace`` extension tells of one request's connection: the first trace
    event marks the moment a connection was assigned (the end of a pool wait); a TCP
    connect marks a new connection."""

    __slots__ = ("assigned", "new", "t0", "waited")

    def __init__(self, waited: bool) -> None:
        self.waited = waited
        self.t0 = trio.current_time()
        self.assigned: float | None = None
        self.new = False

    async def trace(self, name: str, info: dict[str, Any]) -> None:
        if self.assigned is None:
            self.assigned = trio.current_time()
        if name == "connection.connect_tcp.started":
            self.new = True

    def waiting(self) -> float:
        """Seconds spent waiting for a connection (so far, when none was assigned yet)."""
        if not self.waited:
            return 0.0
        end = self.assigned if self.assigned is not None else trio.current_time()
        return end - self.t0

    def use(self) -> PoolUse:
        return PoolUse(self.new, self.waited, round(self.waiting(), 6))


async def _deliver_use(use: PoolUse, send: trio.MemorySendChannel[Any], held: _Held) -> None:
    try:
        send.send_nowait(use)
    except trio.WouldBlock:
        await held.send(send, use)


class _Held:
    """Seconds one attempt spent waiting for its consumer to take events (backpressure):
    time in which the provider could not send, so not the provider's to be blamed for."""

    __slots__ = ("seconds",)

    def __init__(self) -> None:
        self.seconds = 0.0

    async def send(self, channel: trio.MemorySendChannel[Any], events: Any) -> None:
        t0 = trio.current_time()
        try:
            await channel.send(events)
        finally:
            self.seconds += trio.current_time() - t0


async def _deliver(events: list[Event], asm: Assembler,
                   send: trio.MemorySendChannel[list[Event]] | None, held: _Held) -> None:
    for ev in events:
        asm.add(ev)
    if send is not None and events:
        await held.send(send, events)


def _at_fd_limit() -> bool:
    """Whether this process has (almost) no file descriptor left under its soft limit.
    Reads ``/proc/self/fd`` (memory, not disk); unknown elsewhere (False)."""
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft == resource.RLIM_INFINITY:
            return False
        in_use = len(os.listdir("/proc/self/fd"))
    except OSError as exc:  # listing needs a descriptor too: none left is the answer
        return exc.errno in (errno.EMFILE, errno.ENFILE)
    except ImportError:  # pragma: no cover - not a Unix
        return False
    return in_use >= soft - _FD_MARGIN


def _scrub_key(key: str | None) -> Callable[[str], str]:
    from ..redact import Redactor

    return Redactor([key] if key else []).text
