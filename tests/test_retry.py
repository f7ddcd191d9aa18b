"""Backoff math: full-jitter bounds and distribution, retry-after in every form, and which
failures are retried at all. Pure: seeded randomness, explicit clocks."""

from __future__ import annotations

import email.utils
import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runtime.errors import (
    RETRYABLE,
    ErrorKind,
    ProviderError,
    error_from_response,
    parse_retry_after,
)
from runtime.resilience.retry import RetryPolicy

DRAWS = 20_000


def _error(kind: ErrorKind, retry_after: float | None = None) -> ProviderError:
    return ProviderError(kind, "boom", provider="main", retry_after=retry_after)


@given(base=st.floats(0.001, 10.0), top=st.floats(0.001, 120.0), attempt=st.integers(1, 40))
def test_ceiling_is_exponential_and_capped(base: float, top: float, attempt: int) -> None:
    """The ceiling doubles per attempt from base_delay and never passes max_delay."""
    policy = RetryPolicy(base_delay=base, max_delay=top)
    ceiling = policy.ceiling(attempt)
    assert 0.0 < ceiling <= top
    assert ceiling == pytest.approx(min(top, base * 2 ** (attempt - 1)))
    assert policy.ceiling(attempt + 1) >= ceiling


@given(attempt=st.integers(1, 30), seed=st.integers(0, 2**32))
def test_delay_stays_within_zero_and_the_ceiling(attempt: int, seed: int) -> None:
    """Every jittered delay lies in [0, ceiling(attempt)]."""
    policy = RetryPolicy(base_delay=0.5, max_delay=30.0)
    rng = random.Random(seed)
    for _ in range(50):
        assert 0.0 <= policy.delay(attempt, rng=rng) <= policy.ceiling(attempt)


