"""The service: sessions started over HTTP, on the process's one engine.

``Service`` owns what the HTTP routes act on: the session records (``store``), the queue of
sessions waiting for a slot (``queue``; at most ``server.max_sessions`` run at once, at most
``server.max_queue`` wait, more are refused), the live session handles, the audit log, the
metrics and the server state file. ``run`` is its actor (started in the server's nursery):
the audit and state writers, the dispatcher that starts queued sessions, one supervisor per
session (its end updates the record; every record feeds the metrics through the engine's
``record_listeners``), and, on start, the
sessions that the previous process did not finish (``server.resume_on_start``).

The server state file ``<logging.dir>/server_state.jsonl`` is append-only: one line per
change of a record (created, started, ended), folded and compacted at start. A session that
never started keeps its task there so that it can start after a restart.

``drain`` is the graceful shutdown (``drain.py`` has the sequence).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from functools import partial

import msgspec
import trio

from ..engine import Engine, new_run_id
from ..errors import ConfigError
from ..session.handle import Session
from ..session.journal import offload
from .auditlog import AuditLog
from .auth import Principal
from .errors import ApiError
from .files import line_writer, read_lines, replace
from .metrics import Metrics
from .models import CreateSession, PendingApproval, SessionView, Totals
from .store import FINAL, LocalQueue, LocalStore, SessionQueue, SessionRecord, SessionStore

__all__ = ["STATE_FILE", "Service", "contract_status"]

STATE_FILE = "server_state.jsonl"
IDEMPOTENCY_TTL = 24 * 3600.0

_MAP = {"provider_failed": "failed", "error": "failed", "terminated": "interrupted"}
_record_encoder = msgspec.json.Encoder()


def contract_status(status: str) -> str:
    """A session's status as the API names it (``provider_failed`` and ``error`` are
    ``failed``; ``terminated`` is ``interrupted``)."""
    return _MAP.get(status, status)


class Service:
    """See the module docstring."""

    def __init__(self, engine: Engine, *, store: SessionStore | None = None,
                 queue: SessionQueue | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.cfg = engine.cfg.server
        self.store: SessionStore = store or LocalStore()
        self.queue: SessionQueue = queue or LocalQueue(self.cfg.max_queue)
        self.live: dict[str, Session] = {}
        self.metrics = Metrics(self.counts)
        engine.record_listeners.append(self.metrics.observe)
        self.audit = AuditLog(engine.logging_dir / "audit.jsonl")
        self.state_path = engine.logging_dir / STATE_FILE
        self.draining = False
        self.openapi_json: bytes | None = None   # the document, encoded once
        self.closing = trio.Event()          # set when the drain has ended the sessions
        self.clock = clock
        self._active = 0                     # sessions started and not yet ended
        self._started: dict[str, trio.Event] = {}
        self._creating: set[tuple[str, str]] = set()
        self._tasks: dict[str, str] = {}     # queued here: the task as given
        self._wake = trio.Event()
        self._persist: trio.MemorySendChannel[bytes] | None = None
        self._nursery: trio.Nursery | None = None
        self._supervisors = 0
        self._idle = trio.Event()

    # ---- the actor ----------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                  ) -> None:
        """Writers up, earlier sessions restored, dispatcher running; until ``drain``."""
        records = await offload(self._load_state)
        async with trio.open_nursery() as writers:
            await writers.start(self.audit.run)
            self._persist = await writers.start(partial(line_writer, self.state_path, bytes))
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                self._restore(records)
                nursery.start_soon(self._dispatch)
                task_status.started()
                await self.closing.wait()
                nursery.cancel_scope.cancel()
            await self.audit.aclose()
            await self._persist.aclose()

    def _load_state(self) -> list[SessionRecord]:
        """Fold the state file (the last line of a session wins) and compact it."""
        recs: dict[str, SessionRecord] = {}
        for line in read_lines(self.state_path):
            try:
                rec = msgspec.json.decode(line, type=SessionRecord)
            except msgspec.DecodeError:
                continue  # a torn last line after a crash
            recs.pop(rec.id, None)
            recs[rec.id] = rec
        ordered = sorted(recs.values(), key=lambda r: r.ordinal)
        if ordered:
            replace(self.state_path, b"".join(_record_encoder.encode(r) + b"\n"
                                              for r in ordered))
        return ordered

    def _restore(self, records: list[SessionRecord]) -> None:
        """Earlier sessions back in the store; the unfinished ones queued again."""
        for rec in records:
            unfinished = rec.status not in FINAL or rec.resume
            if unfinished and self.cfg.resume_on_start:
                rec.resume = rec.started
                rec.status = "queued"
                self.queue.push(rec.id, force=True)
                self._started[rec.id] = trio.Event()
            elif unfinished:
                rec.status = "interrupted"
            self.store.put(rec)
        self._kick()

    # ---- starting sessions --------------------------------------------------------------

    def _kick(self) -> None:
        self._wake.set()

    async def _dispatch(self) -> None:
        """Start queued sessions while slots are free, first come first served."""
        while True:
            while self._active < self.cfg.max_sessions and not self.draining:
                sid = self.queue.pop()
                if sid is None:
                    break
                rec = self.store.get(sid)
                if rec is None or rec.status != "queued":
                    continue
                await self._start(rec)
            await self._wake.wait()
            self._wake = trio.Event()

    async def _start(self, rec: SessionRecord) -> None:
        """Start (or resume) a session now; its supervisor follows it to its end."""
        assert self._nursery is not None
        self._active += 1
        try:
            if rec.resume:
                session = await self.engine.start(
                    resume=rec.id, provider=rec.provider, model=rec.model,
                    max_turns=rec.max_turns, keep_open=rec.keep_open)
            else:
                session = await self.engine.start(
                    self._tasks.pop(rec.id, rec.task), run_id=rec.id, provider=rec.provider, model=rec.model,
                    max_turns=rec.max_turns, keep_open=rec.keep_open)
        except (ConfigError, OSError, RuntimeError) as exc:
            self._active -= 1
            rec.status, rec.resume, rec.task = "failed", False, None
            rec.message = f"the session could not start: {exc}"
            self.store.put(rec)
            await self.persist(rec)
            self._started.pop(rec.id, trio.Event()).set()
            return
        self.live[rec.id] = session
        rec.status, rec.started, rec.task, rec.resume = "running", True, None, False
        self.store.put(rec)
        await self.persist(rec)
        self._started.pop(rec.id, trio.Event()).set()
        if self._supervisors == 0:
            self._idle = trio.Event()
        self._supervisors += 1
        self._nursery.start_soon(self._supervise, rec, session)

    async def _supervise(self, rec: SessionRecord, session: Session) -> None:
        """At the session's end, the record's final state (its records reach the metrics
        through the engine's record listeners)."""
        try:
            result = await session.result()
            rec.status = contract_status(result.status)
            rec.resume = result.status == "terminated"
            rec.turns, rec.totals = result.turns, dict(result.totals)
            rec.answer = result.answer or None
            rec.message = result.message or None
            self.store.put(rec)
            with trio.CancelScope(shield=True):
                await self.persist(rec)
            # ended: the record has what the API shows; streams still open keep the handle
            self.live.pop(rec.id, None)
        finally:
            self._active -= 1
            self._supervisors -= 1
            if self._supervisors == 0:
                self._idle.set()
            self._kick()

    async def persist(self, rec: SessionRecord) -> None:
        """Append the record's current state to the state file."""
        if self._persist is not None:
            await self._persist.send(_record_encoder.encode(rec) + b"\n")

    # ---- what the routes call -----------------------------------------------------------

    def counts(self) -> dict[str, int]:
        out = {s: 0 for s in ("queued", "running", "waiting_approval", "waiting_input",
                              "finished", "failed", "limit", "cancelled", "interrupted")}
        for rec in self.store.all():
            status = self.status_of(rec)
            out[status] = out.get(status, 0) + 1
        return out

    def status_of(self, rec: SessionRecord) -> str:
        s = self.live.get(rec.id)
        if s is not None and not s.done:
            return contract_status(s.status) if s.status != "queued" else "running"
        return rec.status

    def visible(self, principal: Principal, session_id: str, *, approving: bool = False
                ) -> SessionRecord:
        """The record of a session the caller may act on: its own, any with ``admin``, and
        for answering an approval any with ``approvals:write`` (approvers review other
        callers' sessions). 404 otherwise: whether another caller's session exists is not
        told."""
        rec = self.store.get(session_id)
        shared = principal.admin or (approving and principal.allows("approvals:write"))
        if rec is None or (rec.owner != principal.id and not shared):
            raise ApiError(404, "not_found", f"no session {session_id!r}")
        return rec

    def view(self, rec: SessionRecord) -> SessionView:
        s = self.live.get(rec.id)
        live = s is not None and not s.done
        totals = (s.totals if s is not None else rec.totals) or {}
        pending = [PendingApproval(**a) for a in s.pending_approvals] if live and s else []
        return SessionView(
            id=rec.id, status=self.status_of(rec),  # type: ignore[arg-type]
            turns=s.turn if s is not None else rec.turns,
            answer=None if live else rec.answer, totals=msgspec.convert(totals, Totals),
            pending_approvals=pending, created_at=rec.created_at, keep_open=rec.keep_open,
            metadata=rec.metadata, owner=rec.owner, message=None if live else rec.message,
            events_url=events_url(rec.id))

    def started(self, session_id: str) -> trio.Event | None:
        """The event set when a queued session starts (None when it is not queued)."""
        return self._started.get(session_id)

    async def create(self, principal: Principal, body: CreateSession,
                     idempotency_key: str | None) -> tuple[SessionRecord, bool]:
        """A new session (started, or queued); ``(record, replayed)``: a repeated
        ``Idempotency-Key`` with the same body gives the first request's session."""
        if self.draining:
            raise ApiError(503, "unavailable", "the service is shutting down; retry on "
                           "another instance or after the restart", headers={"retry-after": "5"})
        self._check_provider(body)
        idem: tuple[str, str] | None = None
        if idempotency_key is not None:
            digest = hashlib.sha256(idempotency_key.encode()).hexdigest()
            fingerprint = hashlib.sha256(msgspec.json.encode(body)).hexdigest()
            idem = (digest, fingerprint)
            earlier = self.store.by_idempotency(principal.id, digest)
            if earlier is not None and earlier.created_at + IDEMPOTENCY_TTL > self.clock():
                if earlier.idempotency != idem:
                    raise ApiError(409, "idempotency_mismatch", "this Idempotency-Key was "
                                   "used with a different body", field="Idempotency-Key")
                return earlier, True
            if (principal.id, digest) in self._creating:
                raise ApiError(409, "conflict", "a request with this Idempotency-Key is "
                               "still being processed")
        rec = SessionRecord(
            id=new_run_id(), owner=principal.id, created_at=round(self.clock(), 6),
            status="queued", task=self.engine.redactor.text(body.task), provider=body.provider,
            model=body.model, max_turns=body.max_turns, keep_open=body.keep_open,
            metadata=dict(body.metadata) if body.metadata is not None else None,
            idempotency=idem)
        if idem is not None:
            self._creating.add((principal.id, idem[0]))
        try:
            await self._admit(rec, body.task)
        finally:
            if idem is not None:
                self._creating.discard((principal.id, idem[0]))
        self.metrics.created.inc()
        await self.audit.record("session_create", principal.id, session=rec.id,
                                status=self.status_of(rec), keep_open=rec.keep_open or None)
        return rec, False

    async def _admit(self, rec: SessionRecord, task: str) -> None:
        self._tasks[rec.id] = task  # as given; the state file has it without secrets
        if self._active < self.cfg.max_sessions and not len(self.queue):
            self.store.put(rec)
            self._started[rec.id] = trio.Event()
            await self._start(rec)
            return
        if not self.queue.push(rec.id):
            del self._tasks[rec.id]
            raise ApiError(429, "queue_full", f"{self.cfg.max_sessions} sessions are running "
                           f"and {len(self.queue)} are queued (server.max_queue); retry later",
                           headers={"retry-after": "5"})
        self._started[rec.id] = trio.Event()
        self.store.put(rec)
        await self.persist(rec)
        self._kick()

    def _check_provider(self, body: CreateSession) -> None:
        runtimes = self.engine.runtimes
        name = body.provider or self.engine.cfg.provider
        if name not in runtimes:
            raise ApiError(422, "validation", f"no provider named {name!r}; use one of "
                           f"{', '.join(runtimes)}", field="provider")
        allowed = runtimes[name].config.models
        if body.model is not None and allowed and body.model not in allowed:
            raise ApiError(422, "validation", f"model {body.model!r} is not allowed for "
                           f"provider {name!r}; use one of {', '.join(allowed)}", field="model")

    async def cancel(self, rec: SessionRecord) -> str:
        """End a session as cancelled; its status afterwards."""
        s = self.live.get(rec.id)
        if s is not None and not s.done:
            s.cancel("cancelled")
            return self.status_of(rec)
        if (rec.status == "queued" and self.queue.remove(rec.id)) or rec.resume:
            self._tasks.pop(rec.id, None)
            rec.status, rec.resume, rec.task = "cancelled", False, None
            rec.message = "cancelled before it started" if not rec.started else "cancelled"
            self.store.put(rec)
            await self.persist(rec)
            self._started.pop(rec.id, trio.Event()).set()
            return rec.status
        raise ApiError(409, "conflict", f"session {rec.id} has already ended ({rec.status})")

    def live_session(self, rec: SessionRecord) -> Session:
        s = self.live.get(rec.id)
        if s is None or s.done:
            what = "has not started yet" if rec.status == "queued" else "has ended"
            raise ApiError(409, "conflict", f"session {rec.id} {what} ({self.status_of(rec)})")
        return s

    def send(self, rec: SessionRecord, text: str) -> None:
        if not rec.keep_open:
            raise ApiError(409, "conflict", f"session {rec.id} was not started with "
                           "keep_open: it takes no further messages")
        s = self.live_session(rec)
        try:
            s.send_nowait(text)
        except trio.WouldBlock:
            raise ApiError(409, "conflict", "16 messages are already waiting for this "
                           "session; send again after it answers") from None
        except RuntimeError:
            raise ApiError(409, "conflict", f"session {rec.id} has ended") from None

    async def approve(self, rec: SessionRecord, call_id: str, allow: bool, reason: str | None,
                      always: bool, by: str) -> None:
        s = self.live_session(rec)
        try:
            await s.approve(call_id, allow, reason, always=always, by=by)
        except KeyError:
            raise ApiError(409, "conflict", f"no pending approval for call {call_id!r} in "
                           f"session {rec.id}") from None

    # ---- shutdown -----------------------------------------------------------------------

    async def drain(self, grace: float, *, log: Callable[[str], None] = lambda m: None) -> None:
        """Graceful shutdown: refuse new sessions, give the running ones ``grace`` seconds
        to reach the end of a turn, stop the rest as interrupted (resumable); queued ones
        stay queued for the next start. Returns once every run folder is closed."""
        self.draining = True
        live = [s for s in self.live.values() if not s.done]
        log(f"draining: {len(live)} running, {len(self.queue)} queued; grace {grace:g}s")
        for s in live:
            s.stop_at_turn_end()
        with trio.move_on_after(grace):
            for s in live:
                await s.result()
        late = [s for s in live if not s.done]
        for s in late:
            s.cancel("terminated")
        if late:
            log(f"{len(late)} session(s) interrupted mid-turn after the grace period")
        with trio.move_on_after(4.0):
            for s in late:
                await s.result()
            if self._supervisors:
                await self._idle.wait()
        for rec_id in self.queue.ids():
            rec = self.store.get(rec_id)
            if rec is not None:
                await self.persist(rec)
        self.closing.set()


def events_url(session_id: str) -> str:
    return f"/v1/sessions/{session_id}/events"

