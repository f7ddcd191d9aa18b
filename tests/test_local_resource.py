"""Failures on our side are not the provider's: a real EMFILE (a child process under a low
RLIMIT_NOFILE), a connect failing at our own open-file limit, a ``timeout.total`` lost to
our own stalled event loop or slow consumer, a cancelled probe and a cache replay miss
never count against a provider's circuit breaker."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from runtime.cache_store import AsyncCacheStore, CacheStore, ResponseCache
from runtime.errors import ErrorKind, ProviderError
from runtime.events import Event
from runtime.model import Message, Request, Response, TextPart
from runtime.providers import HTTPProvider, ProviderSpec, Timeouts
from runtime.providers.actor import (
    ActorOptions,
    AttemptFailed,
    TurnDone,
    TurnFailed,
    TurnRequest,
    run_turn,
)
from runtime.resilience.breaker import BreakerState, CircuitBreaker
from runtime.resilience.retry import RetryPolicy
from runtime.testing import faults, open_fake_server
from tests.recordings import ROOT

FINAL = Response("r-final", "m", [TextPart("through")], "stop", "stop")
REQUEST = Request(model="m", messages=[Message.user("hello")])

# The child: a fake provider in its own trio run, then every descriptor under a lowered soft
# RLIMIT_NOFILE taken, so that opening a socket fails with EMFILE for real.
CHILD = r'''
import errno, json, os, resource, socket
import httpx, trio
from runtime.errors import ProviderError
from runtime.model import Message, Request, Response, TextPart
from runtime.providers import HTTPProvider, ProviderSpec, Timeouts
from runtime.providers.actor import (ActorOptions, AttemptFailed, TurnDone, TurnFailed,
                                     TurnRequest, provider_actor)
from runtime.resilience.breaker import CircuitBreaker
from runtime.resilience.retry import RetryPolicy
from runtime.testing import open_fake_server

FINAL = Response("r", "m", [TextPart("through")], "stop", "stop")
REQ = Request(model="m", messages=[Message.user("hello")])


def provider(client, url):
    spec = ProviderSpec(name="p", kind="openai-chat", base_url=url, model="m",
                        api_key="k-child-1", timeouts=Timeouts(5, 30, 60))
    return HTTPProvider(spec, client)


def hog(leave=0):
    """Open /dev/null until EMFILE; then close ``leave`` of them again."""
    fds = []
    try:
        while True:
            fds.append(os.open(os.devnull, os.O_RDONLY))
    except OSError as exc:
        assert exc.errno == errno.EMFILE, exc
    for _ in range(leave):
        os.close(fds.pop())
    return fds


def free(fds):
    while fds:
        os.close(fds.pop())


async def main():
    out = {}
    probe = socket.socket()  # a port nobody listens on: bound, then closed
    probe.bind(("127.0.0.1", 0))
    dead_port = probe.getsockname()[1]
    probe.close()
    async with open_fake_server([FINAL]) as server, httpx.AsyncClient() as client:
        async with httpx.AsyncClient() as warm:  # codecs and modules loaded beforehand
            await warm.get(server.url + "/health")
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE,
                           (len(os.listdir("/proc/self/fd")) + 64, hard))

        # 1. EMFILE on the first attempt of a turn, through the provider actor
        breaker = CircuitBreaker(1, 600.0)
        opts = ActorOptions(policy=RetryPolicy(max_attempts=3, base_delay=0.01),
                            breaker=breaker)
        replies = []
        async with trio.open_nursery() as nursery:
            mailbox = await nursery.start(provider_actor,
                                          provider(client, server.base_url("openai-chat")),
                                          opts)
            send, recv = trio.open_memory_channel(16)
            fds = hog()
            async with mailbox:
                await mailbox.send(TurnRequest(REQ, send))
            async with recv:
                async for msg in recv:
                    if isinstance(msg, AttemptFailed):
                        free(fds)  # the shortage passes: the retry gets through
                        replies.append(["failed", msg.error.kind.value, msg.error.message,
                                        msg.error.hint, msg.delay])
                    elif isinstance(msg, (TurnDone, TurnFailed)):
                        replies.append([type(msg).__name__, msg.attempts])
        out["replies"] = replies
        out["breaker"] = [breaker.state(trio.current_time()).value,
                          breaker.consecutive_failures]
        out["requests"] = server.request_count

        # 2. a refused connect while we sit at our own open-file limit, and without
        p = provider(client, f"http://127.0.0.1:{dead_port}/v1")
        for label, leave in (("at_limit", 3), ("plenty", None)):
            fds = hog(leave) if leave is not None else []
            try:
                await p.attempt(REQ, stream=False)
                out[label] = None
            except ProviderError as exc:
                out[label] = [exc.kind.value, exc.message]
            finally:
                free(fds)
    print(json.dumps(out))


trio.run(main)
'''


async def test_a_real_emfile_is_local_retried_and_never_opens_the_breaker() -> None:
    """Under a low RLIMIT_NOFILE with every descriptor taken, the attempt fails with EMFILE:
    kind local_resource with a hint naming ulimit -n, retried once descriptors are free,
    and the breaker (threshold 1) stays closed. A refused connect at the open-file limit is
    local too; the same refusal with descriptors to spare is the provider's (connection)."""
    with trio.fail_after(60):
        proc = await trio.run_process([sys.executable, "-c", CHILD], cwd=str(ROOT),
                                      capture_stdout=True, capture_stderr=True, check=False)
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    out = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    failed, done = out["replies"]
    assert failed[:2] == ["failed", "local_resource"]
    assert "EMFILE" in failed[2] and "not the provider's fault" in failed[2]
    assert "ulimit -n" in failed[3] and "concurrency" in failed[3]
    assert failed[4] is not None  # retried with backoff
    assert done == ["TurnDone", 2]
    assert out["requests"] == 1  # the first attempt never reached the server
    assert out["breaker"] == ["closed", 0]
    assert out["at_limit"][0] == "local_resource" and "file descriptor" in out["at_limit"][1]
    assert out["plenty"][0] == "connection"


