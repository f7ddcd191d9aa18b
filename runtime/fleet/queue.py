"""The session queue and its leases (Redis Streams and a consumer group).

``enqueue`` writes the session (hash ``P:s:<run>``: task, options, ``status: queued``) and
adds an entry to the stream ``P:q``. Workers read it through the consumer group
``workers`` (``claim_new``: each entry goes to one of them) and take the session with a
fresh *owner token* and a *lease* (``take``). The owner renews the lease (``renew``, every
third of ``backend.lease_timeout``), which also restarts the queue entry's idle time. A
worker that stops renewing (killed, cut off) leaves its entry idle: after
``lease_timeout`` another worker claims it (``claim_stale``: ``XAUTOCLAIM``) and, since the
lease has expired, takes the session with a new token; from then on the old owner's
token is refused by every script (it can neither append to the journal nor finish).

``finish`` records the outcome once (the ``done`` mark; a second finish, or one with a
stale token, changes nothing) and removes the entry; ``requeue`` hands a session back (a
worker stopping). ``cancel`` ends a queued session at once, or asks the worker running it
through the session's control stream (``P:ctl:<run>``), as ``approve`` and ``send`` do.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

import attrs
import coredis.exceptions
import msgspec
from coredis import PureToken

from ..session.records import SessionEnd
from .connection import Backend, as_text
from .journal import read_stream
from .keys import GROUP

__all__ = ["Claim", "SessionQueue", "Taken", "publish"]


@attrs.frozen
class Claim:
    """A queue entry a worker received."""

    entry_id: str
    run_id: str


@attrs.frozen
class Taken:
    """A session this worker owns: its entry, its owner token, its settings."""

    entry_id: str
    run_id: str
    token: str
    info: dict[str, str]


async def publish(backend: Backend, session_id: str, **fields: Any) -> None:
    """A change of a session's service record (``P:rec``), for every ``serve`` process:
    ``serve`` writes a new record, workers what they see of the sessions they run."""
    await backend.redis.xadd(backend.keys.k("rec"),
                             {"id": session_id, "doc": msgspec.json.encode(fields)},
                             trim_strategy=PureToken.MAXLEN, threshold=1_000_000,
                             trim_operator=PureToken.APPROXIMATELY)


class SessionQueue:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.keys = backend.keys

    async def ensure_group(self) -> None:
        """The consumer group of the queue (created once, with the stream)."""
        try:
            await self.backend.redis.xgroup_create(self.keys.queue, GROUP, "0",
                                                   mkstream=True)
        except coredis.exceptions.StreamDuplicateConsumerGroupError:
            pass

    # ---- producers (serve, tests, scripts) ------------------------------------------

    async def enqueue(self, task: str, *, run_id: str | None = None,
                      provider: str | None = None, model: str | None = None,
                      max_turns: int | None = None, keep_open: bool = False,
                      metadata: dict[str, Any] | None = None,
                      owner: str | None = None) -> str:
        """Queue a session; returns its run id (``run_id`` if given: an existing id is an
        error, ``ValueError``)."""
        from ..engine import new_run_id, valid_run_id

        rid = run_id or new_run_id()
        if not valid_run_id(rid):
            raise ValueError(f"invalid run id {rid!r}")
        if not task.strip():
            raise ValueError("the task is empty")
        fields: dict[str, Any] = {"task": task, "status": "queued", "created": repr(time.time()),
                                  "keep_open": "1" if keep_open else "0", "token": ""}
        for name, value in (("provider", provider), ("model", model),
                            ("max_turns", max_turns), ("owner", owner)):
            if value is not None:
                fields[name] = str(value)
        if metadata is not None:
            fields["metadata"] = json.dumps(metadata)
        key = self.keys.session(rid)
        if not await self.backend.redis.hsetnx(key, "run_id", rid):
            raise ValueError(f"a session {rid!r} exists already")
        await self.backend.redis.hset(key, fields)
        await self.backend.redis.zadd(self.keys.sessions, {rid: time.time()})
        await self.ensure_group()
        await self.backend.redis.xadd(self.keys.queue, {"run": rid})
        return rid

    async def info(self, run_id: str) -> dict[str, str]:
        raw = await self.backend.redis.hgetall(self.keys.session(run_id))
        return {as_text(k): as_text(v) for k, v in raw.items()}

    async def cancel(self, run_id: str) -> str:
        """``cancelled`` (it was queued: ended now), ``requested`` (its worker is asked),
        ``done`` (it had ended) or ``unknown``."""
        info = await self.info(run_id)
        if not info:
            return "unknown"
        if info.get("done") == "1":
            return "done"
        if info.get("status") == "queued":
            entries = await read_stream(self.backend, run_id)
            seq = max((e.seq for e in entries), default=0) + 1
            end = SessionEnd(ts=round(time.time(), 6), run_id=run_id, seq=seq,
                             status="cancelled", exit_code=130,
                             message="cancelled before it started")
            done = await self.backend.run(
                "cancel_queued", [self.keys.session(run_id), self.keys.journal(run_id),
                                  self.keys.events],
                [msgspec.json.encode(end), repr(time.time()), f"{seq}-0"])
            if int(done) == 1:
                return "cancelled"
        await self.control(run_id, "cancel")
        return "requested"

    async def control(self, run_id: str, op: str, **fields: Any) -> None:
        """A request for the worker running the session (``cancel``, ``approve``,
        ``send``)."""
        body = {"op": op, **{k: json.dumps(v) for k, v in fields.items()}}
        await self.backend.redis.xadd(self.keys.control(run_id), body)

    async def approve(self, run_id: str, call_id: str, allow: bool,
                      reason: str | None = None, by: str | None = None) -> None:
        await self.control(run_id, "approve", call_id=call_id, allow=allow, reason=reason,
                           by=by)

    async def send(self, run_id: str, text: str) -> None:
        await self.control(run_id, "send", text=text)

    # ---- workers ----------------------------------------------------------------------

    async def claim_new(self, consumer: str, count: int, block_ms: int) -> list[Claim]:
        """Entries never delivered to a worker (waits up to ``block_ms``)."""
        found = await self.backend.redis.xreadgroup(
            GROUP, consumer, {self.keys.queue: ">"}, count=count, block=block_ms)
        return _claims(rows for _, rows in (found or {}).items())

    async def claim_stale(self, consumer: str, count: int) -> list[Claim]:
        """Entries whose worker has not renewed them for ``lease_timeout``."""
        result = await self.backend.redis.xautoclaim(
            self.keys.queue, GROUP, consumer, self.backend.lease_ms, "0-0", count=count)
        return _claims([result[1]])

    async def take(self, claim: Claim, worker: str) -> Taken | int:
        """Own the session of ``claim`` with a fresh token: ``Taken``, or 0 (its owner is
        alive), -1 (it has ended), -2 (no such session)."""
        token = f"{worker}/{secrets.token_hex(8)}"
        k = self.keys
        got = int(await self.backend.run("take", [k.session(claim.run_id), k.lease(claim.run_id)],
                                         [worker, token, self.backend.lease_ms,
                                          repr(time.time())]))
        if got != 1:
            return got
        return Taken(claim.entry_id, claim.run_id, token, await self.info(claim.run_id))

    async def renew(self, taken: Taken, consumer: str) -> bool:
        """Extend the lease; False when another worker has taken the session."""
        k = self.keys
        ok = await self.backend.run("renew", [k.session(taken.run_id), k.lease(taken.run_id),
                                              k.queue],
                                    [taken.token, self.backend.lease_ms, GROUP, consumer,
                                     taken.entry_id])
        return int(ok) == 1

    async def finish(self, taken: Taken, *, status: str, exit_code: int, turns: int = 0,
                     answer: str = "", message: str = "",
                     totals: dict[str, Any] | None = None, worker: str = "") -> int:
        """Record the outcome: 1 now, 0 not the owner any more, -1 it had finished."""
        k = self.keys
        fields: list[Any] = ["status", status, "exit_code", exit_code, "turns", turns,
                             "answer", answer, "message", message,
                             "totals", json.dumps(totals or {}), "ended_at", repr(time.time()),
                             "done", "1", "finished_by", worker]
        return int(await self.backend.run(
            "finish", [k.session(taken.run_id), k.lease(taken.run_id), k.queue, k.events],
            [taken.token, GROUP, taken.entry_id, *fields]))

    async def requeue(self, taken: Taken) -> bool:
        k = self.keys
        ok = await self.backend.run("requeue", [k.session(taken.run_id),
                                                k.lease(taken.run_id), k.queue],
                                    [taken.token, GROUP, taken.entry_id, taken.run_id])
        return int(ok) == 1

    async def ended(self, run_ids: set[str], *, block_ms: int = 1000) -> dict[str, str]:
        """Wait until every session of ``run_ids`` has ended; their statuses. Sessions that
        had ended already count at once; the rest are read off the events stream."""
        found: dict[str, str] = {}
        last = "0-0"
        for rid in run_ids:
            info = await self.info(rid)
            if info.get("done") == "1":
                found[rid] = info.get("status", "")
        while len(found) < len(run_ids):
            rows = await self.backend.redis.xread({self.keys.events: last}, count=1000,
                                                  block=block_ms)
            for _key, entries in (rows or {}).items():
                for row in entries:
                    last = as_text(row.identifier)
                    fields = {as_text(a): as_text(b) for a, b in row.field_values.items()}
                    if fields.get("run") in run_ids:
                        found[fields["run"]] = fields.get("status", "")
        return found

    async def drop(self, claim: Claim) -> None:
        """Remove an entry whose session has ended or does not exist."""
        await self.backend.redis.xack(self.keys.queue, GROUP, [claim.entry_id])
        await self.backend.redis.xdel(self.keys.queue, [claim.entry_id])

    # ---- operations ---------------------------------------------------------------------

    async def depth(self) -> tuple[int, int]:
        """(entries in the queue, of which delivered to a worker and not finished)."""
        redis = self.backend.redis
        length = await redis.xlen(self.keys.queue)
        try:
            pending = await redis.xpending(self.keys.queue, GROUP)
        except coredis.exceptions.ResponseError:
            return length, 0
        return length, int(getattr(pending, "pending", 0) or 0)


def _claims(groups: Any) -> list[Claim]:
    out: list[Claim] = []
    for rows in groups:
        for row in rows or ():
            fields = row.field_values
            run = fields.get(b"run") if b"run" in fields else fields.get("run")
            if run is None:
                continue
            out.append(Claim(as_text(row.identifier), as_text(run)))
    return out
