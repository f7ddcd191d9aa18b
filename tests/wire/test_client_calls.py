"""Client-run Responses items (``custom_tool_call``, ``shell_call``, ``local_shell_call``,
``apply_patch_call``) decode, streamed and not, to ToolCallParts of their kind; hosted ones
(run by the provider) stay provider items; the fake server sends them back the same way.

Item and event shapes follow openai-python ``types/responses/response_custom_tool_call.py``,
``response_custom_tool_call_input_delta_event.py``, ``response_function_shell_tool_call.py``,
``response_shell_call_command_*_event.py``, ``response_apply_patch_tool_call.py`` and
``response_output_item.py`` (``LocalShellCall``)."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from runtime.events import Event, Finish, ToolCallDelta, ToolCallStart, assemble, events_of
from runtime.model import BuiltinToolPart, Response, TextPart, ToolCallPart, Usage
from runtime.testing.wire import openai_responses as fake
from runtime.wire import openai_responses as codec
from tests.wire.streams import decode_chunks

R = codec.PROTOCOL
PATCH = "*** Begin Patch\n*** Update File: a.py\n@@\n-x = 1\n+x = 2\n*** End Patch\n"
CUSTOM = {"id": "ctc_01", "type": "custom_tool_call", "status": "completed",
          "call_id": "call_c1", "name": "run_python", "input": 'print("hi")\nprint(2)'}
SHELL = {"id": "sh_01", "type": "shell_call", "status": "completed", "call_id": "call_s1",
         "action": {"commands": ["ls -la", "cat a.py"], "timeout_ms": 5000,
                    "max_output_length": 4096}}
LOCAL = {"id": "lsh_01", "type": "local_shell_call", "status": "completed",
         "call_id": "call_l1", "action": {"type": "exec", "command": ["ls", "-la"], "env": {},
                                          "timeout_ms": None, "working_directory": None,
                                          "user": None}}
APPLY = {"id": "apc_01", "type": "apply_patch_call", "status": "completed",
         "call_id": "call_a1",
         "operation": {"type": "update_file", "path": "a.py", "diff": PATCH}}
ITEMS = [CUSTOM, SHELL, LOCAL, APPLY]
WANT = [
    ("call_c1", "ctc_01", "custom", "run_python", CUSTOM["input"]),
    ("call_s1", "sh_01", "shell", "shell", SHELL["action"]),
    ("call_l1", "lsh_01", "local_shell", "local_shell", LOCAL["action"]),
    ("call_a1", "apc_01", "apply_patch", "apply_patch", APPLY["operation"]),
]


def _response(output: list[dict[str, Any]], status: str = "completed") -> dict[str, Any]:
    return {"id": "resp_01", "object": "response", "created_at": 1, "status": status,
            "error": None, "incomplete_details": None, "model": "gpt-5.1", "output": output,
            "usage": {"input_tokens": 30, "output_tokens": 12,
                      "input_tokens_details": {"cached_tokens": 0},
                      "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 42}}


def _in_progress(item: dict[str, Any]) -> dict[str, Any]:
    out = {**item, "status": "in_progress"}
    if item["type"] == "custom_tool_call":
        out["input"] = ""
    if item["type"] == "shell_call":
        out["action"] = {**item["action"], "commands": []}
    return out


def stream_events(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A realistic Responses event stream carrying ``items`` (the shapes of the API's own
    streams: input deltas for custom calls, command events for shell calls)."""
    evs: list[dict[str, Any]] = [
        {"type": "response.created", "response": _response([], "in_progress")},
        {"type": "response.in_progress", "response": _response([], "in_progress")}]
    for oi, item in enumerate(items):
        evs.append({"type": "response.output_item.added", "output_index": oi,
                    "item": _in_progress(item)})
        base = {"item_id": item["id"], "output_index": oi}
        if item["type"] == "custom_tool_call":
            text = item["input"]
            for i in range(0, len(text), 5):
                evs.append({"type": "response.custom_tool_call_input.delta", **base,
                            "delta": text[i:i + 5]})
            evs.append({"type": "response.custom_tool_call_input.done", **base,
                        "input": text})
        if item["type"] == "shell_call":
            for ci, command in enumerate(item["action"]["commands"]):
                evs.append({"type": "response.shell_call_command.added", "output_index": oi,
                            "command_index": ci, "command": ""})
                evs.append({"type": "response.shell_call_command.delta", "output_index": oi,
                            "command_index": ci, "delta": command})
                evs.append({"type": "response.shell_call_command.done", "output_index": oi,
                            "command_index": ci, "command": command})
        evs.append({"type": "response.output_item.done", "output_index": oi, "item": item})
    evs.append({"type": "response.completed", "response": _response(items)})
    for seq, ev in enumerate(evs):
        ev["sequence_number"] = seq
    return evs


def decode_stream(chunks: list[bytes]) -> list[Event]:
    return decode_chunks(codec, chunks)


