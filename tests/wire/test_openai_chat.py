"""The openai-chat codec against every recorded Chat Completions / OpenRouter exchange:
responses decode to what ``expect`` records, recorded requests survive
``decode_request`` -> ``encode_request`` with their tools, roles, pairing and reasoning."""

from __future__ import annotations

import copy
import json
from typing import Any
from urllib.parse import urlsplit

import pytest

from runtime.errors import ProviderError, error_from_event, error_from_response
from runtime.events import ErrorEvent, Event, ToolCallDelta, assemble
from runtime.model import Response
from runtime.testing.wire.openai_chat import decode_request
from runtime.wire import openai_chat as oc
from runtime.wire.sse import SSEDecoder
from tests.recordings import assert_matches, interactions

CASES = interactions("openai-chat") + interactions("openrouter")
IDS = [c[0] for c in CASES]

BASE_URLS = {
    "openai": "https://api.openai.com/v1",
    "groq": "https://api.groq.com/openai/v1",
    "mistral": "https://api.mistral.ai/v1",
    "deepseek": "https://api.deepseek.com",
    "openrouter": "https://openrouter.ai/api/v1",
}


def _is_stream(inter: dict[str, Any]) -> bool:
    return "event-stream" in inter["response"]["headers"].get("content-type", "")


def decode_stream(body: bytes) -> tuple[list[Event], int]:
    sse = SSEDecoder()
    dec = oc.StreamDecoder()
    events: list[Event] = []
    for ev in sse.feed(body) + sse.close():
        events.extend(dec.feed(ev))
    events.extend(dec.close())
    return events, dec.sse_events


def decode_interaction(inter: dict[str, Any]) -> tuple[
        Response | None, ProviderError | None, dict[int, int] | None, int | None]:
    """(response, error, argument deltas per call index, SSE event count) as a client sees
    them."""
    status = inter["response"]["status"]
    headers = inter["response"]["headers"]
    body = inter["response"]["body"].encode()
    if status >= 400:
        return None, error_from_response(status, headers, body), None, None
    count: int | None = None
    deltas: dict[int, int] | None = None
    if _is_stream(inter):
        events, count = decode_stream(body)
        deltas = {}
        for ev in events:
            if isinstance(ev, ToolCallDelta):
                deltas[ev.index] = deltas.get(ev.index, 0) + 1
    else:
        events = oc.decode_body(body)
    error = None
    for ev in events:
        if isinstance(ev, ErrorEvent):
            error = error_from_event(ev.kind, ev.message, status=ev.status, type=ev.type,
                                     code=ev.code)
    return assemble(events, protocol=oc.PROTOCOL), error, deltas, count


def _expect_for(exp: dict[str, Any], resp: Response | None) -> dict[str, Any]:
    """Work around one recording whose streamed ``reasoning_details`` record has no ``id``
    key and ``text: ""`` where ``reasoning_view`` gives an ``id`` and ``text: None`` (the
    non-stream records have both): fill the missing id from the decoded part, map "" to
    None. Every other field is compared as recorded."""
    exp = copy.deepcopy(exp)
    for i, r in enumerate(exp["reasoning"]):
        if r["type"].startswith("reasoning_details:") and "id" not in r:
            have = resp.reasoning[i] if resp is not None and i < len(resp.reasoning) else None
            r["id"] = have.id if have is not None else None
            r["text"] = r["text"] or None
    return exp


@pytest.mark.parametrize(("tid", "rec", "inter", "exp"), CASES, ids=IDS)
def test_recorded_response_decodes_to_expect(tid: str, rec: dict[str, Any],
                                             inter: dict[str, Any], exp: dict[str, Any]) -> None:
    """Every recorded response (JSON, stream, error) decodes to what its expect records."""
    resp, error, deltas, count = decode_interaction(inter)
    folder = tid.split("/", 1)[0]
    assert_matches(folder, resp, error, _expect_for(exp, resp), argument_deltas=deltas)
    if _is_stream(inter) and inter["response"]["status"] < 400:
        assert count == exp["sse_event_count"]


