"""Resilience (pure, plus small state): what keeps a session alive through a flaky provider.

* ``retry``: backoff with full jitter, honouring ``retry-after``; which failures are retried;
* ``breaker``: the circuit breaker state machine, and the verdict table saying which outcome
  of a call counts for or against a provider's health;
* ``ratelimit``: token buckets for requests and tokens per minute, adapted to the provider's
  rate-limit headers and ``retry-after``;
* ``shared``: the process-wide registry through which every session of the process shares
  one breaker and one limiter per provider.

Nothing here does I/O or imports trio at import time (``ratelimit.acquire`` imports it
lazily), so the whole package is tested with plain functions and explicit clocks.
"""

from .breaker import BreakerState, CircuitBreaker, Verdict, shared_breaker, verdict_of
from .ratelimit import RateLimiter, TokenBucket, acquire, limiter_key, shared_limiter
from .retry import RetryPolicy
from .shared import SharedRegistry

__all__ = [
    "BreakerState",
    "CircuitBreaker",
    "RateLimiter",
    "RetryPolicy",
    "SharedRegistry",
    "TokenBucket",
    "Verdict",
    "acquire",
    "limiter_key",
    "shared_breaker",
    "shared_limiter",
    "verdict_of",
]
