"""The circuit breaker state machine: every transition, probe exclusivity and the cool-down,
all pure with explicit ``now`` values."""

from __future__ import annotations

import math

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from runtime.errors import RETRYABLE, ErrorKind, ProviderError
from runtime.resilience.breaker import (
    TRANSITIONS,
    VERDICTS,
    BreakerEvent,
    BreakerState,
    CircuitBreaker,
    IllegalTransition,
    Verdict,
    clear_registry,
    seconds_until,
    shared_breaker,
    verdict_of,
)

CLOSED, OPEN, HALF_OPEN = BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN


def _opened(threshold: int = 3, cooldown: float = 10.0, at: float = 0.0) -> CircuitBreaker:
    breaker = CircuitBreaker(threshold, cooldown)
    for _ in range(threshold):
        breaker.record_failure(at)
    assert breaker.state(at) is OPEN
    return breaker


def test_closed_stays_closed_below_the_threshold() -> None:
    """Fewer than N consecutive failures keep the circuit closed and calls allowed."""
    breaker = CircuitBreaker(failure_threshold=3, cooldown=10.0)
    breaker.record_failure(0.0)
    breaker.record_failure(1.0)
    assert breaker.state(1.0) is CLOSED
    assert breaker.allow(1.0)
    assert breaker.retry_in(1.0) == 0.0
    assert breaker.consecutive_failures == 2


def test_success_resets_the_consecutive_count() -> None:
    """Failures must be consecutive: a success in between starts the count again."""
    breaker = CircuitBreaker(failure_threshold=3, cooldown=10.0)
    for t in range(10):
        breaker.record_failure(float(t))
        breaker.record_failure(float(t))
        breaker.record_success(float(t))
    assert breaker.state(10.0) is CLOSED
    assert breaker.consecutive_failures == 0


def test_closed_to_open_after_n_consecutive_failures() -> None:
    """The N-th consecutive failure opens the circuit: calls refused for the cool-down."""
    breaker = CircuitBreaker(failure_threshold=3, cooldown=10.0)
    for t in (0.0, 1.0, 2.0):
        breaker.record_failure(t)
    assert breaker.state(2.0) is OPEN
    assert not breaker.allow(2.0)
    assert breaker.retry_in(2.0) == pytest.approx(10.0)
    assert breaker.retry_in(7.0) == pytest.approx(5.0)
    assert not breaker.allow(11.999)


def test_open_to_half_open_after_the_cooldown() -> None:
    """Once the cool-down has elapsed the state reads half_open and a probe is allowed."""
    breaker = _opened(cooldown=10.0, at=5.0)
    assert breaker.state(14.999) is OPEN
    assert breaker.state(15.0) is HALF_OPEN
    assert breaker.retry_in(15.0) == 0.0
    assert breaker.allow(15.0)


def test_half_open_allows_one_probe_at_a_time() -> None:
    """While a probe is in flight every other caller is refused."""
    breaker = _opened(cooldown=10.0)
    assert breaker.allow(10.0)
    assert [breaker.allow(10.0 + i / 10) for i in range(20)] == [False] * 20
    assert breaker.state(12.0) is HALF_OPEN
    assert breaker.retry_in(12.0) == pytest.approx(8.0)


def test_probe_success_closes() -> None:
    """The probe's success closes the circuit and resets the count."""
    breaker = _opened(threshold=2, cooldown=10.0)
    assert breaker.allow(10.0)
    breaker.record_success(11.0)
    assert breaker.state(11.0) is CLOSED
    assert breaker.consecutive_failures == 0
    assert breaker.allow(11.0) and breaker.allow(11.0)
    breaker.record_failure(12.0)
    assert breaker.state(12.0) is CLOSED  # a fresh count: one failure is not two


def test_probe_failure_reopens_with_a_fresh_cooldown() -> None:
    """The probe's failure opens the circuit again, the cool-down counted from then."""
    breaker = _opened(cooldown=10.0)
    assert breaker.allow(10.0)
    breaker.record_failure(13.0)
    assert breaker.state(13.0) is OPEN
    assert not breaker.allow(13.0)
    assert breaker.retry_in(13.0) == pytest.approx(10.0)
    assert breaker.state(22.999) is OPEN
    assert breaker.state(23.0) is HALF_OPEN


def test_late_answers_while_open_change_nothing() -> None:
    """Results of calls started before the circuit opened neither close it nor extend it."""
    breaker = _opened(cooldown=10.0, at=0.0)
    breaker.record_success(1.0)
    breaker.record_failure(2.0)
    assert breaker.state(2.0) is OPEN
    assert breaker.retry_in(2.0) == pytest.approx(8.0)


def test_lost_probe_frees_its_slot_after_a_cooldown() -> None:
    """A probe that never reports back (cancelled) does not wedge the breaker half-open."""
    breaker = _opened(cooldown=10.0)
    assert breaker.allow(10.0)
    assert not breaker.allow(19.9)
    assert breaker.allow(20.0)
    assert not breaker.allow(20.0)


