"""Totals of a session per provider, and the numbers of ``summary.json`` (pure)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import attrs

from .model import Usage

__all__ = ["Accounts", "ProviderAccount", "percentile"]


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
        }


@attrs.define
class Accounts:
    providers: dict[str, ProviderAccount] = attrs.field(factory=dict)
    tool_calls: int = 0
    tool_rejected: int = 0
    tool_errors: int = 0

    def of(self, name: str) -> ProviderAccount:
        acc = self.providers.get(name)
        if acc is None:
            acc = self.providers[name] = ProviderAccount()
        return acc

    @property
    def usage(self) -> Usage:
        total = Usage()
        for a in self.providers.values():
            total = total + a.usage
        return total

    @property
    def cost_usd(self) -> float:
        return sum(a.cost_usd for a in self.providers.values())

    def totals(self) -> dict[str, Any]:
        u = self.usage
        return {"input_tokens": u.input_tokens, "output_tokens": u.output_tokens,
                "cache_read_tokens": u.cache_read_tokens,
                "cache_write_tokens": u.cache_write_tokens,
                "reasoning_tokens": u.reasoning_tokens, "total_tokens": u.total_tokens,
                "cost_usd": round(self.cost_usd, 8)}
