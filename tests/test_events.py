"""Normalized events and their assembly into a canonical response."""

from __future__ import annotations

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from runtime.events import (
    Assembler,
    Event,
    Finish,
    ReasoningDelta,
    ResponseStart,
    TextDelta,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    UsageEvent,
    assemble,
    events_of,
)
from runtime.model import (
    ReasoningPart,
    Response,
    TextPart,
    ToolCallPart,
    Usage,
    normalize_finish,
)


def test_interleaved_parallel_tool_calls_are_kept_apart_by_index() -> None:
    """Deltas of two calls arriving interleaved assemble into two complete calls in order."""
    events: list[Event] = [
        ResponseStart("r1", "m"),
        ToolCallStart(0, "a", "f"), ToolCallStart(1, "b", "g"),
        ToolCallDelta(0, '{"x"'), ToolCallDelta(1, '{"y"'), ToolCallDelta(1, ": 2}"),
        ToolCallDelta(0, ": 1}"), ToolCallEnd(1), ToolCallEnd(0),
        Finish("tool_calls", "tool_calls"),
    ]
    resp = assemble(events)
    assert [(c.id, c.name, c.arguments) for c in resp.tool_calls] == [
        ("a", "f", '{"x": 1}'), ("b", "g", '{"y": 2}')]
    assert resp.stop == "tool_calls"


def test_end_with_arguments_wins_over_deltas() -> None:
    """A ToolCallEnd carrying the full arguments replaces the concatenated deltas."""
    resp = assemble([ToolCallStart(0, "a", "f"), ToolCallDelta(0, '{"x": '),
                     ToolCallEnd(0, '{"x": 1}'), Finish("stop")])
    assert resp.tool_calls[0].arguments == '{"x": 1}'


def test_text_parts_split_by_index_and_reasoning_signature_accumulates() -> None:
    """Text with a new index starts a new part; signature deltas are concatenated."""
    resp = assemble([
        ReasoningDelta(0, "think", kind="thinking"), ReasoningDelta(0, signature="ab"),
        ReasoningDelta(0, signature="cd"), TextDelta("a", 1), TextDelta("b", 1), TextDelta("c", 2),
        UsageEvent(Usage(5, 3)), Finish("end_turn", "stop"),
    ], protocol="anthropic", source="main")
    assert resp.text_parts == ["ab", "c"]
    r = resp.reasoning[0]
    assert (r.text, r.signature, r.protocol, r.source) == ("think", "abcd", "anthropic", "main")
    assert resp.usage == Usage(5, 3) and resp.stop == "stop"


def test_finish_normalization() -> None:
    """Provider finish reasons map onto the canonical few; tool calls force tool_calls."""
    assert normalize_finish("end_turn") == "stop"
    assert normalize_finish("max_tokens") == "length"
    assert normalize_finish("incomplete:max_output_tokens") == "length"
    assert normalize_finish("completed", has_tool_calls=True) == "tool_calls"
    assert normalize_finish("weird") == "other"
    assert normalize_finish(None) == "other"


_parts = st.one_of(
    st.builds(TextPart, st.text(min_size=1, max_size=40)),
    st.builds(lambda i, n, a: ToolCallPart(f"c{i}", n, a), st.integers(0, 99),
              st.sampled_from(["f", "g"]), st.text(min_size=1, max_size=30)),
    st.builds(lambda t, s: ReasoningPart(text=t, kind="thinking", signature=s),
              st.text(max_size=30), st.one_of(st.none(), st.text(min_size=1, max_size=10))),
)


@given(st.lists(_parts, max_size=6), st.integers(0, 12))
def test_events_of_is_the_inverse_of_assemble(parts: list, chunk: int) -> None:
    """Any response replayed as events (whatever the chunking) assembles back to itself."""
    calls = [p for p in parts if isinstance(p, ToolCallPart)]
    for i, c in enumerate(calls):
        c.id = f"call{i}"
    stop = normalize_finish("stop", bool(calls))
    resp = Response("id", "m", parts, "stop", stop, Usage(1, 2))
    assert assemble(events_of(resp, chunk_chars=chunk)) == resp


def test_events_round_trip_through_json() -> None:
    """Events are a tagged union: every type encodes to JSON and decodes back."""
    events: list[Event] = [ResponseStart("r", "m"), TextDelta("x"), ToolCallStart(0, "a", "f"),
                           ToolCallDelta(0, "{}"), ToolCallEnd(0), UsageEvent(Usage(1, 1)),
                           Finish("stop", "stop"), ReasoningDelta(0, "t", signature="s")]
    data = msgspec.json.encode(events)
    assert msgspec.json.decode(data, type=list[Event]) == events


def test_assembler_reports_output_started() -> None:
    """has_output turns true with the first piece of output, not with ResponseStart."""
    asm = Assembler()
    asm.add(ResponseStart("r"))
    assert not asm.has_output
    asm.add(TextDelta("x"))
    assert asm.has_output and asm.text == "x"
