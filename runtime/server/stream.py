"""The live event stream of one session: an ASGI response that speaks SSE.

It is its own ASGI callable rather than a ``StreamingResponse`` because it needs three
tasks under one nursery: the producer (the session's records, from ``Session.stream`` after
the position the client resumes from, or from the run folder once the session is over),
the writer (frames to the socket, with a heartbeat comment whenever nothing was sent for
``heartbeat`` seconds) and the listener that notices the client going away
(``http.disconnect``: Hypercorn reports it on the receive channel; writes to a closed
connection are silently dropped, so the listener is the only way to know).

A watcher that reads too slowly never slows the session: the session's channel to it
overflows (``Session.stream(lossless=False)`` raises ``Dropped``), the watcher gets
``stream_end`` with reason ``dropped`` and the last record it got, and can reconnect with
``Last-Event-ID``. A stream waiting for a queued session, or open when the service shuts
down, ends with ``stream_end`` reason ``shutdown`` (or ``cancelled``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import msgspec
import trio

from ..session.handle import Dropped, Session, read_journal
from ..session.journal import offload
from ..session.records import TextDelta
from .sse import HEARTBEAT, RETRY, frame, stream_end
from .store import SessionRecord

if TYPE_CHECKING:
    from .service import Service

__all__ = ["EventStream"]

_encoder = msgspec.json.Encoder()


class EventStream:
    """``GET /v1/sessions/{id}/events`` (see the module docstring)."""

    def __init__(self, service: Service, rec: SessionRecord, since: int, *, deltas: bool,
                 headers: Mapping[str, str]) -> None:
        self.service = service
        self.rec = rec
        self.since = since
        self.deltas = deltas
        self.headers = dict(headers)
        self.last = since

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        headers = {"content-type": "text/event-stream; charset=utf-8",
                   "cache-control": "no-cache", "x-accel-buffering": "no", **self.headers}
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(k.encode(), v.encode()) for k, v in headers.items()]})
        metrics = self.service.metrics
        metrics.watchers.inc()
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._disconnect, receive, nursery.cancel_scope)
                await self._write(send)
                nursery.cancel_scope.cancel()
        finally:
            metrics.watchers.dec()

    async def _disconnect(self, receive: Any, scope: trio.CancelScope) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                scope.cancel()
                return

    async def _write(self, send: Any) -> None:
        frames_send, frames_recv = trio.open_memory_channel[bytes](32)
        heartbeat = self.service.cfg.heartbeat
        await send({"type": "http.response.body", "body": RETRY, "more_body": True})
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._produce, frames_send)
            async with frames_recv:
                ended = False
                while not ended:
                    data = HEARTBEAT
                    with trio.move_on_after(heartbeat):
                        try:
                            data = await frames_recv.receive()
                        except trio.EndOfChannel:
                            break
                    parts = [data]
                    while len(parts) < 64:  # what is already there goes in one write
                        try:
                            parts.append(frames_recv.receive_nowait())
                        except trio.WouldBlock:
                            break
                        except trio.EndOfChannel:
                            ended = True
                            break
                    await send({"type": "http.response.body", "body": b"".join(parts),
                                "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _produce(self, out: trio.MemorySendChannel[bytes]) -> None:
        async with out:
            follow = getattr(self.service, "follow", None)
            if follow is not None:  # a fleet: the session's journal in Redis
                async for rec, line in follow(self.rec.id, self.since):
                    self.last = rec.seq
                    await out.send(frame(rec.type, line, rec.seq))
                return
            session = await self._session()
            if session is not None:
                await self._live(session, out)
                return
            rec = self.service.store.get(self.rec.id) or self.rec
            if rec.started:
                await self._from_disk(out)
            elif self.service.closing.is_set() or self.service.draining:
                await out.send(stream_end("shutdown", self.last, "the service is shutting "
                                          "down before this session started; reconnect "
                                          "after the restart"))
            else:
                await out.send(stream_end(rec.status, self.last,
                                          f"the session ended before it started ({rec.status})"))

    async def _session(self) -> Session | None:
        """The live handle; for a queued session, once it starts (None if it never does)."""
        sid = self.rec.id
        started = self.service.started(sid)
        if started is not None:
            async with trio.open_nursery() as nursery:

                async def either(event: trio.Event) -> None:
                    await event.wait()
                    nursery.cancel_scope.cancel()

                nursery.start_soon(either, started)
                nursery.start_soon(either, self.service.closing)
        return self.service.live.get(sid)

    async def _live(self, session: Session, out: trio.MemorySendChannel[bytes]) -> None:
        try:
            async for ev, line in session.stream(self.since, deltas=self.deltas,
                                                 lossless=False):
                if line is None:
                    assert isinstance(ev, TextDelta)
                    await out.send(frame("text_delta", _encoder.encode(ev)))
                else:
                    self.last = ev.seq
                    await out.send(frame(ev.type, line, ev.seq))
        except Dropped as dropped:
            self.service.metrics.dropped.inc()
            await out.send(stream_end("dropped", dropped.last_seq, "this watcher fell behind "
                                      "the session and was dropped; reconnect with "
                                      f"Last-Event-ID: {dropped.last_seq}"))

    async def _from_disk(self, out: trio.MemorySendChannel[bytes]) -> None:
        run_dir = self.service.engine.logging_dir / self.rec.id
        for rec, line in await offload(read_journal, run_dir, self.since):
            self.last = rec.seq
            await out.send(frame(rec.type, line, rec.seq))
