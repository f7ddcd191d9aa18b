"""The fake provider server over real loopback HTTP: routes, recording, replay, keep-alive,
script exhaustion and thread mode."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from runtime.testing.script import Raw, RecordedRequest, Script, protocol_of_path, split_bytes
from runtime.testing.server import FakeProviderServer, open_fake_server, serve_fake_provider
from tests.recordings import load, recording_files
from tests.testing import PROTOCOLS, ROUTE, post, url


def _replay_files() -> list[Path]:
    """A few recordings of each protocol: every streamed one and up to three others."""
    out: list[Path] = []
    for protocol in ("openai-chat", "openai-responses", "anthropic", "openrouter"):
        files = recording_files(protocol)
        streamed = [f for f in files if "stream" in load(f)["categories"]]
        plain = [f for f in files if f not in streamed]
        out += streamed[:3] + plain[:2]
    return out


REPLAY = _replay_files()


def test_protocol_of_path_ignores_query_and_prefixes() -> None:
    """Routes go by the path's ending; a query string or provider prefix changes nothing."""
    assert protocol_of_path("/v1/messages?beta=true") == "anthropic"
    assert protocol_of_path("/openai/v1/chat/completions") == "openai-chat"
    assert protocol_of_path("/api/v1/chat/completions/") == "openai-chat"
    assert protocol_of_path("/v1/responses") == "openai-responses"
    assert protocol_of_path("/v1/models") is None


def test_split_bytes_keeps_every_byte_in_order() -> None:
    """Replay splitting loses nothing, makes the asked number of pieces, and is reproducible."""
    data = bytes(range(256)) * 3
    parts = split_bytes(data, 5, seed="x")
    assert b"".join(parts) == data
    assert len(parts) == 5 and all(parts)
    assert parts == split_bytes(data, 5, seed="x")
    assert split_bytes(b"a", 4) == [b"a"]


async def test_health_404_and_base_urls() -> None:
    """GET /health answers 200, an unknown path a JSON 404; base URLs follow the SDKs."""
    with trio.fail_after(10):
        async with open_fake_server() as server, httpx.AsyncClient() as client:
            assert server.base_url("openai-chat") == f"http://127.0.0.1:{server.port}/v1"
            assert server.base_url("openai-responses").endswith(f":{server.port}/v1")
            assert server.base_url("anthropic") == f"http://127.0.0.1:{server.port}"
            with pytest.raises(ValueError):
                server.base_url("carrier-pigeon")
            health = await client.get(server.url + "/health")
            assert health.status_code == 200
            missing = await client.post(server.url + "/v1/models", json={})
            assert missing.status_code == 404
            assert "/v1/models" in missing.json()["error"]["message"]
            wrong_method = await client.get(url(server, "anthropic"))
            assert wrong_method.status_code == 404
            assert server.request_count == 0


async def test_requests_are_recorded() -> None:
    """Each provider request is kept with its path, protocol, lower-cased headers, body,
    raw bytes and stream flag."""
    script = [Raw(200, {"content-type": "application/json"}, b"{}") for _ in PROTOCOLS]
    with trio.fail_after(10):
        async with open_fake_server(script) as server, httpx.AsyncClient() as client:
            for i, protocol in enumerate(PROTOCOLS):
                body = {"model": f"m{i}", "stream": i == 1, "messages": []}
                r = await client.post(url(server, protocol) + "?beta=true", json=body,
                                      headers={"X-Api-Key": f"key-{i}"})
                assert r.status_code == 200
    assert [r.protocol for r in server.requests] == list(PROTOCOLS)
    for i, req in enumerate(server.requests):
        assert isinstance(req, RecordedRequest)
        assert req.method == "POST"
        assert req.path.endswith(ROUTE[req.protocol]) and req.query == "beta=true"
        assert req.headers["x-api-key"] == f"key-{i}"
        assert req.body["model"] == f"m{i}"
        assert json.loads(req.raw) == req.body
        assert req.stream is (i == 1)
    assert server.request_count == 3


async def test_script_exhaustion_is_a_clear_500_and_counted() -> None:
    """Past the last entry every request gets a 500 saying the script ran out."""
    with trio.fail_after(10):
        async with open_fake_server([Raw(200, {}, b"only one")]) as server, \
                httpx.AsyncClient() as client:
            first = await client.post(url(server, "openai-chat"), json={})
            assert first.content == b"only one"
            for protocol in ("openai-chat", "anthropic"):
                r = await client.post(url(server, protocol), json={})
                assert r.status_code == 500
                assert "script ran out" in r.json()["error"]["message"]
    assert server.exhausted == 2
    assert server.request_count == 3


async def test_keep_alive_reuses_one_connection() -> None:
    """A pooled client sends several requests, streamed and not, over one TCP connection."""
    script = [Raw(200, {}, b"json"), Raw(200, {"content-type": "text/event-stream"},
                                         [b"data: 1\n\n", b"data: 2\n\n"]), Raw(200, {}, b"x")]
    with trio.fail_after(10):
        async with open_fake_server(script) as server, httpx.AsyncClient() as client:
            bodies = []
            for protocol in PROTOCOLS:
                _, chunks = await post(client, server, protocol, {"stream": True})
                bodies.append(b"".join(chunks))
    assert bodies == [b"json", b"data: 1\n\ndata: 2\n\n", b"x"]
    assert server.connections == 1
    assert {r.connection for r in server.requests} == {1}


