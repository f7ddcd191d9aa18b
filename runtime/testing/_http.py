"""HTTP/1.1 for the fake provider: h11 over a trio stream, keep-alive, one request at a time.

``serve_connection`` reads a request, asks ``handle`` for a plan (see ``script``) and carries
it out: ``Head`` sends the status line (content-length, or chunked when the length is None),
``Send`` a chunk, ``Sleep`` waits on the trio clock (so ``MockClock`` drives it), ``Cut``
closes the connection without finishing the message. A peer that goes away ends the
connection quietly: that is ordinary for a server whose clients time out on purpose.
"""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus

import h11
import trio

from .script import Cut, Head, Send, Sleep, Step

__all__ = ["Handler", "serve_connection"]

Handler = Callable[[h11.Request, bytes, int], list[Step]]

_MAX_READ = 65536


def _reason(status: int) -> bytes:
    if status == 529:
        return b"Site Overloaded"
    try:
        return HTTPStatus(status).phrase.encode()
    except ValueError:
        return b""


async def _read_request(stream: trio.abc.Stream, conn: h11.Connection
                        ) -> tuple[h11.Request, bytes] | None:
    """The next request and its body, or None when the client closed the connection."""
    request: h11.Request | None = None
    body: list[bytes] = []
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(bytes(await stream.receive_some(_MAX_READ)))
        elif isinstance(event, h11.Request):
            request = event
        elif isinstance(event, h11.Data):
            body.append(bytes(event.data))
        elif isinstance(event, h11.EndOfMessage):
            assert request is not None
            return request, b"".join(body)
        elif isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
            return None


async def _carry_out(stream: trio.abc.Stream, conn: h11.Connection, plan: list[Step],
                     chunk_delay: float) -> bool:
    """Send a plan; False when the connection is to be closed without finishing."""
    for step in plan:
        if isinstance(step, Sleep):
            await trio.sleep(step.seconds)
        elif isinstance(step, Head):
            headers = list(step.headers)
            if step.length is None:
                headers.append(("transfer-encoding", "chunked"))
            else:
                headers.append(("content-length", str(step.length)))
            await stream.send_all(conn.send(h11.Response(
                status_code=step.status, headers=headers, reason=_reason(step.status))))
        elif isinstance(step, Send):
            if step.data:
                await stream.send_all(conn.send(h11.Data(data=step.data)))
                if chunk_delay:
                    await trio.sleep(chunk_delay)
        elif isinstance(step, Cut):
            return False
    await stream.send_all(conn.send(h11.EndOfMessage()))
    return True


async def _bad_request(stream: trio.abc.Stream, conn: h11.Connection, exc: Exception) -> None:
    if conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
        return
    body = f"bad request: {exc}\n".encode()
    await stream.send_all(conn.send(h11.Response(status_code=400, headers=[
        ("content-type", "text/plain"), ("content-length", str(len(body))),
        ("connection", "close")])))
    await stream.send_all(conn.send(h11.Data(data=body)))
    await stream.send_all(conn.send(h11.EndOfMessage()))


async def serve_connection(stream: trio.abc.Stream, handle: Handler, connection: int,
                           chunk_delay: float = 0.0) -> None:
    """Serve requests on one connection until either side closes it."""
    conn = h11.Connection(h11.SERVER)
    async with stream:
        try:
            while True:
                try:
                    got = await _read_request(stream, conn)
                except h11.RemoteProtocolError as exc:
                    await _bad_request(stream, conn, exc)
                    return
                if got is None:
                    return
                request, body = got
                plan = handle(request, body, connection)
                if not await _carry_out(stream, conn, plan, chunk_delay):
                    return
                if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                    return
                conn.start_next_cycle()
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return
