"""Faults of the fake provider over real loopback HTTP: what the client sees of each one."""

from __future__ import annotations

import json

import httpx
import pytest
import trio

from runtime.errors import ErrorKind, error_from_response
from runtime.testing import faults
from runtime.testing.faults import MALFORMED_EVENT, Fault
from runtime.testing.script import Cut, Head, Raw, RecordedRequest, Send, Sleep, plan_of
from runtime.testing.server import open_fake_server
from tests.testing import PROTOCOLS, post, url

EVENTS = [f"data: {{\"n\": {i}}}\n\n".encode() for i in range(5)]
STREAM = Raw(200, {"content-type": "text/event-stream"}, EVENTS)
JSON = Raw(200, {"content-type": "application/json"}, b'{"answer": "forty-two"}')


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_error_faults_carry_the_protocol_error(protocol: str) -> None:
    """429, 500, 529 and an HTML page each classify as their error kind for every protocol."""
    script = [faults.rate_limited(retry_after=2.5), faults.server_error(),
              faults.overloaded(), faults.html_error()]
    with trio.fail_after(10):
        async with open_fake_server(script) as server, httpx.AsyncClient() as client:
            got = [await client.post(url(server, protocol), json={}) for _ in script]
    limited, failed, overloaded, html = got
    assert limited.status_code == 429 and limited.headers["retry-after"] == "2.5"
    err = error_from_response(429, dict(limited.headers), limited.content)
    assert err.kind is ErrorKind.RATE_LIMITED and err.retry_after == 2.5
    if protocol == "anthropic":
        assert limited.json()["type"] == "error"
    else:
        assert "message" in limited.json()["error"]
    assert failed.status_code == 500
    assert error_from_response(500, dict(failed.headers), failed.content).kind is ErrorKind.SERVER
    assert overloaded.status_code == 529
    assert overloaded.json()["error"]["type"] == "overloaded_error"
    assert error_from_response(529, {}, overloaded.content).kind is ErrorKind.OVERLOADED
    assert html.status_code == 502 and html.headers["content-type"] == "text/html"
    assert html.text.lstrip().startswith("<html>")
    page = error_from_response(502, dict(html.headers), html.content)
    assert page.message == "502 Bad Gateway"
    assert server.faults_served == {"rate_limited": 1, "server_error": 1, "overloaded": 1,
                                    "html_error": 1}


async def test_cut_mid_stream_breaks_the_connection() -> None:
    """The client gets the first N events, then a protocol error; the server lives on."""
    script = [faults.cut_mid_stream(then=STREAM, after_events=2), JSON]
    received: list[bytes] = []
    with trio.fail_after(10):
        async with open_fake_server(script) as server, httpx.AsyncClient() as client:
            with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
                async with client.stream("POST", url(server, "openai-chat"),
                                         json={"stream": True}) as r:
                    assert r.status_code == 200
                    async for chunk in r.aiter_raw():
                        received.append(chunk)
            after = await client.post(url(server, "openai-chat"), json={})
    assert b"".join(received) == b"".join(EVENTS[:2])
    assert after.content == JSON.body
    assert server.connections == 2
    assert server.faults_served["cut_mid_stream"] == 1


async def test_cut_of_a_json_reply_sends_half_the_body() -> None:
    """A cut non-stream reply announces its full length and sends half of it."""
    with trio.fail_after(10):
        async with open_fake_server([faults.cut_mid_stream(then=JSON)]) as server, \
                httpx.AsyncClient() as client:
            with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
                await client.post(url(server, "anthropic"), json={})


async def test_malformed_chunk_is_inserted_after_n_events() -> None:
    """The broken JSON event arrives after N events, and the stream then goes on."""
    script = [faults.malformed_chunk(then=STREAM, after_events=3)]
    with trio.fail_after(10):
        async with open_fake_server(script) as server, httpx.AsyncClient() as client:
            r, chunks = await post(client, server, "anthropic", {"stream": True})
    assert r.status_code == 200
    assert b"".join(chunks) == b"".join([*EVENTS[:3], MALFORMED_EVENT, *EVENTS[3:]])
    with pytest.raises(ValueError):
        json.loads(MALFORMED_EVENT.removeprefix(b"data: "))


async def test_stall_after_headers_trips_a_read_timeout(autojump_clock: object) -> None:
    """A stall after the headers and one event makes a 30 s read timeout fire (virtual time)."""
    script = [faults.stall(seconds=3600, then=STREAM, after_events=1)]
    received: list[bytes] = []
    with trio.fail_after(120):
        async with open_fake_server(script) as server, \
                httpx.AsyncClient(timeout=httpx.Timeout(5, read=30)) as client:
            start = trio.current_time()
            with pytest.raises(httpx.ReadTimeout):
                async with client.stream("POST", url(server, "openai-responses"),
                                         json={"stream": True}) as r:
                    assert r.status_code == 200
                    async for chunk in r.aiter_raw():
                        received.append(chunk)
            waited = trio.current_time() - start
    assert b"".join(received) == EVENTS[0]
    assert 30 <= waited < 60
    assert server.faults_served["stall"] == 1