def sse_bytes(evs: list[dict[str, Any]]) -> list[bytes]:
    return [f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in evs]


def _view(resp: Response) -> list[tuple[Any, ...]]:
    out = []
    for c in resp.tool_calls:
        args: Any = c.arguments if c.kind == "custom" else json.loads(c.arguments)
        out.append((c.id, c.item_id, c.kind, c.name, args))
    return out


@pytest.mark.parametrize("streamed", [True, False], ids=["stream", "body"])
def test_client_run_items_decode_to_calls_of_their_kind(streamed: bool) -> None:
    """Each client-run item becomes a ToolCallPart of its kind: id = call_id, item_id = the
    item id, arguments = the freeform input or the JSON of action / operation, raw = the
    whole item; the answer stops for tool calls."""
    if streamed:
        events = decode_stream(sse_bytes(stream_events(ITEMS)))
    else:
        events = codec.decode_body(json.dumps(_response(ITEMS)).encode())
    resp = assemble(events, R)
    assert _view(resp) == WANT
    assert [c.raw for c in resp.tool_calls] == ITEMS
    assert resp.stop == "tool_calls" and resp.finish_reason == "completed"
    assert not [p for p in resp.parts if isinstance(p, BuiltinToolPart)]
    assert isinstance(events[-1], Finish) and events[-1].normalized == "tool_calls"


def test_custom_input_streams_as_deltas_and_calls_start_with_their_kind() -> None:
    """A custom call's input arrives as ToolCallDeltas; every call's ToolCallStart names its
    kind, as soon as the item is added (a shell call's when it is done: only then does it
    surely say where it runs)."""
    events = decode_stream(sse_bytes(stream_events(ITEMS)))
    starts = [(e.index, e.kind, e.name) for e in events if isinstance(e, ToolCallStart)]
    assert starts == [(0, "custom", "run_python"), (1, "shell", "shell"),
                      (2, "local_shell", "local_shell"), (3, "apply_patch", "apply_patch")]
    deltas = "".join(e.arguments for e in events if isinstance(e, ToolCallDelta))
    assert deltas == CUSTOM["input"]
    first_start = next(i for i, e in enumerate(events) if isinstance(e, ToolCallStart))
    first_delta = next(i for i, e in enumerate(events) if isinstance(e, ToolCallDelta))
    assert first_start < first_delta


def test_terminal_object_supplies_client_items_the_stream_never_completed() -> None:
    """Items only in response.completed (llama.cpp-style streams) are decoded from it."""
    evs = [e for e in stream_events(ITEMS) if e["type"] in (
        "response.created", "response.completed")]
    resp = assemble(decode_stream(sse_bytes(evs)), R)
    assert _view(resp) == WANT


HOSTED_ENV = {**SHELL, "environment": {"type": "container_reference",
                                       "container_id": "cntr_1"}}
HOSTED_LATE = {**SHELL, "id": "sh_02", "call_id": "call_s2",
               "environment": {"type": "container_reference", "container_id": "cntr_1"}}
HOSTED_OUT = {"id": "sho_01", "type": "shell_call_output", "status": "completed",
              "call_id": "call_s1", "output": [
                  {"stdout": "a.py\n", "stderr": "", "outcome": {"type": "exit",
                                                               "exit_code": 0}}]}


@pytest.mark.parametrize("streamed", [True, False], ids=["stream", "body"])
@pytest.mark.parametrize("items", [[HOSTED_ENV], [SHELL, HOSTED_OUT], [HOSTED_LATE]],
                         ids=["container", "answered", "container-known-late"])
def test_hosted_shell_calls_stay_provider_items(streamed: bool,
                                                items: list[dict[str, Any]]) -> None:
    """A shell call the provider ran itself (in its container, or answered by a
    shell_call_output in the same response) is a provider item, never a call for us."""
    message = {"id": "msg_1", "type": "message", "role": "assistant", "status": "completed",
               "content": [{"type": "output_text", "text": "done", "annotations": []}]}
    output = [*items, message]
    if streamed:
        evs = stream_events(output)
        for ev in evs:  # the added item does not say where it runs yet
            if ev["type"] == "response.output_item.added" and ev["item"]["id"] == "sh_02":
                ev["item"].pop("environment")
        events = decode_stream(sse_bytes(evs))
    else:
        events = codec.decode_body(json.dumps(_response(output)).encode())
    resp = assemble(events, R)
    assert resp.tool_calls == [] and resp.stop == "stop" and resp.text == "done"
    builtins = [p for p in resp.parts if isinstance(p, BuiltinToolPart)]
    assert [(p.item_type, p.raw) for p in builtins] == [(i["type"], i) for i in items]


CALLS = [ToolCallPart(cid, name, json.dumps(args) if kind != "custom" else args, item_id,
                      kind)  # type: ignore[arg-type]
         for cid, item_id, kind, name, args in WANT]


