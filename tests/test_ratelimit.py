"""Token buckets and the rate limiter: pure arithmetic on explicit ``now`` values, plus the
trio-side ``acquire`` under a virtual clock."""

from __future__ import annotations

import copy
import datetime as dt
import itertools
import math
import subprocess
import sys

import httpx
import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.resilience.ratelimit import (
    RateLimiter,
    TokenBucket,
    acquire,
    clear_registry,
    limiter_key,
    parse_duration,
    shared_limiter,
)

WINDOW = 60.0


def _rfc3339(wall: float) -> str:
    return dt.datetime.fromtimestamp(wall, dt.UTC).isoformat().replace("+00:00", "Z")


def _max_in_window(grants: list[tuple[float, float]], window: float) -> float:
    """The largest total granted in any closed window [t, t + window] (worst case starts at a grant)."""
    best = 0.0
    for i, (start, _) in enumerate(grants):
        total = sum(n for t, n in grants[i:] if t <= start + window)
        best = max(best, total)
    return best


def test_pure_modules_do_not_import_trio() -> None:
    """The rate limiter and the breaker import without pulling trio in."""
    code = "import sys, runtime.resilience.ratelimit, runtime.resilience.breaker; print('trio' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("6m0s", 360.0), ("1.5s", 1.5), ("20ms", 0.02), ("1h2m3s", 3723.0), ("0s", 0.0),
     ("2", 2.0), ("0.25", 0.25), ("1m30.5s", 90.5), ("1d", 86400.0), ("150µs", 150e-6),
     ("150us", 150e-6), ("3ns", 3e-9), ("2h0m0.5s", 7200.5)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    """OpenAI reset durations and bare numbers become seconds."""
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "soon", "5x", "1m garbage", "s", "-", "inf", "nan", "1e999",
                                  "5s6m", "1.2.3s"])
def test_parse_duration_rejects_garbage(text: str) -> None:
    """Anything that is not a duration is None, never a guess."""
    assert parse_duration(text) is None


def test_bucket_grants_then_names_the_wait() -> None:
    """A full bucket grants; an empty one says how long until it refills enough."""
    bucket = TokenBucket(10, 2.0)
    assert bucket.try_take(10, now=100.0) == 0.0
    wait = bucket.try_take(4, now=100.0)
    assert wait == pytest.approx(4 / 2.0)
    assert bucket.level(100.0) == 0.0  # the refusal took nothing
    assert bucket.try_take(4, now=100.0 + wait) == 0.0
    assert bucket.level(100.0 + wait) == pytest.approx(0.0, abs=1e-9)


def test_bucket_is_deterministic_and_ignores_time_going_back() -> None:
    """Same calls, same answers; a clock going backwards refills nothing."""
    calls = [(3.0, 0.0), (5.0, 0.5), (4.0, 0.2), (6.0, 3.0), (1.0, 2.0)]
    a, b = TokenBucket(8, 1.0), TokenBucket(8, 1.0)
    assert [a.try_take(n, t) for n, t in calls] == [b.try_take(n, t) for n, t in calls]
    c = TokenBucket(8, 1.0)
    c.try_take(8, 10.0)
    assert c.try_take(1, 5.0) > 0.0
    assert c.level(9.0) == 0.0


def test_bucket_rejects_more_than_its_capacity() -> None:
    """A take that can never be granted raises instead of waiting forever."""
    with pytest.raises(ValueError, match="cannot take"):
        TokenBucket(5, 1.0).try_take(6, 0.0)


requests_st = st.lists(
    st.tuples(st.floats(0.0, 30.0, allow_nan=False), st.floats(0.0, 1.0, allow_nan=False)),
    min_size=1, max_size=120,
)


@settings(max_examples=200, deadline=None)
@given(limit=st.integers(1, 5000), reqs=requests_st)
def test_bucket_never_grants_more_than_the_limit_in_any_window(
        limit: int, reqs: list[tuple[float, float]]) -> None:
    """Any 60 s window grants at most capacity + rate * 60; waits are never negative and
    waiting the returned time is enough."""
    rate = limit / 60.0
    bucket = TokenBucket(limit, rate)
    now, grants = 0.0, []
    for gap, fraction in reqs:
        now += gap
        n = fraction * limit
        wait = bucket.try_take(n, now)
        assert wait >= 0.0
        assert bucket.level(now) >= 0.0
        if wait == 0.0:
            grants.append((now, n))
        else:
            probe = copy.copy(bucket)  # waiting the returned time is enough (on a copy)
            assert probe.try_take(n, now + wait) == 0.0
    bound = limit + rate * WINDOW
    assert _max_in_window(grants, WINDOW) <= bound * (1 + 1e-9)