def test_transition_table_is_complete_and_strict() -> None:
    """Every state has a row; an event a state has no move for raises naming the state."""
    assert set(TRANSITIONS) == set(BreakerState)
    assert TRANSITIONS[CLOSED][BreakerEvent.TRIP] is OPEN
    assert TRANSITIONS[OPEN][BreakerEvent.COOLDOWN] is HALF_OPEN
    assert TRANSITIONS[HALF_OPEN][BreakerEvent.SUCCESS] is CLOSED
    assert TRANSITIONS[HALF_OPEN][BreakerEvent.FAILURE] is OPEN
    breaker = CircuitBreaker(1, 5.0)
    with pytest.raises(IllegalTransition, match="cooldown in state closed") as info:
        breaker._fire(BreakerEvent.COOLDOWN, 0.0)
    assert info.value.state is CLOSED
    breaker.record_failure(0.0)
    with pytest.raises(IllegalTransition, match="probe in state open"):
        breaker._fire(BreakerEvent.PROBE, 0.0)


@pytest.mark.parametrize(("threshold", "cooldown"), [(0, 1.0), (1, -1.0)])
def test_rejects_nonsense_settings(threshold: int, cooldown: float) -> None:
    """A threshold below 1 or a negative cool-down is refused at construction."""
    with pytest.raises(ValueError):
        CircuitBreaker(threshold, cooldown)


ops = st.lists(st.tuples(st.sampled_from(["allow", "ok", "fail", "release"]),
                         st.floats(0.0, 6.0)), max_size=80)


@settings(max_examples=120, deadline=None)
@given(threshold=st.integers(1, 4), steps=ops)
def test_random_histories_keep_the_invariants(threshold: int,
                                              steps: list[tuple[str, float]]) -> None:
    """Under any history: closed allows everything, open nothing, half_open exactly one
    probe until it reports back, is released (or a cool-down passes); a model of the probe
    slot agrees."""
    cooldown = 5.0
    breaker = CircuitBreaker(threshold, cooldown)
    now = 0.0
    probe_out: float | None = None  # when the outstanding probe was let through
    for op, gap in steps:
        now += gap
        before = breaker.state(now)
        if op == "allow":
            allowed = breaker.allow(now)
            if before is CLOSED:
                assert allowed
            elif before is OPEN:
                assert not allowed
            else:
                slot_free = probe_out is None or now >= probe_out + cooldown
                assert allowed == slot_free
                if allowed:
                    probe_out = now
        elif op == "release":  # the outstanding probe ends saying nothing
            if probe_out is not None:
                breaker.release(now, probe_out)
                if before is HALF_OPEN:
                    probe_out = None
            assert breaker.state(now) is before
        elif op == "ok":
            breaker.record_success(now)
            probe_out = None
            assert breaker.state(now) is (OPEN if before is OPEN else CLOSED)
        else:
            breaker.record_failure(now)
            probe_out = None
            if before is HALF_OPEN:
                assert breaker.state(now) is OPEN
            if before is CLOSED:
                expect = OPEN if breaker.consecutive_failures >= threshold else CLOSED
                assert breaker.state(now) is expect
        state, wait = breaker.state(now), breaker.retry_in(now)
        if state is CLOSED:
            assert wait == 0.0
        elif state is OPEN:
            assert 0.0 < wait <= cooldown + 1e-9
        else:
            assert (wait == 0.0) == (probe_out is None or now >= probe_out + cooldown)


def test_shared_breaker_is_one_per_key() -> None:
    """Every session asking for the same provider key shares one breaker."""
    clear_registry()
    first = shared_breaker("main|https://x/v1|abc", 3, 10.0)
    assert shared_breaker("main|https://x/v1|abc", 9, 99.0) is first
    assert shared_breaker("backup|https://y/v1|abc", 3, 10.0) is not first
    for _ in range(3):
        shared_breaker("main|https://x/v1|abc", 3, 10.0).record_failure(0.0)
    assert first.state(0.0) is OPEN
    clear_registry()


def test_a_released_probe_frees_its_slot_at_once() -> None:
    """A probe that ends saying nothing (cancelled, a local error) gives its slot back at
    once: the next caller probes without waiting another cool-down; the state stays."""
    breaker = _opened(cooldown=10.0)
    assert breaker.allow(10.0)
    assert breaker.probe_started_at(10.5) == 10.0
    assert not breaker.allow(10.5)
    breaker.release(11.0, 10.0)
    assert breaker.state(11.0) is HALF_OPEN and breaker.probe_started_at(11.0) is None
    assert breaker.allow(11.0)


def test_releasing_a_slot_that_passed_to_another_probe_changes_nothing() -> None:
    """A probe lost for a cool-down loses its slot to a new probe; its late release must not
    free the new probe's slot."""
    breaker = _opened(cooldown=10.0)
    assert breaker.allow(10.0)
    assert breaker.allow(20.0)  # the first probe's slot expired and went to a second one
    breaker.release(21.0, 10.0)
    assert not breaker.allow(21.0)
    breaker.release(21.0, 20.0)
    assert breaker.allow(21.0)