@pytest.mark.parametrize("chunk_chars", [3, 1000])
def test_fake_server_sends_client_items_streamed_and_not(chunk_chars: int) -> None:
    """The fake server sends each kind as its item (and the custom input as deltas), and
    the client decodes them back to the same calls, streamed and as a body."""
    scripted = Response("resp_9", "gpt-5.1", [TextPart("on it"), *CALLS], None, "tool_calls",
                        Usage(5, 5))
    body = fake.encode_json(scripted)
    assert [i["type"] for i in body["output"]] == [
        "message", "custom_tool_call", "shell_call", "local_shell_call", "apply_patch_call"]
    chunks = fake.encode_stream(scripted, chunk_chars=chunk_chars)
    types = [json.loads(c.split(b"data: ", 1)[1])["type"] for c in chunks]
    assert "response.custom_tool_call_input.delta" in types
    for events in (decode_stream(chunks), codec.decode_body(msgspec.json.encode(body))):
        resp = assemble(events, R)
        assert _view(resp) == WANT and resp.text == "on it"


def test_events_of_keeps_kind_and_raw() -> None:
    """A cached or scripted response replays its calls with their kind and whole item."""
    resp = assemble(codec.decode_body(json.dumps(_response(ITEMS)).encode()), R)
    again = assemble(events_of(resp, chunk_chars=4), R)
    assert [c.kind for c in again.tool_calls] == ["custom", "shell", "local_shell",
                                                  "apply_patch"]
    assert again.tool_calls == resp.tool_calls


def test_function_calls_are_unchanged_and_keep_their_caller() -> None:
    """An ordinary function call is kind function without raw; one made by a program
    (programmatic tool calling) keeps its caller for the way back."""
    plain = {"id": "fc_1", "type": "function_call", "status": "completed", "call_id": "c1",
             "name": "f", "arguments": '{"a": 1}'}
    program = {**plain, "id": "fc_2", "call_id": "c2",
               "caller": {"type": "program", "caller_id": "prog_1"}}
    resp = assemble(codec.decode_body(json.dumps(_response([plain, program])).encode()), R)
    [a, b] = resp.tool_calls
    assert (a.kind, a.raw, b.kind) == ("function", None, "function")
    assert b.raw is not None and b.raw["caller"] == program["caller"]


def recording_of(items: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A streamed interaction in the recordings' format carrying ``items`` and a function
    call, with the ``expect`` an independent parser writes for it (function calls under
    tool_calls, every other output item, client-run kinds included, under
    builtin_tool_calls)."""
    fc = {"id": "fc_01", "type": "function_call", "status": "completed", "call_id": "call_f1",
          "name": "read_file", "arguments": '{"path": "a.py"}'}
    evs = stream_events([*items, fc])
    oi = len(items)
    at = next(i for i, e in enumerate(evs) if e["type"] == "response.output_item.done"
              and e["output_index"] == oi)
    for k, piece in enumerate(['{"path": ', '"a.py"}']):
        evs.insert(at + k, {"type": "response.function_call_arguments.delta",
                            "item_id": "fc_01", "output_index": oi, "delta": piece})
    body = "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in evs)
    inter = {"request": {"method": "POST", "path": "/v1/responses",
                         "headers": {"content-type": "application/json"},
                         "body": {"model": "gpt-5.1", "input": "go", "stream": True}},
             "response": {"status": 200, "headers": {"content-type": "text/event-stream"},
                          "body": body}}
    exp = {"interaction": 0, "status": 200, "stream": True, "error": None,
           "response_id": "resp_01", "model": "gpt-5.1", "text": "", "text_parts": [],
           "tool_calls": [{"id": "call_f1", "item_id": "fc_01", "name": "read_file",
                           "arguments": {"path": "a.py"}, "argument_delta_count": 2}],
           "builtin_tool_calls": [{"type": i["type"], "id": i["id"]} for i in items],
           "finish_reason": "completed",
           "usage": {"input_tokens": 30, "output_tokens": 12, "total_tokens": 42,
                     "cached_tokens": 0, "cache_write_tokens": None, "reasoning_tokens": 0},
           "reasoning": [], "refusal": None, "n_choices": None, "done_sentinel": None,
           "sse_event_count": len(evs)}
    return inter, exp


def test_recordings_list_client_run_items_with_the_provider_items() -> None:
    """The recordings' expect lists client-run items among the non-function output items;
    the recording comparison reads our calls of those kinds the same way, so a capture
    holding them still decodes exactly as its expect says."""
    from tests.recordings import assert_matches, decode_recorded

    inter, exp = recording_of(ITEMS)
    got = decode_recorded("openai-responses", inter)
    assert got.sse_events == exp["sse_event_count"]
    assert got.response is not None and len(got.response.tool_calls) == 5
    assert_matches("openai-responses", got.response, got.error, exp,
                   argument_deltas=got.argument_deltas)
