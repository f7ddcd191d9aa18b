"""The Anthropic codec against every recorded exchange: responses decode to what ``expect``
records, and recorded requests survive decode_request -> encode_request unchanged in shape."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest

from runtime.testing.wire import anthropic as server
from runtime.wire import anthropic
from tests.recordings import assert_matches, decode_recorded, interactions

INTERACTIONS = interactions("anthropic")
IDS = [i[0] for i in INTERACTIONS]


@pytest.mark.parametrize(("tid", "rec", "inter", "exp"), INTERACTIONS, ids=IDS)
def test_recorded_response(tid: str, rec: dict[str, Any], inter: dict[str, Any],
                           exp: dict[str, Any]) -> None:
    """Each recorded response decodes to the text, calls, usage and reasoning it carries."""
    got = decode_recorded("anthropic", inter)
    assert_matches("anthropic", got.response, got.error, exp,
                   argument_deltas=got.argument_deltas)
    if exp["stream"]:
        assert got.sse_events == exp["sse_event_count"]


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
