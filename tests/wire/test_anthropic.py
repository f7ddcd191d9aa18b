"""The Anthropic codec against every recorded exchange: responses decode to what ``expect``
records, and recorded requests survive decode_request -> encode_request unchanged in shape."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest

from runtime.errors import ProviderError, error_from_event, error_from_response
from runtime.events import ErrorEvent, Event, ToolCallDelta, assemble
from runtime.model import Response
from runtime.testing.wire import anthropic as server
from runtime.wire import anthropic
from runtime.wire.sse import SSEDecoder
from tests.recordings import assert_matches, interactions

INTERACTIONS = interactions("anthropic")
IDS = [i[0] for i in INTERACTIONS]


def _stream_events(body: bytes) -> tuple[list[Event], int]:
    sse = SSEDecoder()
    dec = anthropic.StreamDecoder()
    events: list[Event] = []
    for ev in sse.feed(body) + sse.close():
        events += dec.feed(ev)
    events += dec.close()
    return events, dec.sse_events


def _decode(response: dict[str, Any]
            ) -> tuple[Response | None, ProviderError | None, dict[int, int] | None, int | None]:
    body = response["body"].encode()
    if response["status"] >= 400:
        return None, error_from_response(response["status"], response["headers"], body), \
            None, None
    stream = "text/event-stream" in response["headers"].get("content-type", "")
    count = None
    deltas: dict[int, int] | None = None
    if stream:
        events, count = _stream_events(body)
        deltas = {}
        for ev in events:
            if isinstance(ev, ToolCallDelta):
                deltas[ev.index] = deltas.get(ev.index, 0) + 1
    else:
        events = anthropic.decode_body(body)
    error = None
    for ev in events:
        if isinstance(ev, ErrorEvent):
            error = error_from_event(ev.kind, ev.message, status=ev.status, type=ev.type,
                                     code=ev.code)
    return assemble(events, protocol=anthropic.PROTOCOL), error, deltas, count


@pytest.mark.parametrize(("tid", "rec", "inter", "exp"), INTERACTIONS, ids=IDS)
def test_recorded_response(tid: str, rec: dict[str, Any], inter: dict[str, Any],
                           exp: dict[str, Any]) -> None:
    """Each recorded response decodes to the text, calls, usage and reasoning it carries."""
    resp, error, deltas, count = _decode(inter["response"])
    assert_matches("anthropic", resp, error, exp, argument_deltas=deltas)
    if exp["stream"]:
        assert count == exp["sse_event_count"]


def _shape(body: dict[str, Any]) -> dict[str, Any]:
    """The fields a request must keep through a decode/encode round trip."""
    msgs = body["messages"]
    tools = body.get("tools") or []
    system = body.get("system")
    if isinstance(system, list):
        system = "\n\n".join(b["text"] for b in system)
    return {
        "roles": [m["role"] for m in msgs],
        "client_tools": [(t["name"], t["input_schema"]) for t in tools if "input_schema" in t],
        "server_tools": [t for t in tools if "input_schema" not in t],
        "calls": [[b["id"] for b in m["content"] if b["type"] == "tool_use"]
                  for m in msgs if isinstance(m["content"], list)],
        "results": [[b["tool_use_id"] for b in m["content"] if b["type"] == "tool_result"]
                    for m in msgs if isinstance(m["content"], list)],
        "reasoning": [b for m in msgs if isinstance(m["content"], list) for b in m["content"]
                      if b["type"] in ("thinking", "redacted_thinking")],
        "builtin": [b for m in msgs if isinstance(m["content"], list) for b in m["content"]
                    if b["type"] not in ("text", "image", "tool_use", "tool_result",
                                         "thinking", "redacted_thinking")],
        "system": system or None,
        "max_tokens": body["max_tokens"],
        "thinking": body.get("thinking"),
        "output_config": body.get("output_config"),
        "tool_choice": body.get("tool_choice"),
        "stream": body.get("stream", False),
    }


def _tool_inputs(body: dict[str, Any]) -> list[Any]:
    return [b["input"] for m in body["messages"] if isinstance(m["content"], list)
            for b in m["content"] if b["type"] == "tool_use"]


@pytest.mark.parametrize(("tid", "rec", "inter", "exp"), INTERACTIONS, ids=IDS)
def test_recorded_request_round_trip(tid: str, rec: dict[str, Any], inter: dict[str, Any],
                                     exp: dict[str, Any]) -> None:
    """decode_request then encode_request keeps tools, roles, pairing and reasoning."""
    recorded = inter["request"]["body"]
    req = server.decode_request(recorded)
    body = anthropic.encode_request(req, stream=bool(recorded.get("stream", False)))
    assert _shape(body) == _shape(recorded)
    assert _tool_inputs(body) == _tool_inputs(recorded)
    # and a second trip changes nothing at all
    again = anthropic.encode_request(server.decode_request(body), stream=body["stream"])
    assert again == body
    path = urlsplit(inter["request"]["path"]).path
    assert anthropic.url("https://api.anthropic.com").endswith(path)


def test_recordings_are_present() -> None:
    """The parametrized tests above really ran over something."""
    assert len(INTERACTIONS) >= 20
    assert any(exp["stream"] for *_, exp in INTERACTIONS)
