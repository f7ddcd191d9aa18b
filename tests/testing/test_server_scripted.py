"""Scripted canonical responses served by the fake provider decode back, through the
project's own codecs, to the same text and tool calls; recorded requests decode to the
canonical request."""

from __future__ import annotations

import importlib
import importlib.util
import json
from types import ModuleType
from typing import Any

import httpx
import pytest
import trio

from runtime.errors import ErrorKind, ProviderError
from runtime.events import Event, assemble
from runtime.model import (
    Message,
    Request,
    Response,
    TextPart,
    ToolCallPart,
    ToolResultPart,
    ToolSpec,
    Usage,
)
from runtime.testing import faults
from runtime.testing.script import ENCODERS, RecordedRequest
from runtime.testing.server import open_fake_server
from runtime.wire import codec_for
from tests.testing import PROTOCOLS, post, url
from tests.wire.streams import decode_chunks

ANSWER = Response(
    id="resp_fake_1", model="fake-model",
    parts=[
        TextPart("Let me look at both files, then I will summarise them for you."),
        ToolCallPart("call_1", "read_file", '{"path": "notes/a.txt"}'),
        ToolCallPart("call_2", "list_dir", '{"path": "."}'),
    ],
    usage=Usage(input_tokens=120, output_tokens=40),
)


def _missing(protocol: str) -> str | None:
    """Which of the protocol's client codec and server encoder is not written yet."""
    for name in (f"runtime.wire.{ENCODERS[protocol]}",
                 f"runtime.testing.wire.{ENCODERS[protocol]}"):
        if importlib.util.find_spec(name) is None:
            return name
    return None


# each protocol, skipped with a clear reason while its codec or encoder is missing
PROTOCOL_PARAMS = [
    pytest.param(p, marks=pytest.mark.skipif(
        _missing(p) is not None, reason=f"{_missing(p)} is not written yet"))
    for p in PROTOCOLS
]


def _codecs(protocol: str) -> tuple[ModuleType, ModuleType]:
    """The client codec and the server encoder of a protocol."""
    return codec_for(protocol), importlib.import_module(f"runtime.testing.wire.{ENCODERS[protocol]}")


def _decode(codec: ModuleType, chunks: list[bytes], stream: bool) -> list[Event]:
    if not stream:
        events: list[Event] = codec.decode_body(b"".join(chunks))
        return events
    return decode_chunks(codec, chunks)


def _calls(resp: Response) -> list[tuple[str, str, Any]]:
    return [(c.id, c.name, json.loads(c.arguments)) for c in resp.tool_calls]


def _request(codec: ModuleType, stream: bool, messages: list[Message] | None = None
             ) -> dict[str, Any]:
    req = Request(model="fake-model", system="Be brief.",
                  messages=messages or [Message.user("Summarise my notes.")],
                  tools=[ToolSpec("read_file", "Read a file"), ToolSpec("list_dir", "List")])
    body: dict[str, Any] = codec.encode_request(req, stream=stream)
    return body


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "json"])
@pytest.mark.parametrize("protocol", PROTOCOL_PARAMS)
async def test_scripted_response_decodes_back(protocol: str, stream: bool) -> None:
    """Text, tool calls and usage survive encode -> HTTP -> decode -> assemble."""
    codec, _ = _codecs(protocol)
    with trio.fail_after(10):
        async with open_fake_server([ANSWER], chunk_chars=5) as server, \
                httpx.AsyncClient() as client:
            r, chunks = await post(client, server, protocol, _request(codec, stream))
    assert r.status_code == 200
    assert ("text/event-stream" in r.headers["content-type"]) is stream
    if stream:
        assert r.headers["transfer-encoding"] == "chunked"
    got = assemble(_decode(codec, chunks, stream), protocol)
    assert got.text == ANSWER.text
    assert _calls(got) == _calls(ANSWER)
    assert got.usage is not None and got.usage.input_tokens == 120
    assert got.stop == "tool_calls"
    assert server.requests[0].stream is stream


@pytest.mark.parametrize("protocol", PROTOCOL_PARAMS)
async def test_recorded_request_decodes_to_canonical(protocol: str) -> None:
    """``RecordedRequest.canonical`` is the request the client encoded."""
    codec, _ = _codecs(protocol)
    with trio.fail_after(10):
        async with open_fake_server([ANSWER]) as server, httpx.AsyncClient() as client:
            await post(client, server, protocol, _request(codec, True))
    canonical = server.requests[0].canonical
    assert canonical.model == "fake-model"
    assert canonical.system == "Be brief."
    assert [m.text for m in canonical.messages] == ["Summarise my notes."]
    assert [t.name for t in canonical.tools] == ["read_file", "list_dir"]


@pytest.mark.parametrize("protocol", PROTOCOL_PARAMS)
async def test_callable_drives_a_tool_loop(protocol: str) -> None:
    """A callable entry answers by what the request holds: a tool call, then, once the
    tool result comes back, a final text."""
    codec, _ = _codecs(protocol)

    def agent(req: RecordedRequest) -> Response:
        results = [p for m in req.canonical.messages for p in m.parts
                   if isinstance(p, ToolResultPart)]
        if results:
            return Response(parts=[TextPart(f"The file says {results[0].content}.")])
        return Response(parts=[ToolCallPart("call_9", "read_file", '{"path": "a.txt"}')])

    with trio.fail_after(10):
        async with open_fake_server([agent, agent]) as server, httpx.AsyncClient() as client:
            _, chunks = await post(client, server, protocol, _request(codec, False))
            first = assemble(_decode(codec, chunks, False), protocol)
            assert [c.name for c in first.tool_calls] == ["read_file"]
            history = [Message.user("Summarise my notes."), first.message(),
                       Message("tool", [ToolResultPart(first.tool_calls[0].id, "hello")])]
            _, chunks = await post(client, server, protocol, _request(codec, False, history))
            second = assemble(_decode(codec, chunks, False), protocol)
    assert second.text == "The file says hello."
    assert server.request_count == 2


@pytest.mark.parametrize("protocol", PROTOCOL_PARAMS)
async def test_cut_scripted_stream_leaves_a_partial_answer(protocol: str) -> None:
    """A stream cut after N events gives the client exactly those events, then an error."""
    codec, encoder = _codecs(protocol)
    events = encoder.encode_stream(ANSWER, chunk_chars=8)
    received: list[bytes] = []
    with trio.fail_after(10):
        async with open_fake_server([faults.cut_mid_stream(then=ANSWER, after_events=3)]) \
                as server, httpx.AsyncClient() as client:
            with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
                async with client.stream("POST", url(server, protocol),
                                         json=_request(codec, True)) as r:
                    async for chunk in r.aiter_raw():
                        received.append(chunk)
    assert b"".join(received) == b"".join(events[:3])


@pytest.mark.parametrize("protocol", PROTOCOL_PARAMS)
async def test_malformed_chunk_becomes_malformed_response(protocol: str) -> None:
    """The client codec reports the broken event as a malformed response."""
    codec, _ = _codecs(protocol)
    with trio.fail_after(10):
        async with open_fake_server([faults.malformed_chunk(then=ANSWER, after_events=2)]) \
                as server, httpx.AsyncClient() as client:
            _, chunks = await post(client, server, protocol, _request(codec, True))
    with pytest.raises(ProviderError) as info:
        _decode(codec, chunks, True)
    assert info.value.kind is ErrorKind.MALFORMED_RESPONSE