async def test_callable_entries_answer_dynamically_and_failures_are_500() -> None:
    """A callable entry sees the recorded request; one that raises becomes a 500 and is kept."""

    def echo(req: RecordedRequest) -> Raw:
        return Raw(201, {"content-type": "text/plain"}, f"model={req.body['model']}")

    def broken(req: RecordedRequest) -> Raw:
        raise RuntimeError("scripted bug")

    with trio.fail_after(10):
        async with open_fake_server([echo, broken]) as server, httpx.AsyncClient() as client:
            ok = await client.post(url(server, "anthropic"), json={"model": "claude-x"})
            bad = await client.post(url(server, "anthropic"), json={"model": "y"})
            not_json = await client.post(url(server, "anthropic"), content=b"{oops")
    assert (ok.status_code, ok.text) == (201, "model=claude-x")
    assert bad.status_code == 500 and "scripted bug" in bad.json()["error"]["message"]
    assert [type(e) for e in server.errors] == [RuntimeError]
    assert not_json.status_code == 400
    assert server.requests[-1].raw == b"{oops"


async def test_nursery_start_pattern() -> None:
    """``nursery.start(serve_fake_provider, script)`` reports the server once it listens."""
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            server = await nursery.start(serve_fake_provider, [Raw(200, {}, b"hi")])
            assert isinstance(server, FakeProviderServer) and server.port > 0
            async with httpx.AsyncClient() as client:
                r = await client.post(url(server, "openai-responses"), json={})
            assert r.text == "hi"
            nursery.cancel_scope.cancel()


async def test_body_exception_is_not_wrapped() -> None:
    """An error raised in the ``async with`` body comes out as itself."""
    with trio.fail_after(10), pytest.raises(KeyError):
        async with open_fake_server():
            raise KeyError("from the body")


@pytest.mark.parametrize("path", REPLAY, ids=lambda p: f"{p.parent.name}/{p.stem[:60]}")
async def test_replay_is_byte_exact(path: Path) -> None:
    """A replayed recording sends each response's status, content-type and body bytes
    exactly; event streams arrive chunked."""
    rec = load(path)
    script = Script.from_recording(path)
    entries = script.remaining
    with trio.fail_after(10):
        async with open_fake_server(script) as server, httpx.AsyncClient() as client:
            for inter, entry in zip(rec["interactions"], entries, strict=True):
                want = inter["response"]
                target = server.url + inter["request"]["path"]
                async with client.stream("POST", target, json=inter["request"]["body"]) as r:
                    body = b"".join([c async for c in r.aiter_raw()])
                assert r.status_code == want["status"]
                assert r.headers["content-type"] == want["headers"]["content-type"]
                assert body == want["body"].encode()
                streamed = "text/event-stream" in want["headers"]["content-type"]
                assert (r.headers.get("transfer-encoding") == "chunked") is streamed
                assert isinstance(entry, Raw)
                if streamed:
                    assert isinstance(entry.body, list) and len(entry.body) > 1
    assert server.request_count == len(rec["interactions"])
    assert server.exhausted == 0


def test_from_recording_keeps_status_headers_and_order(tmp_path: Path) -> None:
    """Replay keeps each response's status, content-type and retry-after (dropping other
    headers) in recorded order, and splits only event streams."""
    stream = "event: ping\ndata: {}\n\n" * 20
    rec = {"interactions": [
        {"request": {}, "response": {"status": 429, "body": "{}", "headers": {
            "content-type": "application/json", "retry-after": "7", "x-other": "dropped"}}},
        {"request": {}, "response": {"status": 200, "body": stream, "headers": {
            "Content-Type": "text/event-stream"}}},
    ]}
    path = tmp_path / "rec.json"
    path.write_text(json.dumps(rec))
    first, second = Script.from_recording(path, pieces=3).remaining
    assert isinstance(first, Raw) and isinstance(second, Raw)
    assert (first.status, dict(first.headers), first.body) == (
        429, {"content-type": "application/json", "retry-after": "7"}, b"{}")
    assert second.status == 200 and dict(second.headers) == {"content-type": "text/event-stream"}
    assert isinstance(second.body, list) and len(second.body) == 3
    assert b"".join(second.body) == stream.encode()


def test_thread_mode_from_sync_code() -> None:
    """``in_thread`` serves plain synchronous clients and stops cleanly on exit."""
    script: list[Any] = [Raw(200, {}, b"one"), Raw(200, {}, [b"tw", b"o"])]
    with FakeProviderServer.in_thread(script) as server, httpx.Client(timeout=5) as client:
        first = client.post(url(server, "openai-chat"), json={"n": 1})
        second = client.post(url(server, "anthropic"), json={"n": 2})
        base = server.url
    assert (first.text, second.text) == ("one", "two")
    assert [r.body["n"] for r in server.requests] == [1, 2]
    with pytest.raises(httpx.ConnectError), httpx.Client(timeout=2) as client:
        client.get(base + "/health")
