"""``serve`` on a fleet: sessions are queued in Redis and run by workers.

``FleetService`` is the service (``runtime.server.service.Service``: auth, audit, the
routes, idempotency, pages) with what runs sessions replaced:

* create: the record goes to the fleet's record stream ``P:rec`` and the session to the
  queue (``SessionQueue.enqueue``); no session runs in this process;
* records: every ``serve`` process mirrors ``P:rec`` into its store (the sync store the
  routes read): records created by any ``serve``, and what workers say of the sessions
  they run (status, turns, totals, answer, pending approvals);
* events: ``GET /v1/sessions/{id}/events`` reads the session's journal stream in Redis
  (``follow``), whichever worker writes it, from ``Last-Event-ID``; text deltas are live
  only on the worker and are not streamed;
* cancel, messages, approvals: to the worker running the session through its control
  stream (a queued session is cancelled at once);
* ``/ready`` says whether Redis answers; a drain stops taking sessions (nothing runs here).

``publish`` is what workers call: a partial record update, by session id.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial
from typing import Any

import msgspec
import trio

from ..server.errors import ApiError
from ..server.models import PendingApproval, SessionView, Totals
from ..server.service import Service, contract_status, events_url
from ..server.store import FINAL, SessionRecord
from ..session.records import RecordBase
from .connection import Backend, as_text, retrying
from .journal import follow
from .queue import SessionQueue, publish

__all__ = ["FleetService", "publish"]

_FIELDS = set(SessionRecord.__struct_fields__)


class FleetService(Service):
    """See the module docstring."""

    def __init__(self, engine: Any, backend: Backend) -> None:
        super().__init__(engine)
        self.backend = backend
        self.fleet = SessionQueue(backend)
        self.pending: dict[str, list[dict[str, Any]]] = {}
        self._outbox_send, self._outbox_recv = trio.open_memory_channel[
            tuple[str, str]](256)

    # ---- the actor ----------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                  ) -> None:
        """The audit writer, the mirror of the record stream, the message sender."""
        async with trio.open_nursery() as writers:
            await writers.start(self.audit.run)
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                await retrying(self.backend, self.fleet.ensure_group)
                last = await self._catch_up("0-0")
                nursery.start_soon(self._mirror, last)
                nursery.start_soon(self._sender)
                task_status.started()
                await self.closing.wait()
                nursery.cancel_scope.cancel()
            await self.audit.aclose()

    async def _catch_up(self, last: str) -> str:
        while True:
            start = f"({last}" if last != "0-0" else "-"
            rows = await retrying(self.backend, partial(
                self.backend.redis.xrange, self.backend.keys.k("rec"), start, "+", count=1000))
            for row in rows:
                last = as_text(row.identifier)
                self._apply(row.field_values)
            if len(rows) < 1000:
                return last

    async def _mirror(self, last: str) -> None:
        key = self.backend.keys.k("rec")
        while True:
            found = await retrying(self.backend, partial(
                self.backend.redis.xread, {key: last}, count=1000, block=5000))
            for _key, rows in (found or {}).items():
                for row in rows:
                    last = as_text(row.identifier)
                    self._apply(row.field_values)

    def _apply(self, fields: Any) -> None:
        values = {as_text(k): v for k, v in fields.items()}
        sid = as_text(values.get("id", b""))
        try:
            doc = msgspec.json.decode(values.get("doc", b"{}"))
        except msgspec.DecodeError:
            return
        if not isinstance(doc, dict) or not sid:
            return
        if "pending" in doc:
            self.pending[sid] = list(doc.pop("pending") or [])
        if "status" in doc:
            doc["status"] = contract_status(str(doc["status"]))
        rec = self.store.get(sid)
        known = {k: v for k, v in doc.items() if k in _FIELDS}
        if rec is None:
            if "owner" not in known:
                return  # an update of a session created before this mirror's history
            known.setdefault("id", sid)
            try:
                rec = msgspec.convert(known, SessionRecord)
            except msgspec.ValidationError:
                return
        else:
            if rec.status in FINAL and known.get("status") not in (None, rec.status):
                known.pop("status")  # a late update never reopens an ended session
            try:
                rec = msgspec.structs.replace(rec, **known)
            except (TypeError, msgspec.ValidationError):
                return
        if rec.status in FINAL:
            self.pending.pop(sid, None)
        self.store.put(rec)

    async def _sender(self) -> None:
        async with self._outbox_recv:
            async for sid, text in self._outbox_recv:
                await retrying(self.backend, partial(self.fleet.send, sid, text))

    # ---- what the routes call -----------------------------------------------------------

    async def _admit(self, rec: SessionRecord, task: str) -> None:
        doc = msgspec.to_builtins(rec)
        await publish(self.backend, rec.id, **doc)
        await self.fleet.enqueue(task, run_id=rec.id, provider=rec.provider, model=rec.model,
                                 max_turns=rec.max_turns, keep_open=rec.keep_open,
                                 metadata=rec.metadata, owner=rec.owner)
        self.store.put(rec)

    def status_of(self, rec: SessionRecord) -> str:
        return rec.status

    def view(self, rec: SessionRecord) -> SessionView:
        final = rec.status in FINAL
        pending = [] if final else [PendingApproval(**a) for a in self.pending.get(rec.id, [])]
        return SessionView(
            id=rec.id, status=rec.status, turns=rec.turns,  # type: ignore[arg-type]
            answer=rec.answer if final else None,
            totals=msgspec.convert(rec.totals or {}, Totals), pending_approvals=pending,
            created_at=rec.created_at, keep_open=rec.keep_open, metadata=rec.metadata,
            owner=rec.owner, message=rec.message if final else None,
            events_url=events_url(rec.id))

    def started(self, session_id: str) -> trio.Event | None:
        return None

    async def cancel(self, rec: SessionRecord) -> str:
        outcome = await self.fleet.cancel(rec.id)
        if outcome in ("done", "unknown"):
            raise ApiError(409, "conflict", f"session {rec.id} has already ended "
                           f"({rec.status})")
        if outcome == "cancelled":
            await publish(self.backend, rec.id, status="cancelled",
                          message="cancelled before it started")
            rec = msgspec.structs.replace(rec, status="cancelled",
                                          message="cancelled before it started")
            self.store.put(rec)
            return "cancelled"
        return rec.status

    def send(self, rec: SessionRecord, text: str) -> None:
        if not rec.keep_open:
            raise ApiError(409, "conflict", f"session {rec.id} was not started with "
                           "keep_open: it takes no further messages")
        if rec.status in FINAL:
            raise ApiError(409, "conflict", f"session {rec.id} has ended ({rec.status})")
        try:
            self._outbox_send.send_nowait((rec.id, text))
        except trio.WouldBlock:
            raise ApiError(409, "conflict", "too many messages are waiting to be sent; "
                           "send again in a moment") from None

    async def approve(self, rec: SessionRecord, call_id: str, allow: bool, reason: str | None,
                      always: bool, by: str) -> None:
        if not any(a.get("call_id") == call_id for a in self.pending.get(rec.id, [])):
            raise ApiError(409, "conflict", f"no pending approval for call {call_id!r} in "
                           f"session {rec.id}")
        await self.fleet.approve(rec.id, call_id, allow, reason, by=by)

    async def follow(self, session_id: str, since: int
                     ) -> AsyncIterator[tuple[RecordBase, bytes]]:
        """The session's records after ``since``, live, from its journal in Redis."""
        async for rec, line in follow(self.backend, session_id, since):
            yield rec, line

    async def ready(self) -> tuple[bool, str | None]:
        """Ready unless draining or Redis does not answer."""
        if self.draining:
            return False, None
        up = await self.backend.ping()
        return up, "ok" if up else "unreachable"

    async def drain(self, grace: float, *, log: Any = lambda m: None) -> None:
        """Nothing runs here: refuse new sessions and stop (workers keep running them)."""
        self.draining = True
        log("draining: sessions run on the workers and are not affected")
        self.closing.set()