def test_record_follows_the_verdict() -> None:
    """``record`` counts failures, resets on successes, and ignores neutral outcomes except
    to release the probe that had one."""
    breaker = CircuitBreaker(2, 10.0)
    breaker.record(Verdict.FAILURE, 0.0)
    breaker.record(Verdict.NEUTRAL, 0.0)
    assert breaker.consecutive_failures == 1
    breaker.record(Verdict.SUCCESS, 0.0)
    assert breaker.consecutive_failures == 0
    for _ in range(2):
        breaker.record(Verdict.FAILURE, 1.0)
    assert breaker.state(1.0) is OPEN
    assert breaker.allow(11.0)
    breaker.record(Verdict.NEUTRAL, 12.0, probe_at=11.0)
    assert breaker.state(12.0) is HALF_OPEN and breaker.allow(12.0)
    breaker.record(Verdict.SUCCESS, 13.0, probe_at=12.0)
    assert breaker.state(13.0) is CLOSED


def test_every_kind_has_a_verdict_and_only_provider_failures_count() -> None:
    """The verdict table is total; what counts against a provider is exactly its own
    transient failures: never a 429, a quota error, a refusal or a local shortage."""
    assert set(VERDICTS) == set(ErrorKind)
    failures = {k for k, v in VERDICTS.items() if v is Verdict.FAILURE}
    assert failures == {ErrorKind.SERVER, ErrorKind.OVERLOADED, ErrorKind.TIMEOUT,
                        ErrorKind.CONNECTION, ErrorKind.STREAM_INTERRUPTED}
    assert failures < RETRYABLE
    assert VERDICTS[ErrorKind.RATE_LIMITED] is Verdict.SUCCESS
    assert VERDICTS[ErrorKind.QUOTA] is Verdict.SUCCESS
    assert VERDICTS[ErrorKind.STREAMING_UNSUPPORTED] is Verdict.SUCCESS
    assert VERDICTS[ErrorKind.LOCAL_RESOURCE] is Verdict.NEUTRAL


def test_a_garbled_stream_counts_but_a_page_that_is_not_the_protocol_does_not() -> None:
    """``malformed_response`` inside a 200 stream (marked worth another try) is a broken
    transfer and counts; a non-protocol answer (a proxy's page) is a configuration to fix."""
    garbled = ProviderError(ErrorKind.MALFORMED_RESPONSE, "bad chunk")
    garbled.retry_safe = True
    assert verdict_of(garbled) is Verdict.FAILURE
    assert verdict_of(ProviderError(ErrorKind.MALFORMED_RESPONSE, "<html>")) is Verdict.SUCCESS
    assert verdict_of(ProviderError(ErrorKind.LOCAL_RESOURCE, "EMFILE")) is Verdict.NEUTRAL


def test_the_resilience_package_is_the_only_home() -> None:
    """breaker, retry, ratelimit and shared live in runtime/resilience/; no shim remains and
    no code imports the old paths (an editable install could otherwise serve a stale copy)."""
    import re
    from pathlib import Path

    import runtime

    pkg = Path(runtime.__file__).parent
    root = pkg.parent
    for old in ("breaker", "retry", "ratelimit", "shared"):
        assert not (pkg / f"{old}.py").exists()
        assert (pkg / "resilience" / f"{old}.py").is_file()
    stale = re.compile(r"\bruntime\.(breaker|retry|ratelimit|shared)\b"
                       r"|from \.{1,2}(breaker|retry|ratelimit|shared) import")
    found = [f"{path.relative_to(root)}:{n}" for folder in ("runtime", "tests", "scripts")
             for path in (root / folder).rglob("*.py") if "resilience" not in path.parts
             for n, line in enumerate(path.read_text().splitlines(), 1) if stale.search(line)]
    assert found == []


times = st.floats(0.0, 1e7, allow_nan=False, allow_infinity=False)


@example(opened=1.9206661089556043, cooldown=30.0, after=2.767425532718575)
@settings(max_examples=2000)
@given(opened=st.floats(0.0, 1000.0), cooldown=st.sampled_from([1.5, 30.0, 600.0]) | st.floats(0.0, 3600.0),
       after=st.floats(0.0, 3600.0))
def test_sleeping_retry_in_is_never_one_float_step_short(opened: float, cooldown: float,
                                                          after: float) -> None:
    """Whoever sleeps ``retry_in(now)`` from ``now`` is let through: ``now + (at - now)`` is
    one float step short of ``at`` for about 1 in 100 such times, and a turn waiting for an
    open circuit then saw it still open at its probe time and spent an attempt on rounding
    (the explicit example is one such case)."""
    breaker = CircuitBreaker(1, cooldown)
    breaker.record_failure(opened)
    now = opened + after
    wait = breaker.retry_in(now)
    assert wait >= 0.0
    assert breaker.allow(now + wait)


@given(at=times, now=times)
def test_seconds_until_reaches_the_moment_and_no_further_than_a_step(at: float,
                                                                     now: float) -> None:
    """``now + seconds_until(at, now)`` is never short of ``at``, and the wait is no longer
    than it must be: one float step less falls short, unless it is the plain ``at - now``."""
    wait = seconds_until(at, now)
    assert now + wait >= at
    assert wait == 0.0 or now + math.nextafter(wait, -math.inf) < at or wait == at - now
