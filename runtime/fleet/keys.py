"""Where everything lives in Redis, under ``backend.prefix`` (pure: names and periods).

::

    P:rl:<limiter>        hash   a provider's rate limiter (both buckets, the provider's caps)
    P:cb:<breaker>        hash   a provider's circuit (state, failures, opened_at, probe)
    P:cache:e:<key>       string a cached response (TTL)      P:cache:m:<key> its material
    P:cache:lru           zset   key -> last use               P:cache:size    hash key -> bytes
    P:budget:d:<day>      string USD spent that UTC day        P:budget:m:<month> that month
    P:budget:s:<run>      string USD spent by one session (across the workers that ran it)
    P:q                   stream the session queue (group ``workers``); field ``run``
    P:s:<run>             hash   a session: task, options, status, owner token, worker, ...
    P:sessions            zset   run id -> creation time (listing)
    P:lease:<run>         string the owner's token while its lease is alive (PX)
    P:j:<run>             stream the session's journal: id <seq>-0 holds transcript line
                                 <seq> (field ``l``); <seq>-<k> a reasoning frame (``t``)
    P:ctl:<run>           stream requests for the worker running it (cancel, approve, send)
    P:ev                  stream one entry per session that ended (run, status)
    P:rec                 stream changes of the service's session records (``serve`` mirrors)
    P:w:<name>            hash   a worker's heartbeat (PX); P:workers set of names
"""

from __future__ import annotations

import datetime as _dt

import attrs

__all__ = ["FINAL", "GROUP", "Keys", "periods"]

GROUP = "workers"
# statuses after which a session is done for the whole fleet (interrupted / terminated
# sessions of a worker that stopped are queued again instead)
FINAL = frozenset({"finished", "limit", "provider_failed", "error", "cancelled"})


@attrs.frozen
class Keys:
    prefix: str

    def k(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    @property
    def queue(self) -> str:
        return self.k("q")

    @property
    def events(self) -> str:
        return self.k("ev")

    @property
    def sessions(self) -> str:
        return self.k("sessions")

    @property
    def workers(self) -> str:
        return self.k("workers")

    def session(self, run_id: str) -> str:
        return self.k("s", run_id)

    def lease(self, run_id: str) -> str:
        return self.k("lease", run_id)

    def journal(self, run_id: str) -> str:
        return self.k("j", run_id)

    def control(self, run_id: str) -> str:
        return self.k("ctl", run_id)

    def worker(self, name: str) -> str:
        return self.k("w", name)

    def limiter(self, name: str) -> str:
        return self.k("rl", name)

    def breaker(self, name: str) -> str:
        return self.k("cb", name)

    def cache_entry(self, key: str) -> str:
        return self.k("cache", "e", key)

    def cache_material(self, key: str) -> str:
        return self.k("cache", "m", key)

    @property
    def cache_lru(self) -> str:
        return self.k("cache", "lru")

    @property
    def cache_size(self) -> str:
        return self.k("cache", "size")

    def budget_day(self, day: str) -> str:
        return self.k("budget", "d", day)

    def budget_month(self, month: str) -> str:
        return self.k("budget", "m", month)

    def budget_session(self, run_id: str) -> str:
        return self.k("budget", "s", run_id)


def periods(epoch: float) -> tuple[str, str]:
    """The UTC day (``2026-11-30``) and month (``2026-11``) of an epoch time."""
    t = _dt.datetime.fromtimestamp(epoch, _dt.UTC)
    return t.strftime("%Y-%m-%d"), t.strftime("%Y-%m")
