"""A fleet worker: claims queued sessions, runs them on its engine, holds their leases.

::

    claims      XREADGROUP new entries, XAUTOCLAIM entries whose lease ran out; stops while
                Redis is unreachable (reconnecting with backoff) or every slot is busy
    sessions    one task each: take the session (owner token + lease), resume it from its
                journal in Redis when it has one (the run folder is rebuilt here, then
                ``engine.start(resume=...)``: calls that never started or are read-only run,
                the others are reported interrupted), else start it; the journal goes to
                the run folder and, through a fenced tee, to Redis; requests from ``serve``
                (cancel, approve, send) arrive on the session's control stream
    renewals    every third of ``lease_timeout``; a lease found taken stops that session at
                once (its tee is fenced: nothing more reaches Redis)
    heartbeat   ``P:w:<name>`` (for ``python main.py fleet``)

A session that ends is finished once in Redis (the ``finish`` script; its status and exit
code as in the run folder). Stopping (``stop`` set: SIGTERM) claims nothing more, gives
running sessions ``grace`` seconds, then hands the rest back to the queue: their tee stops
first, so the journal in Redis ends where the next worker resumes.

Nothing here prints: events go to ``on_event(name, fields)`` (the ``worker`` command logs
them).
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import attrs
import coredis.exceptions
import trio

from ..errors import ConfigError
from ..session.handle import Session
from .connection import DOWN, Backend, as_text, backoff, retrying
from .journal import RedisTee, last_end, read_stream, rebuild_folder
from .queue import Claim, SessionQueue, Taken, publish

__all__ = ["Worker"]

EventSink = Callable[[str, dict[str, Any]], None]


@attrs.define(eq=False)
class _Running:
    taken: Taken
    tee: RedisTee
    session: Session | None = None
    lost: bool = False            # another worker took it: this one writes nothing more
    handing_over: bool = False    # this worker is stopping: the session goes back


class Worker:
    def __init__(self, engine: Any, backend: Backend, *, name: str | None = None,
                 concurrency: int = 4, on_event: EventSink | None = None,
                 block_ms: int = 1000) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.engine = engine
        self.backend = backend
        self.queue = SessionQueue(backend)
        self.name = name or f"{socket.gethostname()}-{os.getpid()}"
        self.concurrency = concurrency
        self.on_event = on_event or (lambda name, fields: None)
        self.block_ms = block_ms
        self.running: dict[str, _Running] = {}
        self.busy = 0                 # slots taken: claimed entries, from claim to end
        self.started_at = time.time()
        self.counts = {"claimed": 0, "finished": 0, "resumed": 0, "lost": 0, "handed_back": 0}
        self._changed = trio.Event()
        self.claiming = False
        self.down = False             # Redis did not answer the last call of any task
        # sessions whose record changed (approvals, turns): told to every serve process
        self._changes_send, self._changes_recv = trio.open_memory_channel[str](1024)
        if hasattr(engine, "record_listeners"):
            engine.record_listeners.append(self._on_record)

    def _event(self, name: str, **fields: Any) -> None:
        self.on_event(name, {"worker": self.name, **fields})

    def _saw_down(self, exc: BaseException) -> None:
        self.backend.mark_down(exc)
        if not self.down:
            self.down = True
            self._event("redis_lost", error=self.backend.last_error)

    def _saw_up(self) -> None:
        if self.down:
            self.down = False
            self._event("redis_back")

    def _poke(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    # ---- the worker -------------------------------------------------------------------

    async def run(self, stop: trio.Event, *, grace: float = 30.0,
                  task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Work until ``stop`` is set, then drain (see the module docstring)."""
        attempt = 0
        while True:  # Redis may be down when the worker starts: it waits, and says so
            try:
                await self.queue.ensure_group()
                break
            except DOWN as exc:
                self._saw_down(exc)
                attempt += 1
                await trio.sleep(backoff(attempt))
        self._saw_up()
        try:
            await self._work(stop, grace, task_status)
        finally:  # however it ends (a second signal): nothing more reaches Redis
            for r in list(self.running.values()):
                r.tee.stop()
        with trio.move_on_after(5.0) as scope:
            scope.shield = True
            try:
                await self.backend.redis.srem(self.backend.keys.workers, [self.name])
                await self.backend.redis.delete([self.backend.keys.worker(self.name)])
            except DOWN:
                pass
        self._event("worker_stopped", **self.counts)

    async def _work(self, stop: trio.Event, grace: float,
                    task_status: trio.TaskStatus[None]) -> None:
        async with trio.open_nursery() as chores:
            chores.start_soon(self._heartbeat)
            chores.start_soon(self._renewals)
            chores.start_soon(self._publisher)
            async with trio.open_nursery() as sessions:
                task_status.started()
                self._event("worker_started", concurrency=self.concurrency)
                with trio.CancelScope() as claiming:
                    chores.start_soon(_cancel_on, stop, claiming)
                    await self._claims(sessions)
                self.claiming = False
                self._event("worker_stopping", running=len(self.running))
                with trio.move_on_after(grace):
                    while self.busy:
                        await self._changed.wait()
                if self.running:
                    self._event("handing_back", sessions={
                        rid: r.session.status if r.session else "starting"
                        for rid, r in self.running.items()})
                for r in list(self.running.values()):
                    r.handing_over = True
                    r.tee.stop()
                    if r.session is not None:
                        r.session.cancel("terminated")
            chores.cancel_scope.cancel()

    async def _claims(self, sessions: trio.Nursery) -> None:
        attempt = 0
        last_stale = -1e9
        while True:
            free = self.concurrency - self.busy
            if free <= 0:
                self.claiming = False
                await self._changed.wait()
                continue
            self.claiming = True
            try:
                found: list[Claim] = []
                if trio.current_time() - last_stale >= self.backend.config.lease_timeout / 4:
                    last_stale = trio.current_time()
                    found = await self.queue.claim_stale(self.name, free)
                if len(found) < free:
                    found += await self.queue.claim_new(self.name, free - len(found),
                                                        self.block_ms)
            except DOWN as exc:
                self._saw_down(exc)
                self.claiming = False
                attempt += 1
                await trio.sleep(backoff(attempt))
                continue
            except coredis.exceptions.ResponseError as exc:
                if "NOGROUP" not in str(exc):  # a Redis that lost its data: start again
                    raise
                await retrying(self.backend, self.queue.ensure_group)
                continue
            if attempt:
                with trio.CancelScope(shield=True):
                    await retrying(self.backend, self.queue.ensure_group)
            self._saw_up()
            attempt = 0
            for claim in found:
                if claim.run_id in self.running:
                    continue
                self.counts["claimed"] += 1
                self.busy += 1
                sessions.start_soon(self._serve, claim)

    # ---- one session ------------------------------------------------------------------

    async def _serve(self, claim: Claim) -> None:
        try:
            await self._take_and_run(claim)
        finally:
            self.busy -= 1
            self._poke()

    async def _take_and_run(self, claim: Claim) -> None:
        try:
            taken = await self.queue.take(claim, self.name)
        except DOWN:
            return  # the entry stays ours; claimed again once its lease runs out
        if isinstance(taken, int):
            if taken < 0:
                await _quietly(self.queue.drop(claim))
            return
        run_id = taken.run_id
        tee = RedisTee(self.backend, run_id, taken.token)
        running = self.running[run_id] = _Running(taken, tee)
        self._poke()
        try:
            await self._run_session(running)
        except Exception as exc:  # a bug: reported; the lease lapses and another worker resumes
            self._event("session_failed", run_id=run_id, error=f"{type(exc).__name__}: {exc}")
        finally:
            del self.running[run_id]
            self._poke()

    async def _run_session(self, r: _Running) -> None:
        taken, engine = r.taken, self.engine
        run_id, info = taken.run_id, taken.info
        entries = await retrying(self.backend, lambda: read_stream(self.backend, run_id))
        ended = last_end(entries)
        if ended is not None:  # it ended; its worker died before recording that
            await self._finish(r, ended.status, ended.exit_code, ended.turns,
                               message=ended.message or "", totals=ended.totals)
            return
        resume = bool(entries)
        if resume:
            await rebuild_folder(self.backend, run_id, engine.logging_dir / run_id, entries)
            self.counts["resumed"] += 1
        self._event("session_claimed", run_id=run_id, resumed=resume, records=len(entries))
        await _quietly(publish(self.backend, run_id, status="running", started=True))
        async with trio.open_nursery() as nursery:
            await nursery.start(r.tee.run)
            try:
                session = await engine.start(
                    None if resume else info.get("task"), resume=run_id if resume else None,
                    run_id=None if resume else run_id, provider=info.get("provider") or None,
                    model=info.get("model") or None,
                    max_turns=int(info["max_turns"]) if info.get("max_turns") else None,
                    keep_open=info.get("keep_open") == "1", tee=r.tee, on_approval="wait")
            except (ConfigError, OSError) as exc:
                r.tee.close()
                await self._finish(r, "error", 1, 0, message=str(exc))
                return
            r.session = session
            nursery.start_soon(self._control, r, session)
            result = await session.result()
            r.tee.close()
            nursery.cancel_scope.cancel()
        if r.lost or r.tee.fenced:
            self.counts["lost"] += 1
            self._event("session_lost", run_id=run_id,
                        reason="its lease was taken by another worker")
            return
        if r.handing_over:
            with trio.CancelScope(shield=True):
                ok = await retrying(self.backend, lambda: self.queue.requeue(taken))
                await _quietly(publish(self.backend, run_id, status="queued", pending=[]))
            self.counts["handed_back"] += ok
            self._event("session_handed_back", run_id=run_id, status=result.status)
            return
        await self._finish(r, result.status, result.exit_code, result.turns,
                           answer=result.answer, message=result.message,
                           totals=result.totals)

    async def _finish(self, r: _Running, status: str, exit_code: int, turns: int, *,
                      answer: str = "", message: str = "",
                      totals: dict[str, Any] | None = None) -> None:
        taken = r.taken
        with trio.CancelScope(shield=True):
            done = await retrying(self.backend, lambda: self.queue.finish(
                taken, status=status, exit_code=exit_code, turns=turns, answer=answer,
                message=message, totals=totals, worker=self.name))
        if done == 1:
            self.counts["finished"] += 1
            with trio.CancelScope(shield=True):
                await _quietly(publish(
                    self.backend, taken.run_id, status=status, turns=turns,
                    totals=dict(totals or {}), answer=answer or None, message=message or None,
                    pending=[]))
        self._event("session_finished" if done == 1 else "session_not_finished",
                    run_id=taken.run_id, status=status, exit_code=exit_code, result=done,
                    **({"message": message} if message else {}))

    async def _control(self, r: _Running, session: Session) -> None:
        """Apply what ``serve`` asks of this session (cancel, approve, send), each request
        once across workers (the position read is kept in the session's hash)."""
        k = self.backend.keys
        run_id = r.taken.run_id
        last = r.taken.info.get("ctl_seen") or "0-0"
        while True:
            found = await retrying(self.backend, partial(
                self.backend.redis.xread, {k.control(run_id): last}, count=50, block=5000))
            for _key, rows in (found or {}).items():
                for row in rows:
                    last = as_text(row.identifier)
                    await self._apply(session, {as_text(a): as_text(b)
                                                for a, b in row.field_values.items()})
                    await _quietly(self.backend.redis.hset(k.session(run_id),
                                                           {"ctl_seen": last}))

    async def _apply(self, session: Session, req: dict[str, str]) -> None:
        op = req.get("op")
        args = {k: json.loads(v) for k, v in req.items() if k != "op"}
        try:
            if op == "cancel":
                session.cancel("cancelled")
            elif op == "approve":
                await session.approve(args["call_id"], bool(args["allow"]), args.get("reason"),
                                      by=args.get("by"))
            elif op == "send":
                await session.send(str(args["text"]))
        except (KeyError, RuntimeError, ValueError) as exc:
            self._event("control_ignored", run_id=session.run_id, op=op, reason=str(exc))

    # ---- what serve shows ---------------------------------------------------------------

    def _on_record(self, rec: Any) -> None:
        """Every record of every session of the engine (synchronous: only noted here)."""
        if rec.run_id in self.running and getattr(rec, "type", "") in _TOLD:
            try:
                self._changes_send.send_nowait(rec.run_id)
            except trio.WouldBlock:
                pass  # a burst: the next change says it all again

    async def _publisher(self) -> None:
        """Status, turns and pending approvals of running sessions, for every serve."""
        async with self._changes_recv:
            async for run_id in self._changes_recv:
                await trio.lowlevel.checkpoint()  # the status the record led to
                r = self.running.get(run_id)
                if r is None or r.session is None or r.lost or r.handing_over:
                    continue
                s = r.session
                if s.done:
                    continue
                await _quietly(publish(self.backend, run_id, status=s.status, turns=s.turn,
                                       pending=s.pending_approvals))

    # ---- leases and heartbeat ---------------------------------------------------------

    async def _renewals(self) -> None:
        every = self.backend.config.lease_timeout / 3
        while True:
            await trio.sleep(every)
            for r in list(self.running.values()):
                if r.lost or r.handing_over:
                    continue
                try:
                    ok = await self.queue.renew(r.taken, self.name)
                except DOWN as exc:
                    self._saw_down(exc)
                    continue  # renewed at the next round if Redis is back
                self._saw_up()
                if not ok:
                    r.lost = True
                    r.tee.fenced = True
                    if r.session is not None:
                        r.session.cancel("terminated")

    async def _heartbeat(self) -> None:
        k = self.backend.keys
        every = self.backend.config.lease_timeout / 3
        while True:
            beat = {"name": self.name, "host": socket.gethostname(), "pid": os.getpid(),
                    "started": repr(self.started_at), "beat": repr(time.time()),
                    "concurrency": self.concurrency, "running": len(self.running),
                    "sessions": ",".join(sorted(self.running)), "claiming": int(self.claiming),
                    **self.counts}
            try:
                await self.backend.redis.hset(k.worker(self.name), beat)
                await self.backend.redis.pexpire(k.worker(self.name),
                                                 int(self.backend.lease_ms * 3))
                await self.backend.redis.sadd(k.workers, [self.name])
            except DOWN as exc:
                self._saw_down(exc)
            else:
                self._saw_up()
            with trio.move_on_after(every):  # or at once when a session starts or ends
                await self._changed.wait()


_TOLD = frozenset({"session_start", "approval_request", "approval", "turn_end", "user"})


async def _cancel_on(event: trio.Event, scope: trio.CancelScope) -> None:
    await event.wait()
    scope.cancel()


async def _quietly(call: Any) -> None:
    try:
        await call
    except DOWN:
        pass