@settings(max_examples=100, deadline=None)
@given(rpm=st.integers(1, 300), tpm=st.integers(100, 100_000),
       reqs=st.lists(st.tuples(st.floats(0.0, 20.0, allow_nan=False),
                               st.floats(0.0, 1.0, allow_nan=False)), min_size=1, max_size=120))
def test_limiter_never_exceeds_either_limit_in_any_window(
        rpm: int, tpm: int, reqs: list[tuple[float, float]]) -> None:
    """Requests and tokens granted by reserve stay within their bounds in every 60 s window."""
    limiter = RateLimiter(rpm, tpm)
    now, req_grants, tok_grants = 0.0, [], []
    for gap, fraction in reqs:
        now += gap
        n = fraction * tpm
        if limiter.reserve(n, now) == 0.0:
            req_grants.append((now, 1.0))
            tok_grants.append((now, n))
    assert _max_in_window(req_grants, WINDOW) <= 2 * rpm * (1 + 1e-9)
    assert _max_in_window(tok_grants, WINDOW) <= 2 * tpm * (1 + 1e-9)


def test_greedy_client_reaches_the_bound_exactly() -> None:
    """The bound is tight: a client taking 1 whenever allowed gets capacity + rate * 60."""
    limit = 120
    bucket = TokenBucket(limit, limit / 60.0)
    now, grants = 0.0, []
    while now <= WINDOW + 1e-9:
        wait = bucket.try_take(1, now)
        if wait == 0.0:
            grants.append((now, 1.0))
        else:
            now += wait
    assert len(grants) == pytest.approx(limit + limit / 60.0 * WINDOW, abs=1)


def test_reserve_is_all_or_nothing() -> None:
    """When the request bucket says wait, no tokens are taken either, and the wait is the
    larger of the two."""
    limiter = RateLimiter(requests_per_minute=2, tokens_per_minute=600)
    assert limiter.reserve(100, 0.0) == 0.0
    assert limiter.reserve(100, 0.0) == 0.0
    before = limiter.tokens.level(0.0)
    wait = limiter.reserve(100, 0.0)
    assert wait == pytest.approx(1 / (2 / 60.0))
    assert limiter.tokens.level(0.0) == before
    assert limiter.requests.level(0.0) == pytest.approx(0.0)
    # now the tokens are the short side: 400 left, 10 per second
    limiter2 = RateLimiter(requests_per_minute=100, tokens_per_minute=600)
    limiter2.reserve(500, 0.0)
    assert limiter2.reserve(300, 0.0) == pytest.approx((300 - 100) / 10.0)


def test_unlimited_dimensions_never_wait() -> None:
    """A limiter without limits grants everything at once."""
    limiter = RateLimiter(None, None)
    assert all(limiter.reserve(10**9, 0.0) == 0.0 for _ in range(1000))


def test_estimate_above_capacity_waits_for_a_full_bucket() -> None:
    """A request larger than a minute's tokens is clamped: it waits for a full bucket."""
    limiter = RateLimiter(None, 600)
    assert limiter.reserve(10, 0.0) == 0.0
    wait = limiter.reserve(5000, 0.0)
    assert wait == pytest.approx(10 / 10.0)
    assert limiter.reserve(5000, wait) == 0.0
    assert limiter.tokens.level(wait) == pytest.approx(0.0, abs=1e-6)


def test_settle_credits_back_an_overestimate() -> None:
    """Tokens reserved but not used come back at once."""
    limiter = RateLimiter(None, 600)
    limiter.reserve(600, 0.0)
    assert limiter.reserve(300, 0.0) > 0.0
    limiter.settle(200, 0.0, estimate=600)
    assert limiter.reserve(300, 0.0) == 0.0
    assert limiter.tokens.level(0.0) == pytest.approx(100.0)


def test_settle_debits_an_underestimate() -> None:
    """Tokens used beyond the estimate are owed: the next request waits for the debt too."""
    limiter = RateLimiter(None, 600)
    limiter.reserve(600, 0.0)
    limiter.settle(900, 0.0, estimate=600)
    assert limiter.tokens.level(0.0) == pytest.approx(-300.0)
    assert limiter.reserve(100, 0.0) == pytest.approx((300 + 100) / 10.0)


def test_openai_headers_cap_requests_until_reset() -> None:
    """x-ratelimit-remaining-requests: 0 with a reset of 1.5s makes the next request wait 1.5 s."""
    limiter = RateLimiter(100, 100_000)
    limiter.observe_headers({"X-RateLimit-Remaining-Requests": "0",
                             "X-RateLimit-Reset-Requests": "1.5s"}, now=10.0)
    assert limiter.reserve(1, 10.0) == pytest.approx(1.5)
    assert limiter.reserve(1, 10.0 + 0.75) == pytest.approx(0.75)
    assert limiter.reserve(1, 11.5) == 0.0


