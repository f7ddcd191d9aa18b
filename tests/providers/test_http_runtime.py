"""The HTTP provider runtime over real loopback HTTP against the fake provider server."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from runtime.errors import ErrorKind, ProviderError
from runtime.events import (
    Event,
    Finish,
    ResponseStart,
    TextDelta,
    ToolCallStart,
    assemble,
)
from runtime.model import Message, Request, Response, TextPart, ToolCallPart, ToolResultPart, Usage
from runtime.providers import HTTPProvider, ProviderSpec, Timeouts
from runtime.testing import faults
from runtime.testing.script import Script
from runtime.testing.server import open_fake_server
from tests.recordings import (
    CODEC_OF,
    assert_matches,
    function_argument_deltas,
    load,
    recording_files,
)

KIND_OF = {"openai-chat": "openai-chat", "openrouter": "openrouter",
           "openai-responses": "openai-responses", "anthropic": "anthropic"}
PROTOCOLS = ["openai-chat", "openai-responses", "anthropic"]
KEY = "sk-test-canary-key-000111222"


def provider(server: Any, kind: str, client: httpx.AsyncClient, *,
             timeouts: Timeouts | None = None) -> HTTPProvider:
    protocol = CODEC_OF.get(kind, kind)
    spec = ProviderSpec(name="p", kind=kind, base_url=server.base_url(protocol), model="m",
                        api_key=KEY, timeouts=timeouts or Timeouts(5, 30, 60))
    return HTTPProvider(spec, client)


def decode_request(protocol: str, body: dict[str, Any]) -> Request:
    mod = importlib.import_module(f"runtime.testing.wire.{protocol.replace('-', '_')}")
    return mod.decode_request(body)  # type: ignore[no-any-return]


def function_tools(body: dict[str, Any]) -> list[str]:
    """Names of the client (function) tools of a request body, any protocol; provider-native
    tools (web search, tool search, ...) are not part of the canonical request."""
    out = []
    for t in body.get("tools", []):
        if t.get("type") == "function" or "function" in t:  # Mistral omits the type
            out.append(t.get("name") or t["function"]["name"])
        elif "input_schema" in t:
            out.append(t["name"])
    return out


async def collect(p: HTTPProvider, req: Request, *, stream: bool
                  ) -> tuple[Response | None, ProviderError | None, list[Event]]:
    send, recv = trio.open_memory_channel[list[Event]](4)
    events: list[Event] = []
    result: list[Any] = [None, None]

    async def consume() -> None:
        async with recv:
            async for batch in recv:
                events.extend(batch)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(consume)
        async with send:
            try:
                result[0] = await p.attempt(req, send, stream=stream)
            except ProviderError as exc:
                result[1] = exc
    return result[0], result[1], events


@pytest.mark.parametrize("path", recording_files(), ids=lambda p: f"{p.parent.name}/{p.stem}")
async def test_recording_replayed_through_the_runtime(path: Path) -> None:
    """Each recorded exchange, served over loopback, decodes through the runtime to its expect;
    the request the runtime sends for the recorded conversation has the recorded shape."""
    rec = load(path)
    folder = path.parent.name
    protocol = CODEC_OF[folder]
    with trio.fail_after(30):
        async with open_fake_server(Script.from_recording(path)) as server, \
                httpx.AsyncClient() as client:
            p = provider(server, KIND_OF[folder], client)
            for i, (inter, exp) in enumerate(zip(rec["interactions"], rec["expect"], strict=True)):
                body = inter["request"]["body"]
                req = decode_request(protocol, body)
                resp, err, events = await collect(p, req, stream=bool(body.get("stream")))
                deltas = function_argument_deltas(events)
                if err is not None and (exp["error"] or {}).get("in_stream"):
                    resp = assemble(events, protocol)  # what arrived before the error
                assert_matches(folder, resp, err, exp,
                               argument_deltas=dict(deltas) if exp["stream"] and deltas else None)
                if err is None:
                    assert isinstance(events[0], ResponseStart) and isinstance(events[-1], Finish)
                sent = server.requests[i]
                assert inter["request"]["path"].split("?")[0].endswith(sent.path.split("?")[0][-12:])
                assert function_tools(sent.body) == function_tools(body)
                assert sent.headers.get("authorization", sent.headers.get("x-api-key", "")) \
                    .endswith(KEY)


SCRIPTED = Response("r1", "m", [TextPart("Hello there, general."),
                                ToolCallPart("call_1", "read_file", '{"path": "a.txt"}')],
                    "tool_calls", "tool_calls", Usage(12, 7))


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("stream", [True, False])
async def test_scripted_answer_arrives_as_events(protocol: str, stream: bool) -> None:
    """A scripted answer comes back as normalized events and the same assembled response."""
    with trio.fail_after(10):
        async with open_fake_server([SCRIPTED]) as server, httpx.AsyncClient() as client:
            resp, err, events = await collect(provider(server, protocol, client),
                                              Request("m", []), stream=stream)
    assert err is None and resp is not None
    assert resp.text == "Hello there, general."
    assert [(c.id, c.name, json.loads(c.arguments)) for c in resp.tool_calls] == [
        ("call_1", "read_file", {"path": "a.txt"})]
    assert resp.usage is not None and resp.usage.output_tokens == 7
    text_events = [e for e in events if isinstance(e, TextDelta)]
    assert len(text_events) > (1 if stream else 0)
    assert server.requests[0].stream is stream


FAULTS = [
    ("rate_limited", lambda: faults.rate_limited(retry_after=7), ErrorKind.RATE_LIMITED, 429),
    ("server_error", faults.server_error, ErrorKind.SERVER, 500),
    ("overloaded", faults.overloaded, ErrorKind.OVERLOADED, 529),
    ("html_error", faults.html_error, ErrorKind.SERVER, 502),
    ("streaming_refused", faults.streaming_refused, ErrorKind.STREAMING_UNSUPPORTED, 400),
    ("echo_auth", faults.echo_auth, ErrorKind.AUTH, 401),
]


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize(("name", "make", "kind", "status"), FAULTS, ids=[f[0] for f in FAULTS])
async def test_http_faults_become_typed_errors(protocol: str, name: str, make: Any,
                                               kind: ErrorKind, status: int) -> None:
    """Each HTTP-level fault yields its kind, status, a hint and a redacted body excerpt."""
    with trio.fail_after(10):
        async with open_fake_server([make(), SCRIPTED]) as server, \
                httpx.AsyncClient() as client:
            _, err, _ = await collect(provider(server, protocol, client), Request("m", []),
                                      stream=True)
    assert err is not None
    assert (err.kind, err.status, err.provider) == (kind, status, "p")
    assert err.hint and err.details
    assert len(err.details) <= 400 and KEY not in err.details and KEY not in err.message
    if name == "rate_limited":
        assert err.retry_after == 7
    if name == "html_error":
        assert "<html" in err.details.lower()
    if name == "echo_auth":
        assert "[REDACTED]" in err.details


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_cut_mid_stream_is_stream_interrupted(protocol: str) -> None:
    """A connection closed part-way through a stream is stream_interrupted, output started."""
    with trio.fail_after(10):
        async with open_fake_server([faults.cut_mid_stream(then=SCRIPTED, after_events=3)]) \
                as server, httpx.AsyncClient() as client:
            _, err, events = await collect(provider(server, protocol, client), Request("m", []),
                                           stream=True)
    assert err is not None and err.kind is ErrorKind.STREAM_INTERRUPTED
    assert err.retryable
    shown = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert "Hello there, general.".startswith(shown)  # only what really arrived


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_malformed_chunk_is_malformed_response(protocol: str) -> None:
    """Invalid JSON in a data line is malformed_response, never another exception."""
    with trio.fail_after(10):
        async with open_fake_server([faults.malformed_chunk(then=SCRIPTED, after_events=1)]) \
                as server, httpx.AsyncClient() as client:
            _, err, _ = await collect(provider(server, protocol, client), Request("m", []),
                                      stream=True)
    assert err is not None and err.kind is ErrorKind.MALFORMED_RESPONSE
    assert err.provider == "p" and err.hint


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("after", [None, 2])
async def test_stall_is_a_timeout(protocol: str, after: int | None, autojump_clock: Any) -> None:
    """A server that stops sending (before headers or mid-stream) is a timeout after
    timeout.read, in virtual time."""
    with trio.fail_after(1000):
        async with open_fake_server([faults.stall(3600, then=SCRIPTED, after_events=after)]) \
                as server, httpx.AsyncClient() as client:
            start = trio.current_time()
            _, err, _ = await collect(
                provider(server, protocol, client, timeouts=Timeouts(5, 30, 600)),
                Request("m", []), stream=True)
            elapsed = trio.current_time() - start
    assert err is not None and err.kind is ErrorKind.TIMEOUT and err.retryable
    assert "timeout.read" in err.message
    assert elapsed == pytest.approx(30, abs=1)


async def test_connection_refused_is_connection_error() -> None:
    """Nothing listening on the port: a connection error naming the URL."""
    async with open_fake_server([]) as server:
        port = server.port
    spec = ProviderSpec("p", "openai-chat", f"http://127.0.0.1:{port}/v1", api_key=KEY)
    async with httpx.AsyncClient() as client:
        with pytest.raises(ProviderError) as info:
            await HTTPProvider(spec, client).attempt(Request("m", []))
    assert info.value.kind is ErrorKind.CONNECTION
    assert f"127.0.0.1:{port}" in info.value.message


async def test_stale_keepalive_connection_is_resent_once() -> None:
    """A connection closed without a byte of answer is sent again once within the same
    attempt (no error); twice in a row it is a connection error."""
    with trio.fail_after(10):
        async with open_fake_server([faults.dropped_connection(), SCRIPTED]) as server, \
                httpx.AsyncClient() as client:
            resp, err, _ = await collect(provider(server, "openai-chat", client),
                                         Request("m", []), stream=True)
            assert err is None and resp is not None and resp.text == "Hello there, general."
            assert server.request_count == 2
            server.add(faults.dropped_connection(), faults.dropped_connection(), SCRIPTED)
            _, err, _ = await collect(provider(server, "openai-chat", client),
                                      Request("m", []), stream=True)
    assert err is not None and err.kind is ErrorKind.CONNECTION and err.retryable


CLIENT_RUN = Response("resp_cr", "gpt-5.1", [
    TextPart("Running it."),
    ToolCallPart("call_c", "run_python", 'print("hi")\n', "ctc_1", "custom"),
    ToolCallPart("call_s", "shell", '{"commands": ["ls -la"], "max_output_length": 100}',
                 "sh_1", "shell"),
], None, "tool_calls", Usage(20, 9))


@pytest.mark.parametrize("stream", [True, False])
async def test_client_run_responses_items_arrive_as_calls_of_their_kind(stream: bool) -> None:
    """Over loopback, a Responses answer carrying a custom_tool_call and a shell_call
    decodes through the HTTP runtime to ToolCallParts of those kinds; the next request
    sends them back as their items with the matching output items."""
    with trio.fail_after(10):
        async with open_fake_server([CLIENT_RUN, SCRIPTED]) as server, \
                httpx.AsyncClient() as client:
            p = provider(server, "openai-responses", client)
            resp, err, events = await collect(p, Request("m", [Message.user("go")]),
                                              stream=stream)
            assert err is None and resp is not None
            assert [(c.id, c.kind, c.name, c.item_id) for c in resp.tool_calls] == [
                ("call_c", "custom", "run_python", "ctc_1"),
                ("call_s", "shell", "shell", "sh_1")]
            assert resp.tool_calls[0].arguments == 'print("hi")\n'
            assert json.loads(resp.tool_calls[1].arguments) == {
                "commands": ["ls -la"], "max_output_length": 100}
            assert resp.stop == "tool_calls"
            kinds = [e.kind for e in events if isinstance(e, ToolCallStart)]
            assert kinds == ["custom", "shell"]
            results = Message("tool", [
                ToolResultPart("call_c", "hi\n", kind="custom"),
                ToolResultPart("call_s", "a.txt\n", kind="shell", meta={"outputs": [
                    {"stdout": "a.txt\n", "stderr": "", "exit_code": 0}]})])
            history = Request("m", [Message.user("go"), resp.message(), results])
            again, err, _ = await collect(p, history, stream=stream)
            assert err is None and again is not None
    sent = server.requests[1].body["input"]
    assert [i["type"] for i in sent[1:]] == [
        "message", "custom_tool_call", "shell_call", "custom_tool_call_output",
        "shell_call_output"]
    assert sent[4] == {"type": "custom_tool_call_output", "call_id": "call_c", "output": "hi\n"}
    assert sent[5] == {"type": "shell_call_output", "call_id": "call_s",
                       "max_output_length": 100, "output": [
                           {"stdout": "a.txt\n", "stderr": "",
                            "outcome": {"type": "exit", "exit_code": 0}}]}
    canonical = server.requests[1].canonical
    assert [(c.id, c.kind) for c in canonical.messages[1].tool_calls] == [
        ("call_c", "custom"), ("call_s", "shell")]


async def test_a_capture_with_client_run_items_replays_through_the_runtime(
        tmp_path: Path) -> None:
    """A captured Responses stream holding client-run items, served from a recording file
    over loopback, decodes through the runtime exactly as its expect says."""
    from tests.wire.test_client_calls import ITEMS, recording_of

    inter, exp = recording_of(ITEMS)
    path = tmp_path / "openai-responses" / "capture.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"source": "test", "protocol": "openai-responses",
                                "provider": "openai", "categories": ["stream"],
                                "interactions": [inter], "expect": [exp]}))
    with trio.fail_after(10):
        async with open_fake_server(Script.from_recording(path)) as server, \
                httpx.AsyncClient() as client:
            resp, err, events = await collect(provider(server, "openai-responses", client),
                                              Request("m", [Message.user("go")]), stream=True)
    assert err is None and resp is not None
    assert [c.kind for c in resp.tool_calls] == [
        "custom", "shell", "local_shell", "apply_patch", "function"]
    assert_matches("openai-responses", resp, err, exp,
                   argument_deltas=function_argument_deltas(events))