def spec(server: Any, total: float, read: float = 1000.0) -> ProviderSpec:
    return ProviderSpec(name="p", kind="openai-chat", base_url=server.base_url("openai-chat"),
                        model="m", api_key="k-1", timeouts=Timeouts(5, read, total))


async def drive(provider: Any, opts: ActorOptions, *, read_after: float = 0.0,
                bound: int = 16) -> list[Any]:
    """Run one turn through the actor's turn logic; the replies (events batches dropped).
    ``read_after`` delays the consumer: a slow reader of the reply channel."""
    send, recv = trio.open_memory_channel[Any](bound)
    replies: list[Any] = []

    async def consume() -> None:
        await trio.sleep(read_after)
        async with recv:
            async for msg in recv:
                if not isinstance(msg, list):
                    replies.append(msg)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(consume)
        await run_turn(provider, TurnRequest(REQUEST, send), opts, {})
    return replies


async def test_a_total_timeout_lost_to_our_stalled_event_loop_is_local(
        autojump_clock: Any) -> None:
    """The event loop stalls (virtual time jumps 100 s in one step) while a request waits
    for its head: timeout.total (30 s) fires 75 s late, which is this process's doing. It
    is local_resource, retried, and the breaker (threshold 1) is not told; the same wait
    without the stall is the provider's timeout."""
    breaker = CircuitBreaker(1, 600.0)
    script = [faults.stall(3600, after_events=None), FINAL, faults.stall(3600, after_events=None)]
    async with open_fake_server(script) as server, httpx.AsyncClient() as client:
        provider = HTTPProvider(spec(server, total=30), client)

        async def stall_the_loop() -> None:
            await trio.sleep(5)
            autojump_clock.jump(100)  # 100 s pass without the scheduler running

        opts = ActorOptions(policy=RetryPolicy(max_attempts=2, base_delay=0.1), breaker=breaker)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(stall_the_loop)
            replies = await drive(provider, opts)
        [failed, done] = replies[1:2] + replies[-1:]
        assert isinstance(failed, AttemptFailed)
        assert failed.error.kind is ErrorKind.LOCAL_RESOURCE
        assert "fired 75.0 s late" in failed.error.message
        assert isinstance(done, TurnDone) and done.attempts == 2
        assert breaker.state(trio.current_time()) is BreakerState.CLOSED
        assert breaker.consecutive_failures == 0
        # the control: nothing stalls, the provider never answers: its timeout, counted
        t0 = trio.current_time()
        with trio.fail_after(40):
            err = await attempt_error(provider)
        assert err.kind is ErrorKind.TIMEOUT and "timeout.total" in err.message
        assert trio.current_time() - t0 == pytest.approx(30)