def test_openai_headers_cap_tokens_and_count_down() -> None:
    """What the provider says remains is spent by our own requests until its reset."""
    limiter = RateLimiter(1000, 1_000_000)
    limiter.observe_headers(httpx.Headers({"x-ratelimit-remaining-tokens": "100",
                                           "x-ratelimit-reset-tokens": "6m0s"}), now=0.0)
    assert limiter.reserve(500, 0.0) == pytest.approx(360.0)
    assert limiter.reserve(60, 1.0) == 0.0
    assert limiter.reserve(60, 2.0) == pytest.approx(358.0)
    for t in (2.0, 100.0, 359.9):
        assert limiter.tokens.level(t) <= 40.0 + 1e-9
    assert limiter.reserve(60, 360.0) == 0.0


def test_anthropic_headers_with_rfc3339_reset() -> None:
    """anthropic-ratelimit-*-reset timestamps are turned into delays via the wall clock."""
    wall = 1_700_000_000.0
    limiter = RateLimiter(50, 80_000)
    limiter.observe_headers({
        "anthropic-ratelimit-requests-remaining": "0",
        "anthropic-ratelimit-requests-reset": _rfc3339(wall + 20),
        "anthropic-ratelimit-tokens-remaining": "70000",
        "anthropic-ratelimit-tokens-reset": _rfc3339(wall + 5),
        "anthropic-ratelimit-input-tokens-remaining": "30000",
        "anthropic-ratelimit-input-tokens-reset": _rfc3339(wall + 8),
        "anthropic-ratelimit-output-tokens-remaining": "9000",
        "anthropic-ratelimit-output-tokens-reset": _rfc3339(wall + 3),
    }, now=500.0, wall=wall)
    assert limiter.reserve(1, 500.0) == pytest.approx(20.0)
    # the tightest token figure (output: 9000 until +3 s) bounds the token bucket
    assert limiter.tokens.level(500.0) == pytest.approx(9000.0)
    assert limiter.tokens.wait_for(10_000, 500.0) == pytest.approx(3.0)
    assert limiter.tokens.level(503.0) > 9000.0


def test_headers_never_raise_our_own_level() -> None:
    """A provider saying more remains than our configured limit allows changes nothing."""
    limiter = RateLimiter(10, 1000)
    limiter.reserve(1000, 0.0)
    limiter.observe_headers({"x-ratelimit-remaining-tokens": "999999",
                             "x-ratelimit-reset-tokens": "1s"}, now=0.0)
    assert limiter.tokens.level(0.0) == pytest.approx(0.0)


def test_headers_without_reset_clamp_once() -> None:
    """Without a reset time the level is clamped now, then refills at our own rate."""
    limiter = RateLimiter(None, 600)
    limiter.observe_headers({"x-ratelimit-remaining-tokens": "50"}, now=0.0)
    assert limiter.tokens.level(0.0) == pytest.approx(50.0)
    assert limiter.tokens.level(1.0) == pytest.approx(60.0)


def test_unparsable_headers_are_ignored() -> None:
    """Garbage values leave the limiter as it was."""
    limiter = RateLimiter(10, 1000)
    limiter.observe_headers({"x-ratelimit-remaining-tokens": "lots",
                             "anthropic-ratelimit-tokens-remaining": "nan",
                             "x-ratelimit-remaining-requests": "3",
                             "x-ratelimit-reset-requests": "whenever",
                             "content-type": "application/json"}, now=0.0)
    assert limiter.tokens.level(0.0) == pytest.approx(1000.0)
    assert limiter.requests.level(0.0) == pytest.approx(3.0)
    assert limiter.requests.level(60.0) == pytest.approx(10.0)


@settings(max_examples=100, deadline=None)
@given(remaining=st.integers(0, 500), reset=st.floats(0.1, 120.0),
       takes=st.lists(st.tuples(st.floats(0.0, 1.0), st.integers(1, 100)), max_size=40))
def test_level_never_exceeds_what_the_provider_said(
        remaining: int, reset: float, takes: list[tuple[float, int]]) -> None:
    """Until the reset, the bucket never holds more than the remaining figure minus what we took."""
    limiter = RateLimiter(None, 10_000)
    limiter.observe_headers({"x-ratelimit-remaining-tokens": str(remaining),
                             "x-ratelimit-reset-tokens": f"{reset}s"}, now=0.0)
    now, taken = 0.0, 0
    for gap, n in takes:
        now += gap
        if now >= reset:
            break
        if limiter.reserve(n, now) == 0.0:
            taken += n
        assert limiter.tokens.level(now) <= max(0, remaining - taken) + 1e-9
    assert taken <= remaining