async def test_stall_before_headers(autojump_clock: object) -> None:
    """``after_events=None`` stalls before the status line."""
    with trio.fail_after(120):
        async with open_fake_server([faults.stall(then=JSON, after_events=None)]) as server, \
                httpx.AsyncClient(timeout=httpx.Timeout(5, read=30)) as client:
            with pytest.raises(httpx.ReadTimeout):
                await client.post(url(server, "openai-chat"), json={})


async def test_short_stall_delivers_the_whole_answer_late(autojump_clock: object) -> None:
    """A stall shorter than the client's patience only delays the answer."""
    with trio.fail_after(120):
        async with open_fake_server([faults.stall(seconds=12, then=STREAM, after_events=2)]) \
                as server, httpx.AsyncClient(timeout=30) as client:
            start = trio.current_time()
            _, chunks = await post(client, server, "anthropic", {"stream": True})
            waited = trio.current_time() - start
    assert b"".join(chunks) == b"".join(EVENTS)
    assert 12 <= waited < 13


async def test_streaming_refused_only_refuses_streams() -> None:
    """A streamed request gets 400 "stream not supported"; a non-stream one passes through."""
    script = [faults.streaming_refused(), JSON, faults.streaming_refused(), STREAM]
    with trio.fail_after(10):
        async with open_fake_server(script) as server, httpx.AsyncClient() as client:
            refused = await client.post(url(server, "anthropic"), json={"stream": True})
            fallback = await client.post(url(server, "anthropic"), json={"stream": False})
            passed = await client.post(url(server, "openai-chat"), json={})
    assert refused.status_code == 400
    err = error_from_response(400, dict(refused.headers), refused.content)
    assert err.kind is ErrorKind.STREAMING_UNSUPPORTED
    assert fallback.content == JSON.body
    assert passed.content == b"".join(EVENTS)
    assert server.faults_served["streaming_refused"] == 1


async def test_inject_answers_the_next_n_requests_before_the_script() -> None:
    """An injected fault answers ``times`` requests without consuming script entries."""
    with trio.fail_after(10):
        async with open_fake_server([JSON]) as server, httpx.AsyncClient() as client:
            server.inject(faults.server_error(503), times=2)
            server.inject(faults.streaming_refused(), times=1)
            statuses = [(await client.post(url(server, "openai-chat"), json={})).status_code
                        for _ in range(3)]
            refused = await client.post(url(server, "openai-chat"), json={"stream": True})
    assert statuses == [503, 503, 200]
    assert refused.status_code == 400
    assert server.faults_served == {"server_error": 2, "streaming_refused": 1}
    with pytest.raises(ValueError):
        server.inject(faults.server_error(), times=0)


async def test_echo_auth_and_custom() -> None:
    """``echo_auth`` puts the request's credentials in a 401 body; ``custom`` sends anything."""
    teapot = faults.custom(418, b"short and stout", {"content-type": "text/plain", "x-t": "1"})
    with trio.fail_after(10):
        async with open_fake_server([faults.echo_auth(), faults.echo_auth(), teapot]) \
                as server, httpx.AsyncClient() as client:
            bearer = await client.post(url(server, "openai-chat"), json={},
                                       headers={"Authorization": "Bearer sk-secret-123"})
            key = await client.post(url(server, "anthropic"), json={},
                                    headers={"x-api-key": "sk-ant-xyz"})
            tea = await client.post(url(server, "openai-responses"), json={})
    assert bearer.status_code == 401 and "Bearer sk-secret-123" in bearer.text
    assert error_from_response(401, {}, bearer.content).kind is ErrorKind.AUTH
    assert key.status_code == 401 and "sk-ant-xyz" in key.json()["error"]["message"]
    assert (tea.status_code, tea.text, tea.headers["x-t"]) == (418, "short and stout", "1")
    assert server.faults_served == {"echo_auth": 2, "custom": 1}


def _req(stream: bool) -> RecordedRequest:
    return RecordedRequest("POST", "/v1/messages", "", "anthropic", {},
                           {"stream": stream}, b"")


def test_fault_plans_are_pure_transformations() -> None:
    """Breaking faults rewrite the plan of the reply they wrap, step by step."""
    stream_plan = plan_of(STREAM)
    head = stream_plan[0]
    assert isinstance(head, Head) and head.length is None
    cut = faults.cut_mid_stream(then=STREAM, after_events=1).plan(_req(True), stream_plan)
    assert cut == [head, Send(EVENTS[0]), Cut()]
    stall = faults.stall(seconds=9, after_events=None).plan(_req(True), stream_plan)
    assert stall[0] == Sleep(9) and stall[1:] == stream_plan
    json_plan = plan_of(JSON)
    assert isinstance(json_plan[0], Head) and json_plan[0].length == len(JSON.chunks[0])
    broken = faults.malformed_chunk(then=JSON).plan(_req(False), json_plan)
    assert isinstance(broken[0], Head) and isinstance(broken[1], Send)
    assert broken[0].length == len(broken[1].data)
    with pytest.raises(ValueError):
        json.loads(broken[1].data)
    with pytest.raises(ValueError):
        faults.cut_mid_stream().plan(_req(True))
    assert not faults.streaming_refused().applies_to(_req(False))
    assert Fault("x").applies_to(_req(False))
