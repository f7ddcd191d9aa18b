"""The HTTP provider's fast path on hand-made streams at the edges of its hot paths: what a
run of text chunks merges must stop at every chunk that says more than text."""

from __future__ import annotations

import json

import pytest

from runtime.events import TextDelta
from tests.wire.test_properties import fast_stream_events, standard_stream_events


def chat(*deltas: dict[str, object], finish_at: int = -1, usage_at: int = -1) -> bytes:
    out = []
    for i, delta in enumerate(deltas):
        chunk: dict[str, object] = {"id": "c1", "model": "m", "choices": [
            {"index": 0, "delta": delta, "finish_reason": "stop" if i == finish_at else None}]}
        if i == usage_at:
            chunk["usage"] = {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}
        out.append(b"data: " + json.dumps(chunk).encode() + b"\n\n")
    return b"".join(out) + b"data: [DONE]\n\n"


CHAT_EDGES = {
    "text then finish in one chunk": chat({"content": "a"}, {"content": "b"}, {"content": "c"},
                                          finish_at=2),
    "usage with text": chat({"content": "a"}, {"content": "b"}, {"content": "c"}, usage_at=1),
    "reasoning inside a run": chat({"content": "a"}, {"content": "b"},
                                   {"reasoning_content": "r", "content": "c"},
                                   {"content": "d"}),
    "a tool call inside a run": chat(
        {"content": "a"}, {"content": "b"},
        {"tool_calls": [{"index": 0, "id": "t", "function": {"name": "f", "arguments": "{}"}}]},
        {"content": "d"}),
    "refusal": chat({"content": "a"}, {"content": "b"}, {"refusal": "no"}),
    "empty content": chat({"content": "a"}, {"content": ""}, {"content": "b"}),
}


@pytest.mark.parametrize("body", list(CHAT_EDGES.values()), ids=list(CHAT_EDGES))
def test_chat_edges_decode_as_the_standard_path(body: bytes) -> None:
    """Every chunk that says more than text ends the run and is read in full."""
    fast = fast_stream_events("openai-chat", [body])
    assert fast == standard_stream_events("openai-chat", [body])
    assert fast[1] is None
    for cut in range(1, len(body), 37):
        assert fast_stream_events("openai-chat", [body[:cut], body[cut:]]) == fast


def test_a_run_of_text_chunks_is_one_delta() -> None:
    """Plain text chunks of one read come as one TextDelta (after the first, which starts
    the answer)."""
    from runtime.wire import codec_for
    from runtime.wire.sse_split import EventSplitter

    body = chat(*({"content": w} for w in ("a", "b", "c", "d")), finish_at=3)
    out: list[object] = []
    codec_for("openai-chat").StreamDecoder().feed_all(EventSplitter().feed(body), out)
    texts = [ev for ev in out if isinstance(ev, TextDelta)]
    assert [t.text for t in texts] == ["a", "bc", "d"]