async def attempt_error(provider: HTTPProvider) -> ProviderError:
    try:
        await provider.attempt(REQUEST, stream=True)
    except ProviderError as exc:
        return exc
    raise AssertionError("the attempt did not fail")


async def test_a_total_timeout_spent_held_back_by_a_slow_consumer_is_local(
        autojump_clock: Any) -> None:
    """The provider streams promptly but our consumer does not read for 60 s (bounded
    channel: backpressure), so timeout.total (30 s) runs out while the stream waits on us:
    local_resource, not the provider's timeout."""
    long = Response("r", "m", [TextPart("word " * 200)], "stop", "stop")
    async with open_fake_server([long]) as server, httpx.AsyncClient() as client:
        provider = HTTPProvider(spec(server, total=30), client)
        send, recv = trio.open_memory_channel[list[Event]](1)
        err: list[ProviderError] = []

        async def slow_reader() -> None:
            await trio.sleep(60)
            async with recv:
                async for _ in recv:
                    pass

        async with trio.open_nursery() as nursery:
            nursery.start_soon(slow_reader)
            async with send:
                try:
                    await provider.attempt(REQUEST, send, stream=True)
                except ProviderError as exc:
                    err.append(exc)
    [e] = err
    assert e.kind is ErrorKind.LOCAL_RESOURCE
    assert "held back" in e.message and "slow consumer" in e.message


async def test_a_cancelled_probe_gives_its_slot_back_at_once(autojump_clock: Any) -> None:
    """The half-open probe's request is cancelled (the session was stopped): that says
    nothing about the provider, so the next caller may probe at once instead of after
    another cool-down."""
    breaker = CircuitBreaker(1, 10.0)
    breaker.record_failure(trio.current_time())
    await trio.sleep(10)
    assert breaker.state(trio.current_time()) is BreakerState.HALF_OPEN
    async with open_fake_server([faults.stall(3600, after_events=None)]) as server, \
            httpx.AsyncClient() as client:
        provider = HTTPProvider(spec(server, total=600), client)
        with trio.move_on_after(5) as scope:
            await drive(provider, ActorOptions(breaker=breaker))
        assert scope.cancelled_caught and server.request_count == 1
    assert breaker.state(trio.current_time()) is BreakerState.HALF_OPEN
    assert breaker.allow(trio.current_time())


async def test_cache_replay_misses_never_reach_the_breaker(tmp_path: Path,
                                                           autojump_clock: Any) -> None:
    """A replay miss is answered from the cache without a request: ten of them leave a
    threshold-1 breaker closed."""
    breaker = CircuitBreaker(1, 600.0)
    cache = ResponseCache(AsyncCacheStore(CacheStore(tmp_path / "cache")), "replay")
    async with open_fake_server([]) as server, httpx.AsyncClient() as client:
        provider = HTTPProvider(spec(server, total=30), client)
        opts = ActorOptions(breaker=breaker, cache=cache, cache_kind="openai-chat")
        for _ in range(10):
            replies = await drive(provider, opts)
            assert isinstance(replies[-1], TurnFailed)
            assert replies[-1].error.kind is ErrorKind.BAD_REQUEST
        assert server.request_count == 0
    await cache.backend.aclose()
    assert breaker.state(trio.current_time()) is BreakerState.CLOSED
    assert breaker.consecutive_failures == 0