# --- request shape -------------------------------------------------------------------------

def _text_of(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(c.get("text", "") for c in content if c.get("type") == "text")


def _images_of(content: Any) -> list[str]:
    if not isinstance(content, list):
        return []
    return [c["image_url"]["url"] for c in content if c.get("type") == "image_url"]


def message_view(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Messages as the fields that must survive a round trip. ``developer`` is a system
    message, and the leading system messages are one system prompt (``Request.system``)."""
    out: list[dict[str, Any]] = []
    for m in messages:
        role = "system" if m["role"] == "developer" else m["role"]
        if role == "system" and out and out[-1]["role"] == "system":
            out[-1]["text"] += "\n\n" + _text_of(m.get("content"))
            continue
        view: dict[str, Any] = {"role": role, "text": _text_of(m.get("content")),
                                "images": _images_of(m.get("content"))}
        if role == "assistant":
            view["tool_calls"] = [(c["id"], c["function"]["name"], c["function"]["arguments"])
                                  for c in m.get("tool_calls") or []]
            view["reasoning_content"] = m.get("reasoning_content")
            view["reasoning_details"] = m.get("reasoning_details")
        if role == "tool":
            view["tool_call_id"] = m["tool_call_id"]
        out.append(view)
    return out


def tools_view(tools: list[dict[str, Any]] | None) -> list[Any]:
    out: list[Any] = []
    for t in tools or []:
        fn = t.get("function")
        if isinstance(fn, dict):
            out.append(("function", fn["name"], fn.get("parameters"), fn.get("description") or ""))
        else:
            out.append(t)  # provider-native tools travel verbatim
    return out


def _dialect(rec: dict[str, Any]) -> str | None:
    return "openrouter" if rec["protocol"] == "openrouter" else (
        "openai" if rec["provider"] == "openai" else None)


_MAX = ("max_tokens", "max_completion_tokens")


@pytest.mark.parametrize(("tid", "rec", "inter", "exp"), CASES, ids=IDS)
def test_recorded_request_round_trips(tid: str, rec: dict[str, Any], inter: dict[str, Any],
                                      exp: dict[str, Any]) -> None:
    """decode_request then encode_request keeps tools, roles, pairing, reasoning passback
    and every other top-level field of the recorded body; url() gives the recorded path."""
    body = inter["request"]["body"]
    req = decode_request(body)
    out = oc.encode_request(req, stream=bool(body.get("stream")), dialect=_dialect(rec))
    # JSON-clean, as it goes on the wire
    out = json.loads(json.dumps(out))
    assert out["model"] == body["model"]
    assert tools_view(out.get("tools")) == tools_view(body.get("tools"))
    got, want = message_view(out["messages"]), message_view(body["messages"])
    assert [m["role"] for m in got] == [m["role"] for m in want]
    assert got == want
    # tool-call / tool-result pairing, in call order
    calls = [c[0] for m in got if m["role"] == "assistant" for c in m["tool_calls"]]
    results = [m["tool_call_id"] for m in got if m["role"] == "tool"]
    assert results == [c for c in calls if c in results]
    # every other recorded field comes back with the same value (an explicit null may be
    # left out: it means the provider's default either way)
    for key, value in body.items():
        if key in ("messages", "tools") or key in _MAX:
            continue
        assert out.get(key, "<missing>" if value is not None else None) == value, key
    sent_max = [out[k] for k in _MAX if k in out]
    assert sent_max == [body[k] for k in _MAX if k in body]
    path = inter["request"]["path"].split("?", 1)[0]
    assert urlsplit(oc.url(BASE_URLS[rec["provider"]])).path == path


def test_recordings_are_present() -> None:
    """The recordings folder is there, so the parametrized tests above are not vacuous."""
    assert len(CASES) >= 40
    assert any(_is_stream(c[2]) for c in CASES)
