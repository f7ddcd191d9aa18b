"""Shapes the decoders used to drop or corrupt without a word: chat tool calls sent whole
without index or id, calls without ids, the legacy ``function_call``; Responses terminal
objects that report a failure under another event type."""

from __future__ import annotations

import json
from typing import Any

import pytest

from runtime.errors import ErrorKind
from runtime.events import ErrorEvent, Event, Finish, assemble
from runtime.wire import openai_chat, openai_responses
from tests.wire.streams import decode_chunks


def _stream(protocol: Any, datas: list[Any]) -> list[Event]:
    body = b"".join(f"data: {d if isinstance(d, str) else json.dumps(d)}\n\n".encode()
                    for d in datas)
    return decode_chunks(protocol, [body])


def _chunk(delta: dict[str, Any], finish: str | None = None,
           rid: str = "chatcmpl-7") -> dict[str, Any]:
    return {"id": rid, "model": "m", "choices": [{"index": 0, "delta": delta,
                                                  "finish_reason": finish}]}


def test_chat_calls_sent_whole_without_index_or_id_stay_apart() -> None:
    """A server that sends each call complete in its own fragment, with neither index nor
    id, gives one call per fragment (not one call with both argument texts glued)."""
    events = _stream(openai_chat, [
        _chunk({"tool_calls": [{"function": {"name": "read", "arguments": '{"p": "a"}'}}]}),
        _chunk({"tool_calls": [{"function": {"name": "read", "arguments": '{"p": "b"}'}}]}),
        _chunk({}, "tool_calls"), "[DONE]"])
    resp = assemble(events)
    assert [(c.name, json.loads(c.arguments)) for c in resp.tool_calls] == [
        ("read", {"p": "a"}), ("read", {"p": "b"})]
    ids = [c.id for c in resp.tool_calls]
    assert len(set(ids)) == 2 and all("chatcmpl-7" in i for i in ids)


def test_chat_call_ids_made_up_for_missing_ones_are_unique_per_response() -> None:
    """Calls without ids get ids from the response id, streamed or not, so two turns never
    hold the same call id (Anthropic and Responses refuse such a history)."""
    def turn(rid: str) -> list[str]:
        events = _stream(openai_chat, [
            _chunk({"tool_calls": [{"index": 0, "function": {"name": "f", "arguments": "{}"}}]},
                   rid=rid), _chunk({}, "tool_calls", rid=rid), "[DONE]"])
        return [c.id for c in assemble(events).tool_calls]

    assert turn("chatcmpl-1") != turn("chatcmpl-2")
    body = {"id": "chatcmpl-3", "model": "m", "choices": [{"index": 0, "finish_reason":
            "tool_calls", "message": {"role": "assistant", "tool_calls": [
                {"type": "function", "function": {"name": "f", "arguments": "{}"}}]}}]}
    [call] = assemble(openai_chat.decode_body(json.dumps(body).encode())).tool_calls
    assert "chatcmpl-3" in call.id


@pytest.mark.parametrize("streamed", [True, False])
def test_chat_legacy_function_call_is_a_tool_call(streamed: bool) -> None:
    """The legacy `function_call` (functions API, finish `function_call`) is a tool call,
    not an answer that stops for tools with none to run."""
    if streamed:
        events = _stream(openai_chat, [
            _chunk({"role": "assistant", "function_call": {"name": "lookup", "arguments": ""}}),
            _chunk({"function_call": {"arguments": '{"q": '}}),
            _chunk({"function_call": {"arguments": '"x"}'}}),
            _chunk({}, "function_call"), "[DONE]"])
    else:
        events = openai_chat.decode_body(json.dumps({
            "id": "chatcmpl-7", "model": "m", "choices": [{
                "index": 0, "finish_reason": "function_call", "message": {
                    "role": "assistant", "content": None,
                    "function_call": {"name": "lookup", "arguments": '{"q": "x"}'}}}]})
            .encode())
    resp = assemble(events)
    assert [(c.name, json.loads(c.arguments)) for c in resp.tool_calls] == [
        ("lookup", {"q": "x"})]
    assert resp.stop == "tool_calls" and resp.tool_calls[0].id


def _response(status: str, error: Any = None) -> dict[str, Any]:
    return {"id": "resp_1", "model": "gpt-x", "status": status, "error": error,
            "output": [{"id": "msg_1", "type": "message", "role": "assistant",
                        "content": [{"type": "output_text", "text": "partial"}]}]}


@pytest.mark.parametrize(("status", "error"), [
    ("cancelled", None), ("failed", None),
    ("completed", {"code": "server_error", "message": "The server had an error"})])
@pytest.mark.parametrize("streamed", [True, False])
def test_responses_failure_under_any_terminal_event_is_an_error(
        status: str, error: Any, streamed: bool) -> None:
    """A terminal response object that is failed, cancelled or carries an error is an
    error, whatever event type carried it: never a finished answer."""
    obj = _response(status, error)
    if streamed:
        events = _stream(openai_responses, [
            {"type": "response.created", "response": {**obj, "status": "in_progress",
                                                      "output": []}},
            {"type": "response.completed", "response": obj}])
    else:
        events = openai_responses.decode_body(json.dumps(obj).encode())
    errors = [e for e in events if isinstance(e, ErrorEvent)]
    assert len(errors) == 1 and not any(isinstance(e, Finish) for e in events)
    if error is not None:
        assert errors[0].message == error["message"]
        assert errors[0].kind == ErrorKind.SERVER