@pytest.mark.parametrize("attempt", [1, 3, 8])
def test_full_jitter_is_uniform_on_zero_to_ceiling(attempt: int) -> None:
    """Over many seeded draws: mean near ceiling/2, spread of a uniform law, and the empirical
    distribution within the Kolmogorov-Smirnov bound of uniform(0, ceiling)."""
    policy = RetryPolicy(base_delay=0.5, max_delay=30.0)
    ceiling = policy.ceiling(attempt)
    rng = random.Random(1234 + attempt)
    draws = sorted(policy.delay(attempt, rng=rng) for _ in range(DRAWS))
    assert draws[0] >= 0.0 and draws[-1] <= ceiling
    mean = sum(draws) / DRAWS
    sigma = ceiling / math.sqrt(12)  # standard deviation of uniform(0, c)
    assert abs(mean - ceiling / 2) < 5 * sigma / math.sqrt(DRAWS)
    var = sum((d - mean) ** 2 for d in draws) / (DRAWS - 1)
    assert math.sqrt(var) == pytest.approx(sigma, rel=0.03)
    # KS statistic against the uniform CDF; 1.95/sqrt(n) is the 0.1% critical value.
    d_stat = max(max((i + 1) / DRAWS - x / ceiling, x / ceiling - i / DRAWS)
                 for i, x in enumerate(draws))
    assert d_stat < 1.95 / math.sqrt(DRAWS)
    # and it is really jitter, not a constant: the draws cover the whole range
    assert draws[DRAWS // 100] < 0.05 * ceiling and draws[-DRAWS // 100] > 0.95 * ceiling


def test_ks_check_would_catch_a_skewed_delay() -> None:
    """The uniformity check is not vacuous: a delay skewed toward 0 fails it."""
    rng = random.Random(7)
    draws = sorted(rng.random() ** 2 for _ in range(DRAWS))
    d_stat = max(max((i + 1) / DRAWS - x, x - i / DRAWS) for i, x in enumerate(draws))
    assert d_stat > 1.95 / math.sqrt(DRAWS)


def test_retry_after_wins_over_jitter_and_is_capped() -> None:
    """A provider's retry-after is used as is, never negative, and capped at max_wait."""
    policy = RetryPolicy(base_delay=0.5, max_delay=30.0, max_wait=300.0)
    rng = random.Random(0)
    assert policy.delay(1, _error(ErrorKind.RATE_LIMITED, 42.0), rng=rng) == 42.0
    assert policy.delay(9, _error(ErrorKind.RATE_LIMITED, 0.25), rng=rng) == 0.25
    assert policy.delay(1, _error(ErrorKind.OVERLOADED, 86_400.0), rng=rng) == 300.0
    assert policy.delay(1, _error(ErrorKind.RATE_LIMITED, -5.0), rng=rng) == 0.0
    without = policy.delay(1, _error(ErrorKind.RATE_LIMITED), rng=rng)
    assert 0.0 <= without <= policy.ceiling(1)


def test_retry_after_seconds() -> None:
    """retry-after in seconds, any case, surrounding space tolerated."""
    assert parse_retry_after({"Retry-After": " 17 "}) == 17.0
    assert parse_retry_after({"retry-after": "2.5"}) == 2.5
    assert parse_retry_after({"retry-after": "-3"}) == 0.0
    assert parse_retry_after({}) is None


def test_retry_after_http_date() -> None:
    """retry-after as an HTTP date is the seconds from now until then."""
    now = 1_700_000_000.0
    header = email.utils.formatdate(now + 90, usegmt=True)
    assert parse_retry_after({"retry-after": header}, now=now) == pytest.approx(90.0)
    past = email.utils.formatdate(now - 90, usegmt=True)
    assert parse_retry_after({"retry-after": past}, now=now) == 0.0
    assert parse_retry_after({"retry-after": "next tuesday"}, now=now) is None


def test_retry_after_ms_wins() -> None:
    """retry-after-ms is milliseconds and takes precedence over retry-after."""
    assert parse_retry_after({"retry-after-ms": "1500", "retry-after": "60"}) == 1.5
    assert parse_retry_after({"retry-after-ms": "oops", "retry-after": "60"}) == 60.0


@pytest.mark.parametrize(
    ("headers", "expected"),
    [({"retry-after": "12"}, 12.0), ({"retry-after-ms": "250"}, 0.25), ({}, None)],
)
def test_delay_from_a_429_response(headers: dict[str, str], expected: float | None) -> None:
    """A 429 built from a real response carries its retry-after into the chosen delay."""
    err = error_from_response(429, {"content-type": "application/json", **headers},
                              b'{"error": {"message": "slow down", "code": "rate_limit_exceeded"}}')
    assert err.kind is ErrorKind.RATE_LIMITED
    policy = RetryPolicy()
    delay = policy.delay(2, err, rng=random.Random(3))
    if expected is None:
        assert 0.0 <= delay <= policy.ceiling(2)
    else:
        assert delay == pytest.approx(expected)


@pytest.mark.parametrize("kind", sorted(RETRYABLE))
def test_retryable_kinds_are_retried_until_max_attempts(kind: ErrorKind) -> None:
    """Retryable failures are retried on every attempt before the last, never after it."""
    policy = RetryPolicy(max_attempts=4)
    assert [policy.should_retry(a, _error(kind)) for a in range(1, 7)] == [
        True, True, True, False, False, False]


@pytest.mark.parametrize("kind", sorted(set(ErrorKind) - RETRYABLE))
def test_other_kinds_are_never_retried(kind: ErrorKind) -> None:
    """auth, bad_request, context_length and every other non-retryable kind: no retry at all."""
    policy = RetryPolicy(max_attempts=100)
    assert not any(policy.should_retry(a, _error(kind)) for a in range(1, 10))


def test_the_named_fatal_kinds_are_not_retryable() -> None:
    """The issue's explicit list: auth, bad_request and context_length are never retried."""
    for kind in (ErrorKind.AUTH, ErrorKind.BAD_REQUEST, ErrorKind.CONTEXT_LENGTH):
        assert kind not in RETRYABLE
        assert not RetryPolicy().should_retry(1, _error(kind, retry_after=1.0))
