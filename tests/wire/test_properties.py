"""Properties every codec shares: split invariance, robustness, purity, the decode tool."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runtime.errors import ErrorKind, ProviderError
from runtime.events import Event
from runtime.wire import PROTOCOLS, codec_for
from runtime.wire.__main__ import decode_capture
from tests.recordings import CODEC_OF, ROOT, interactions, recording_files
from tests.wire.streams import cut, fast_run, merge_text, standard_run

STREAMS = [(CODEC_OF[rec["protocol"]], inter["response"]["body"].encode())
           for _, rec, inter, exp in interactions() if exp["stream"]]


def stream_events(protocol: str, chunks: list[bytes]) -> tuple[list[Event], str | None]:
    """All normalized events of a chunked stream, and the error kind that ended it."""
    out, exc = standard_run(protocol, chunks)
    return out, exc.kind.value if exc is not None else None


def fast_stream_events(protocol: str, chunks: list[bytes]
                       ) -> tuple[list[Event], str | None, str | None]:
    """``stream_events`` through the fast path the HTTP provider takes (``EventSplitter``,
    the data as bytes, ``feed_all`` per chunk), with the message of the error that ended
    it; text runs merged (``merge_text``)."""
    out, exc = fast_run(protocol, chunks)
    return (out, *_failure(exc))


def standard_stream_events(protocol: str, chunks: list[bytes]
                           ) -> tuple[list[Event], str | None, str | None]:
    """``fast_stream_events`` by the standard path (``SSEDecoder``, ``feed``)."""
    out, exc = standard_run(protocol, chunks)
    return (merge_text(out), *_failure(exc))


def _failure(exc: ProviderError | None) -> tuple[str | None, str | None]:
    return (exc.kind.value, exc.message) if exc is not None else (None, None)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(STREAMS), st.lists(st.integers(min_value=0), max_size=30))
def test_the_fast_path_gives_the_standard_events_for_any_split(case: tuple[str, bytes],
                                                               cuts: list[int]) -> None:
    """The HTTP provider's fast path (bytes data, ``feed_data``) decodes every recorded
    stream, split anywhere, to the events the standard decoder gives."""
    protocol, body = case
    assert fast_stream_events(protocol, cut(body, cuts)) == \
        standard_stream_events(protocol, [body])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(STREAMS), st.integers(min_value=0), st.binary(min_size=1, max_size=3),
       st.lists(st.integers(min_value=0), max_size=8))
def test_the_fast_path_agrees_on_damaged_streams(case: tuple[str, bytes], at: int,
                                                 junk: bytes, cuts: list[int]) -> None:
    """Bytes overwritten anywhere in a recorded stream (invalid UTF-8, a broken JSON
    document, a broken line): the fast path gives the same events or the same error."""
    protocol, body = case
    i = at % len(body)
    damaged = body[:i] + junk + body[i + len(junk):]
    assert fast_stream_events(protocol, cut(damaged, cuts)) == \
        standard_stream_events(protocol, [damaged])


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(list(PROTOCOLS)), st.lists(st.binary(max_size=80), max_size=12))
def test_the_fast_path_agrees_on_random_bytes(protocol: str, chunks: list[bytes]) -> None:
    """Random bytes: the fast path ends as the standard one, event for event."""
    assert fast_stream_events(protocol, chunks) == standard_stream_events(protocol, chunks)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(STREAMS), st.lists(st.integers(min_value=0), max_size=30))
def test_any_split_gives_the_same_normalized_events(case: tuple[str, bytes],
                                                    cuts: list[int]) -> None:
    """Chunk boundaries never change the normalized events of a recorded stream."""
    protocol, body = case
    chunks = cut(body, cuts)
    assert stream_events(protocol, chunks) == stream_events(protocol, [body])


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(list(PROTOCOLS)), st.lists(st.binary(max_size=80), max_size=12))
def test_random_bytes_only_ever_raise_provider_errors(protocol: str, chunks: list[bytes]) -> None:
    """Random bytes as a stream end in events or a ProviderError, never another exception."""
    _, kind = stream_events(protocol, chunks)
    assert kind in (None, "malformed_response", "stream_interrupted")


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(list(PROTOCOLS)),
       st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                    lambda c: st.lists(c, max_size=4) | st.dictionaries(
                        st.sampled_from(["type", "choices", "delta", "content", "index", "id",
                                         "usage", "output", "message", "error", "item"]),
                        c, max_size=4), max_leaves=20))
def test_wrong_shapes_are_malformed_response(protocol: str, doc: object) -> None:
    """JSON of the wrong shape, as a body or as a stream event, is malformed_response."""
    data = json.dumps(doc).encode()
    for body in (data, b"data: " + data + b"\n\n"):
        try:
            if body.startswith(b"data:"):
                stream_events(protocol, [body])
            else:
                codec_for(protocol).decode_body(body)
        except ProviderError as exc:
            assert exc.kind in (ErrorKind.MALFORMED_RESPONSE, ErrorKind.STREAM_INTERRUPTED), exc


def test_wire_package_imports_neither_trio_nor_httpx() -> None:
    """The codecs are sans-I/O: no module of runtime/wire imports trio or httpx."""
    wire = ROOT / "runtime" / "wire"
    for path in wire.glob("*.py"):
        text = path.read_text()
        assert not re.search(r"^\s*(import|from)\s+(trio|httpx)\b", text, re.M), path.name


def run_decode(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "runtime.wire", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("folder", ["openai-chat", "openai-responses", "anthropic"])
@pytest.mark.parametrize("stream", [True, False])
def test_decode_tool_gives_documented_json(folder: str, stream: bool, tmp_path: Path) -> None:
    """`python -m runtime.wire decode` prints text, tool_calls, finish_reason, usage,
    reasoning and error for a captured body, the same as the recording's expect."""
    found = [(inter, exp) for _, _, inter, exp in interactions(folder)
             if exp["stream"] == stream and exp["status"] == 200 and not exp["error"]]
    if not found:
        pytest.skip(f"no {folder} recording with stream={stream}")
    inter, exp = found[0]
    capture = tmp_path / "body.txt"
    capture.write_text(inter["response"]["body"])
    proc = run_decode("decode", folder, str(capture), *(["--stream"] if stream else []))
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert set(out) >= {"text", "tool_calls", "finish_reason", "usage", "reasoning", "error"}
    assert out["text"] == exp["text"] and out["finish_reason"] == exp["finish_reason"]
    assert [(c["id"], c["name"], c["arguments"]) for c in out["tool_calls"]] == [
        (c["id"], c["name"], c["arguments"]) for c in exp["tool_calls"]]
    assert len(out["reasoning"]) == len(exp["reasoning"])
    assert out["error"] is None
    if exp["usage"] is not None:
        assert out["usage"]["output_tokens"] == exp["usage"]["output_tokens"]
    assert out == decode_capture(folder, inter["response"]["body"].encode(), stream=stream)


