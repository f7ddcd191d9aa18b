"""Totals of a session per provider, and the numbers of ``summary.json`` (pure).

The accounts change in one way only: :meth:`Accounts.apply` folds one transcript record into
them. The live session applies every record it emits, and a resumed session applies the
records of its journal, so a summary after a resume counts everything, cumulatively.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import attrs

from .model import Usage
from .session.records import (
    AssistantRecord,
    CacheRecord,
    ProviderErrorRecord,
    RecordBase,
    RequestRecord,
    SessionStart,
    ToolResultRecord,
    UsageRecord,
    WarningRecord,
)

__all__ = ["Accounts", "PoolAccount", "ProviderAccount", "percentile"]


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile by linear interpolation between closest ranks (None if empty)."""
    if not values:
        return None
    data = sorted(values)
    pos = (len(data) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(data) - 1)
    return round(data[lo] + (data[hi] - data[lo]) * (pos - lo), 6)


@attrs.define
class PoolAccount:
    """The attempts of one provider that got a response head, by how they got their
    connection: ``requests`` = ``new_connections`` + ``reused_connections``; ``waits`` of
    them found every connection of the pool busy and waited ``wait_s`` in all."""

    requests: int = 0
    new_connections: int = 0
    reused_connections: int = 0
    waits: int = 0
    wait_s: float = 0.0

    def add(self, connection: str | None, wait: float | None) -> None:
        if connection is None:
            return
        self.requests += 1
        self.new_connections += connection == "new"
        self.reused_connections += connection != "new"
        if wait is not None:
            self.waits += 1
            self.wait_s += wait

    def to_dict(self) -> dict[str, Any]:
        return {"requests": self.requests, "new_connections": self.new_connections,
                "reused_connections": self.reused_connections, "waits": self.waits,
                "wait_s": round(self.wait_s, 6)}


@attrs.define
class ProviderAccount:
    requests: int = 0      # turns sent to this provider
    attempts: int = 0      # HTTP attempts (retries included)
    retries: int = 0
    failures: Counter[str] = attrs.field(factory=Counter)
    streamed: int = 0
    streamed_ok: int = 0
    fallbacks_taken: int = 0
    usage: Usage = attrs.field(factory=Usage)
    cost_usd: float = 0.0
    unpriced_turns: int = 0
    ttfts: list[float] = attrs.field(factory=list)
    latencies: list[float] = attrs.field(factory=list)
    cache_hits: int = 0
    cache_misses: int = 0
    pool: PoolAccount = attrs.field(factory=PoolAccount)
    last_stream: bool = attrs.field(default=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        u = self.usage
        return {
            "requests": self.requests, "attempts": self.attempts, "retries": self.retries,
            "failures": dict(self.failures),
            "streaming_success_ratio": (self.streamed_ok / self.streamed) if self.streamed else None,
            "fallbacks_taken": self.fallbacks_taken,
            "tokens": {"input": u.input_tokens, "output": u.output_tokens,
                       "cache_read": u.cache_read_tokens, "cache_write": u.cache_write_tokens,
                       "reasoning": u.reasoning_tokens, "total": u.total_tokens},
            "cost_usd": round(self.cost_usd, 8),
            "unpriced_turns": self.unpriced_turns,
            "ttft_s": {"p50": percentile(self.ttfts, 50), "p95": percentile(self.ttfts, 95)},
            "latency_s": {"p50": percentile(self.latencies, 50),
                          "p95": percentile(self.latencies, 95)},
            "cache": {"hits": self.cache_hits, "misses": self.cache_misses},
            "pool": self.pool.to_dict(),
        }


@attrs.define
class Accounts:
    providers: dict[str, ProviderAccount] = attrs.field(factory=dict)
    tool_calls: int = 0
    tool_rejected: int = 0
    tool_errors: int = 0
    runs: int = 0
    usage: Usage = attrs.field(factory=Usage)   # every provider's, kept as records arrive
    cost_usd: float = 0.0

    def of(self, name: str) -> ProviderAccount:
        acc = self.providers.get(name)
        if acc is None:
            acc = self.providers[name] = ProviderAccount()
        return acc

    def apply(self, rec: RecordBase) -> None:
        """Fold one transcript record into the totals."""
        t = type(rec)
        if t is UsageRecord:
            assert isinstance(rec, UsageRecord)
            if rec.cached:
                return
            acc = self.of(rec.provider)
            u = Usage(rec.input_tokens, rec.output_tokens, rec.cache_read_tokens,
                      rec.cache_write_tokens, rec.reasoning_tokens)
            acc.usage = acc.usage + u
            self.usage = self.usage + u
            if rec.cost_usd is None:
                acc.unpriced_turns += 1
            else:
                acc.cost_usd += rec.cost_usd
                self.cost_usd += rec.cost_usd
        elif t is RequestRecord:
            assert isinstance(rec, RequestRecord)
            acc = self.of(rec.provider)
            acc.attempts += 1
            acc.requests += rec.attempt == 1
            acc.retries += rec.attempt > 1
            acc.streamed += rec.stream
            acc.last_stream = rec.stream
        elif t is AssistantRecord:
            assert isinstance(rec, AssistantRecord)
            if rec.connection is not None:
                self.of(rec.provider).pool.add(rec.connection, rec.pool_wait)
            if rec.cached or rec.status != "complete":
                return
            acc = self.of(rec.provider)
            acc.streamed_ok += acc.last_stream
            acc.latencies.append(rec.duration)
            if rec.ttft is not None:
                acc.ttfts.append(rec.ttft)
        elif t is ProviderErrorRecord:
            assert isinstance(rec, ProviderErrorRecord)
            acc = self.of(rec.provider)
            acc.failures[rec.kind] += 1
            acc.pool.add(rec.connection, rec.pool_wait)
        elif t is ToolResultRecord:
            assert isinstance(rec, ToolResultRecord)
            self.tool_calls += 1
            self.tool_rejected += rec.rejected
            self.tool_errors += not rec.ok and not rec.rejected
        elif t is CacheRecord:
            assert isinstance(rec, CacheRecord)
            acc = self.of(rec.provider)
            acc.cache_hits += rec.outcome == "hit"
            acc.cache_misses += rec.outcome == "miss"
        elif t is WarningRecord:
            assert isinstance(rec, WarningRecord)
            if rec.code == "failover" and rec.provider:
                self.of(rec.provider).fallbacks_taken += 1
        elif t is SessionStart:
            self.runs += 1

    def totals(self) -> dict[str, Any]:
        u = self.usage
        return {"input_tokens": u.input_tokens, "output_tokens": u.output_tokens,
                "cache_read_tokens": u.cache_read_tokens,
                "cache_write_tokens": u.cache_write_tokens,
                "reasoning_tokens": u.reasoning_tokens, "total_tokens": u.total_tokens,
                "cost_usd": round(self.cost_usd, 8)}