def test_shared_limiter_is_one_per_key() -> None:
    """Every session asking for the same provider key gets the same limiter."""
    clear_registry()
    key_a = limiter_key("main", "https://api.example.com/v1/", "sk-secret-a")
    key_b = limiter_key("main", "https://api.example.com/v1", "sk-secret-b")
    assert "sk-secret" not in key_a
    assert key_a != key_b
    assert key_a == limiter_key("main", "https://api.example.com/v1", "sk-secret-a")
    first = shared_limiter(key_a, 10, 1000)
    assert shared_limiter(key_a, 99, 9999) is first
    assert shared_limiter(key_b, 10, 1000) is not first
    clear_registry()
    assert shared_limiter(key_a, 10, 1000) is not first


async def test_acquire_waits_the_computed_time(autojump_clock: trio.testing.MockClock) -> None:
    """acquire sleeps exactly what the limiter asked for, then returns granted."""
    limiter = RateLimiter(requests_per_minute=2, tokens_per_minute=None)
    start = trio.current_time()
    assert await acquire(limiter, 0) == 0.0
    assert await acquire(limiter, 0) == 0.0
    expected = limiter.requests.wait_for(1, start)
    assert expected == pytest.approx(30.0)
    waited = await acquire(limiter, 0)
    assert waited == pytest.approx(expected)
    assert trio.current_time() - start == pytest.approx(expected)


async def test_concurrent_acquires_are_spaced_by_the_rate(
        autojump_clock: trio.testing.MockClock) -> None:
    """Many tasks sharing one limiter are granted one by one at the refill rate, none fails."""
    limiter = RateLimiter(requests_per_minute=6, tokens_per_minute=None)
    for _ in range(6):
        limiter.reserve(0, trio.current_time())
    start = trio.current_time()
    granted: list[float] = []

    async def one() -> None:
        await acquire(limiter, 0)
        granted.append(trio.current_time() - start)

    with trio.fail_after(600):
        async with trio.open_nursery() as nursery:
            for _ in range(5):
                nursery.start_soon(one)
    assert len(granted) == 5
    granted.sort()
    assert granted[0] == pytest.approx(10.0)
    assert all(b - a >= 10.0 - 1e-6 for a, b in itertools.pairwise(granted))


async def test_acquire_with_an_injected_clock() -> None:
    """clock and sleep can be swapped: acquire sleeps the limiter's waits and sums them."""
    limiter = RateLimiter(None, 60)
    limiter.reserve(60, 0.0)
    fake_now = [0.0]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        fake_now[0] += seconds

    waited = await acquire(limiter, 30, clock=lambda: fake_now[0], sleep=sleep)
    assert slept == [pytest.approx(30.0)]
    assert waited == pytest.approx(30.0)
    assert not math.isnan(limiter.tokens.level(fake_now[0]))


def test_a_429_hold_stops_every_request_until_its_retry_after() -> None:
    """``hold`` (a 429's retry-after) makes the next reservation wait exactly until then,
    also for a limiter with no configured limit; a shorter later hold does not shorten it."""
    for limiter in (RateLimiter(600, None), RateLimiter(None, None)):
        limiter.hold(20.0, 100.0)
        assert limiter.reserve(10, 100.0) == pytest.approx(20.0)
        limiter.hold(5.0, 101.0)
        assert limiter.reserve(10, 101.0) == pytest.approx(19.0)
        assert limiter.reserve(10, 120.0) == 0.0
        limiter.hold(float("inf"), 121.0)  # nonsense is ignored
        limiter.hold(-1.0, 121.0)
        assert limiter.reserve(10, 121.0) == 0.0


def test_a_limiter_without_token_headers_paces_requests_only() -> None:
    """``token_headers=False`` (a provider with no configured limit): the provider's request
    count still holds requests back, its token counts do not."""
    headers = {"anthropic-ratelimit-output-tokens-remaining": "0",
               "anthropic-ratelimit-output-tokens-reset": "2026-11-23T19:00:50Z"}
    wall = 1_795_460_400.0  # 2026-11-23T19:00:00Z
    paced = RateLimiter(None, None, token_headers=False)
    paced.observe_headers(headers, 0.0, wall=wall)
    assert paced.reserve(5000, 0.0) == 0.0
    strict = RateLimiter(None, None)
    strict.observe_headers(headers, 0.0, wall=wall)
    assert strict.reserve(5000, 0.0) == pytest.approx(50.0)
    paced.observe_headers({"x-ratelimit-remaining-requests": "0",
                           "x-ratelimit-reset-requests": "20s"}, 1.0)
    assert paced.reserve(10, 1.0) == pytest.approx(20.0)