def test_decode_tool_reports_errors_in_bodies_and_streams(tmp_path: Path) -> None:
    """An error body given alone and an error inside a 200 stream both fill `error`."""
    cases = [c for c in interactions() if c[3]["error"]]
    assert cases
    for _, rec, inter, exp in cases:
        out = decode_capture(CODEC_OF[rec["protocol"]], inter["response"]["body"].encode())
        assert out["error"] is not None, rec["source"]
        assert exp["error"]["message"] in out["error"]["message"]


def test_decode_tool_usage_errors_exit_2(tmp_path: Path) -> None:
    """A missing file or an unknown protocol is one clear line on stderr and exit 2."""
    missing = run_decode("decode", "anthropic", str(tmp_path / "nope.txt"))
    assert missing.returncode == 2 and missing.stdout == ""
    assert len(missing.stderr.strip().splitlines()) == 1 and "nope.txt" in missing.stderr
    bad = run_decode("decode", "gopher", str(tmp_path / "x"))
    assert bad.returncode == 2 and "gopher" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1


def test_recordings_folder_is_present() -> None:
    """The corpus is found (a missing folder would silently skip the replay tests)."""
    assert len(recording_files()) >= 60


def test_responses_phase_goes_back_with_the_text() -> None:
    """gpt-5 `phase` on a Responses message item (commentary / final_answer) is decoded,
    streamed or not, and sent back on the next turn; other protocols never see it."""
    from runtime.events import assemble
    from runtime.model import Message, Request, Response, TextPart, ToolCallPart
    from runtime.testing.wire import openai_responses as server_side
    from runtime.wire import openai_chat, openai_responses

    [case] = [c for c in interactions("openai-responses") if "phase_streamed" in c[0]
              and c[3]["stream"] and c[2]["request"]["body"].get("input")
              and c[0].endswith("#0")]
    body = case[2]["response"]["body"].encode()
    events, _ = stream_events("openai-responses", [body])
    resp = assemble(events, "openai-responses")
    phases = [p.meta for p in resp.parts if isinstance(p, TextPart)]
    assert phases and all(m == {"phase": "commentary"} for m in phases)
    sent = openai_responses.encode_request(Request("m", [Message.user("q"), resp.message()]),
                                           stream=True)
    messages = [i for i in sent["input"] if i.get("type") == "message" and
                i.get("role") == "assistant"]
    assert [m["phase"] for m in messages] == ["commentary"] * len(phases)
    chat = openai_chat.encode_request(Request("m", [resp.message()]), stream=True)
    assert "phase" not in json.dumps(chat)
    scripted = Response("r", "m", [TextPart("thinking aloud", meta={"phase": "commentary"}),
                                   ToolCallPart("c1", "f", "{}"),
                                   TextPart("final", meta={"phase": "final_answer"})])
    for streamed in (True, False):
        if streamed:
            evs, _ = stream_events("openai-responses", server_side.encode_stream(scripted))
        else:
            evs = openai_responses.decode_body(json.dumps(server_side.encode_json(scripted))
                                               .encode())
        back = assemble(evs, "openai-responses")
        assert [(p.text, p.meta) for p in back.parts if isinstance(p, TextPart)] == [
            ("thinking aloud", {"phase": "commentary"}), ("final", {"phase": "final_answer"})]
