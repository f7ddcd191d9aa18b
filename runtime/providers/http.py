"""One HTTP attempt against a provider: encode, send, stream, decode, deliver.

This is the only place where httpx meets the project. Foreign exceptions are mapped here,
once, with ``raise ... from exc``; everything above sees ``ProviderError`` only.

The hot path is per streamed chunk: ``aiter_bytes`` -> ``SSEDecoder.feed`` -> codec
``StreamDecoder.feed`` -> ``Assembler.add``, and the events of one network read go out as
one list on the channel: with ``send_nowait`` while the channel has room (no scheduling
round trip) and an awaiting ``send`` when it is full, so a slow consumer still applies
backpressure.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import attrs
import httpx
import msgspec
import trio

from ..errors import ErrorKind, ProviderError, error_from_event, error_from_response
from ..events import Assembler, Event
from ..model import Request, Response
from ..wire import codec_for
from ..wire.sse import SSEDecoder
from .kinds import KINDS

__all__ = ["HTTPProvider", "ProviderSpec", "Timeouts"]

_MAX_ERROR_BODY = 64 * 1024
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
        self._timeout = httpx.Timeout(connect=t.connect, read=t.read, write=t.read, pool=t.connect)
        # told the response headers of every attempt (the rate limiter adapts to them)
        self.on_headers: Callable[[httpx.Headers], None] | None = None

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
        try:
            with trio.fail_after(self.spec.timeouts.total):
                async with self.client.stream(
                    "POST", self.url, content=content, headers=self._headers,
                    timeout=self._timeout,
                ) as http:
                    request_id = http.headers.get("request-id") or http.headers.get("x-request-id")
                    in_body = True
                    if self.on_headers is not None:
                        self.on_headers(http.headers)
                    if http.status_code >= 400:
                        raise await self._http_error(http)
                    ctype = http.headers.get("content-type", "")
                    if "text/event-stream" in ctype:
                        await self._read_stream(http, asm, send)
                    else:
                        await self._read_body(http, ctype, asm, send)
        except ProviderError as exc:
            exc.provider = exc.provider or self.name
            exc.request_id = exc.request_id or request_id
            if in_body and exc.kind is ErrorKind.MALFORMED_RESPONSE and exc.status is None:
                # garbage inside a 200 response: the transfer broke, a new request may not
                exc.retry_safe = True
                exc.output_started = asm.has_output
            raise
        except trio.TooSlowError as exc:
            raise self._error(ErrorKind.TIMEOUT,
                              f"no complete response within {self.spec.timeouts.total:g} s (timeout.total)",
                              request_id, started=asm.has_output) from exc
        except httpx.TimeoutException as exc:
            what = "connect" if isinstance(exc, httpx.ConnectTimeout) else "read"
            limit = self.spec.timeouts.connect if what == "connect" else self.spec.timeouts.read
            raise self._error(ErrorKind.TIMEOUT, f"{what} timed out after {limit:g} s "
                              f"(timeout.{what})", request_id, started=asm.has_output) from exc
        except (httpx.ConnectError, httpx.UnsupportedProtocol) as exc:
            raise self._error(ErrorKind.CONNECTION, f"cannot connect to {self.url}: {exc}",
                              request_id) from exc
        except httpx.RemoteProtocolError as exc:
            if stale_ok and not in_body and "without sending" in str(exc):
                raise _StaleConnection from exc
            kind = ErrorKind.STREAM_INTERRUPTED if in_body else ErrorKind.CONNECTION
            raise self._error(kind, f"connection broken: {exc or type(exc).__name__}",
                              request_id, started=asm.has_output) from exc
        except (httpx.ReadError, httpx.WriteError, httpx.DecodingError) as exc:
            kind = ErrorKind.STREAM_INTERRUPTED if in_body else ErrorKind.CONNECTION
            raise self._error(kind, f"connection broken: {exc or type(exc).__name__}",
                              request_id, started=asm.has_output) from exc
        except httpx.TransportError as exc:
            raise self._error(ErrorKind.CONNECTION, f"transport error: {exc!r}",
                              request_id) from exc
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
                           send: trio.MemorySendChannel[list[Event]] | None) -> None:
        sse = SSEDecoder()
        dec = self.codec.StreamDecoder()
        feed_sse = sse.feed
        feed = dec.feed
        add = asm.add
        async for chunk in resp.aiter_bytes():
            batch: list[Event] = []
            for sev in feed_sse(chunk):
                for ev in feed(sev):
                    add(ev)
                    batch.append(ev)
            if batch:
                if send is not None:
                    try:
                        send.send_nowait(batch)
                    except trio.WouldBlock:
                        await send.send(batch)
                if asm.error is not None:
                    return
        tail = [ev for sev in sse.close() for ev in feed(sev)]
        if asm.error is None:
            tail += dec.close()
        await _deliver(tail, asm, send)

    async def _read_body(self, resp: httpx.Response, ctype: str, asm: Assembler,
                         send: trio.MemorySendChannel[list[Event]] | None) -> None:
        body = await resp.aread()
        if "json" not in ctype and body.lstrip()[:1] not in (b"{", b"["):
            raise ProviderError(
                ErrorKind.MALFORMED_RESPONSE,
                f"expected JSON or an event stream, got {ctype or 'no content-type'}",
                provider=self.name, status=resp.status_code,
                details=self._redact(body[:400].decode("utf-8", "replace")),
            )
        events: list[Event] = self.codec.decode_body(body)
        await _deliver(events, asm, send)


class _StaleConnection(Exception):
    """A reused connection was closed by the server before it answered."""


async def _deliver(events: list[Event], asm: Assembler,
                   send: trio.MemorySendChannel[list[Event]] | None) -> None:
    for ev in events:
        asm.add(ev)
    if send is not None and events:
        await send.send(events)


def _scrub_key(key: str | None) -> Callable[[str], str]:
    from ..redact import Redactor

    return Redactor([key] if key else []).text
