"""The openai-chat codec against every recorded Chat Completions / OpenRouter exchange:
responses decode to what ``expect`` records, recorded requests survive
``decode_request`` -> ``encode_request`` with their tools, roles, pairing and reasoning."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import pytest

from runtime.testing.wire.openai_chat import decode_request
from runtime.wire import openai_chat as oc
from tests.recordings import assert_matches, decode_recorded, interactions, is_stream

CASES = interactions("openai-chat") + interactions("openrouter")
IDS = [c[0] for c in CASES]

BASE_URLS = {
    "openai": "https://api.openai.com/v1",
    "groq": "https://api.groq.com/openai/v1",
    "mistral": "https://api.mistral.ai/v1",
    "deepseek": "https://api.deepseek.com",
    "openrouter": "https://openrouter.ai/api/v1",
}


@pytest.mark.parametrize(("tid", "rec", "inter", "exp"), CASES, ids=IDS)
def test_recorded_response_decodes_to_expect(tid: str, rec: dict[str, Any],
                                             inter: dict[str, Any], exp: dict[str, Any]) -> None:
    """Every recorded response (JSON, stream, error) decodes to what its expect records."""
    folder = tid.split("/", 1)[0]
    got = decode_recorded(folder, inter)
    assert_matches(folder, got.response, got.error, exp, argument_deltas=got.argument_deltas)
    if got.sse_events is not None:
        assert got.sse_events == exp["sse_event_count"]


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
    assert any(is_stream(c[2]) for c in CASES)
