"""The fake provider refuses a request over its window with each vendor's real
context-length error, over loopback, and our classifier reads it as context_length."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from runtime.context import ContextManager, ContextPolicy, tokens_from_error
from runtime.errors import ErrorKind, error_from_response
from runtime.model import Message, Request, Response, TextPart
from runtime.testing import open_fake_server
from runtime.wire import codec_for

from .conversations import SYSTEM, TOOLS, turn

CAPTURE = Path(__file__).parents[1] / "local" / "captures" / "error_exceed_context_size.json"
CASES = [("openai-chat", "vendor"), ("openai-responses", "vendor"), ("anthropic", "vendor"),
         ("openai-chat", "llama.cpp")]


def conversation(turns: int) -> list[Message]:
    messages = [Message.user("Fix the failing test.")]
    for n in range(turns):
        messages += turn("anthropic", n, 1, [3_000], n % 2 == 0, "")
    return messages


async def post(client: httpx.AsyncClient, base: str, protocol: str,
               messages: list[Message]) -> httpx.Response:
    codec = codec_for(protocol)
    body = codec.encode_request(Request("fake-model", messages, SYSTEM, TOOLS), stream=False)
    return await client.post(codec.url(base), json=body, headers=codec.headers("k"))


@pytest.mark.parametrize(("protocol", "dialect"), CASES)
async def test_refusal_is_the_vendors_and_classified(protocol: str, dialect: str) -> None:
    """Over the window: the vendor's 400, read as context_length, with both figures."""
    big = conversation(6)
    small = conversation(1)
    answer = Response(parts=[TextPart("ok")])
    async with open_fake_server([answer], max_context_tokens=2_000,
                                context_dialect=dialect) as server:  # type: ignore[arg-type]
        base = server.base_url(protocol)
        async with httpx.AsyncClient() as client:
            refused = [await post(client, base, protocol, big) for _ in range(2)]
            ok = await post(client, base, protocol, small)
    for resp in refused:
        assert resp.status_code == 400
        err = error_from_response(resp.status_code, dict(resp.headers), resp.content)
        assert err.kind is ErrorKind.CONTEXT_LENGTH, err
        count, window = tokens_from_error(resp.text)
        assert window == 2_000 and count == server.context_counts[0] > 2_000
    body = refused[0].json()
    if protocol == "anthropic":
        assert body["error"]["type"] == "invalid_request_error"
        assert body["error"]["message"].startswith("prompt is too long: ")
    elif dialect == "llama.cpp":
        assert set(body["error"]) == set(json.loads(CAPTURE.read_text())["error"])
        assert body["error"]["n_ctx"] == 2_000
    else:
        assert body["error"]["code"] == "context_length_exceeded"
        assert "maximum context length is 2000 tokens" in body["error"]["message"]
    assert server.context_refused == 2 and server.max_refused_in_a_row == 2
    assert ok.status_code == 200 and server.refused_in_a_row == 0
    assert server.script.remaining == []  # refusals consume no script entry
    assert server.context_counts[-1] <= 2_000 < server.context_counts[0]


async def test_counted_tokens_match_the_conductors_estimate() -> None:
    """The server counts what the conductor estimated, and reports it as usage, so one
    observation calibrates the estimate to the server exactly."""
    messages = conversation(3)
    m = ContextManager(ContextPolicy(reserve_output=500), 50_000, protocol="openai-chat")
    m.fit(messages, system=SYSTEM, tools=TOOLS)
    async with open_fake_server([Response(parts=[TextPart("ok")])],
                                max_context_tokens=50_000) as server:
        async with httpx.AsyncClient() as client:
            resp = await post(client, server.base_url("openai-chat"), "openai-chat", messages)
    reported = resp.json()["usage"]["prompt_tokens"]
    assert reported == server.context_counts[0]
    assert abs(reported - m.last_estimate) <= m.last_estimate * 0.1
    m.observe(reported)
    assert m.estimate(messages, system=SYSTEM, tools=TOOLS) == reported
