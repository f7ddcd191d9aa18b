"""The history a request sends back is valid for every protocol: each client-run kind of
call goes back as its own Responses item with the matching output item, and as a plain
function call with valid JSON arguments to Chat Completions and Anthropic; a call cut off by
the token limit (arguments not a JSON object) is sent with ``{}``.

Responses shapes: openai-python ``types/responses/response_input_item_param.py``
(``ShellCall``, ``ShellCallOutput``, ``LocalShellCall``, ``ApplyPatchCall``,
``ApplyPatchCallOutput``), ``response_custom_tool_call_param.py``,
``response_custom_tool_call_output_param.py``,
``response_function_shell_call_output_content_param.py``, ``custom_tool_param.py``,
``function_shell_tool_param.py``, ``apply_patch_tool_param.py``; ``local_shell_call_output``
as OpenAI's local shell guide and openai-agents send it (``call_id``, text ``output``)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.model import (
    Message,
    Request,
    TextPart,
    ToolCallPart,
    ToolKind,
    ToolResultPart,
    ToolSpec,
)
from runtime.testing.wire import openai_responses as fake_responses
from runtime.wire import (
    anthropic,
    arguments_replaced,
    function_arguments,
    openai_chat,
    openai_responses,
)

PATCH = "*** Begin Patch\n*** Add File: b.txt\n+hello\n*** End Patch\n"
SHELL_ACTION = {"commands": ["ls", "cat a.py"], "timeout_ms": 5000, "max_output_length": 2048}
LOCAL_ACTION = {"type": "exec", "command": ["ls"], "env": {}}
OPERATION = {"type": "create_file", "path": "b.txt", "diff": PATCH}
CALLS = [
    ToolCallPart("call_f", "read_file", '{"path": "a.py"}', "fc_1"),
    ToolCallPart("call_cut", "write_file", '{"path": "b.py", "content": "x = ', "fc_2"),
    ToolCallPart("call_c", "run_python", 'print("hi")', "ctc_1", "custom",
                 {"id": "ctc_1", "type": "custom_tool_call", "status": "completed",
                  "call_id": "call_c", "name": "run_python", "input": 'print("hi")',
                  "caller": {"type": "direct"}}),
    ToolCallPart("call_s", "shell", json.dumps(SHELL_ACTION), "sh_1", "shell",
                 {"id": "sh_1", "type": "shell_call", "status": "completed",
                  "call_id": "call_s", "action": SHELL_ACTION, "created_by": "resp_x"}),
    ToolCallPart("call_l", "local_shell", json.dumps(LOCAL_ACTION), "lsh_1", "local_shell"),
    ToolCallPart("call_a", "apply_patch", json.dumps(OPERATION), "apc_1", "apply_patch"),
]
RESULTS = [
    ToolResultPart("call_f", "print(1)"),
    ToolResultPart("call_cut", "error: arguments were cut off", is_error=True),
    ToolResultPart("call_c", "hi", kind="custom"),
    ToolResultPart("call_s", "a.py\n", kind="shell", meta={"outputs": [
        {"stdout": "a.py\n", "stderr": "", "exit_code": 0},
        {"stdout": "", "stderr": "slow", "timed_out": True}]}),
    ToolResultPart("call_l", "a.py\n", kind="local_shell"),
    ToolResultPart("call_a", "created b.txt", kind="apply_patch",
                   meta={"status": "completed"}),
]
HISTORY = [Message.user("fix it"), Message("assistant", [TextPart("on it"), *CALLS]),
           Message("tool", list(RESULTS))]


def test_responses_items_have_the_documented_shapes() -> None:
    """Each kind goes back as its own item and each result as the matching output item."""
    body = openai_responses.encode_request(Request("gpt-5.1", HISTORY), stream=True)
    items = body["input"][2:]
    assert items == [
        {"type": "function_call", "call_id": "call_f", "name": "read_file",
         "arguments": '{"path": "a.py"}', "id": "fc_1"},
        {"type": "function_call", "call_id": "call_cut", "name": "write_file",
         "arguments": "{}", "id": "fc_2"},
        {"type": "custom_tool_call", "call_id": "call_c", "name": "run_python",
         "input": 'print("hi")', "id": "ctc_1", "caller": {"type": "direct"}},
        {"type": "shell_call", "call_id": "call_s", "action": SHELL_ACTION, "id": "sh_1",
         "status": "completed"},
        {"type": "local_shell_call", "call_id": "call_l", "action": LOCAL_ACTION,
         "id": "lsh_1", "status": "completed"},
        {"type": "apply_patch_call", "call_id": "call_a", "operation": OPERATION,
         "id": "apc_1", "status": "completed"},
        {"type": "function_call_output", "call_id": "call_f", "output": "print(1)"},
        {"type": "function_call_output", "call_id": "call_cut",
         "output": "error: arguments were cut off"},
        {"type": "custom_tool_call_output", "call_id": "call_c", "output": "hi",
         "caller": {"type": "direct"}},
        {"type": "shell_call_output", "call_id": "call_s", "output": [
            {"stdout": "a.py\n", "stderr": "", "outcome": {"type": "exit", "exit_code": 0}},
            {"stdout": "", "stderr": "slow", "outcome": {"type": "timeout"}}],
         "max_output_length": 2048},
        {"type": "local_shell_call_output", "call_id": "call_l", "output": "a.py\n"},
        {"type": "apply_patch_call_output", "call_id": "call_a", "status": "completed",
         "output": "created b.txt"},
    ]


def test_responses_outputs_follow_the_kind_of_the_call_they_answer() -> None:
    """A result that does not name its kind (an error result the tool layer wrote for any
    call) still becomes the output item its call needs; a shell result without outputs
    reports its text with an exit code; a failed patch has status failed."""
    results = [ToolResultPart(c.id, "rejected: no such tool", is_error=True) for c in CALLS]
    body = openai_responses.encode_request(Request("m", [
        HISTORY[0], HISTORY[1], Message("tool", results)]), stream=False)
    outs = {i["call_id"]: i for i in body["input"] if i["type"].endswith("_output")}
    assert [outs[c.id]["type"] for c in CALLS] == [
        "function_call_output", "function_call_output", "custom_tool_call_output",
        "shell_call_output", "local_shell_call_output", "apply_patch_call_output"]
    assert outs["call_s"]["output"] == [{"stdout": "", "stderr": "rejected: no such tool",
                                         "outcome": {"type": "exit", "exit_code": 1}}]
    assert outs["call_a"]["status"] == "failed"


def test_responses_offers_native_tools_by_kind() -> None:
    """ToolSpec kinds custom / shell / local_shell / apply_patch are offered as the native
    tools; function tools are unchanged."""
    grammar = {"type": "grammar", "syntax": "lark", "definition": "start: /.+/"}
    tools = [ToolSpec("read_file", "Read a file."),
             ToolSpec("run_python", "Run Python.", kind="custom", format=grammar),
             ToolSpec("notes", "Free text.", kind="custom"),
             ToolSpec("shell", kind="shell"), ToolSpec("local_shell", kind="local_shell"),
             ToolSpec("apply_patch", kind="apply_patch")]
    body = openai_responses.encode_request(Request("m", [Message.user("q")], tools=tools),
                                           stream=True)
    assert body["tools"] == [
        {"type": "function", "name": "read_file", "description": "Read a file.",
         "parameters": {"type": "object", "properties": {}}, "strict": False},
        {"type": "custom", "name": "run_python", "description": "Run Python.",
         "format": grammar},
        {"type": "custom", "name": "notes", "description": "Free text."},
        {"type": "shell"}, {"type": "local_shell"}, {"type": "apply_patch"},
    ]


def test_fake_server_reads_client_items_and_outputs_back() -> None:
    """What the client sends decodes back (server side) to the same calls and results."""
    body = openai_responses.encode_request(Request("m", HISTORY), stream=True)
    req = fake_responses.decode_request(json.loads(json.dumps(body)))
    [_, assistant, tool] = req.messages
    calls = assistant.tool_calls
    assert [(c.id, c.kind, c.name, c.item_id) for c in calls] == [
        (c.id, c.kind, c.name, c.item_id) for c in CALLS]
    assert calls[0].arguments == CALLS[0].arguments and calls[1].arguments == "{}"
    assert [json.loads(c.arguments) for c in calls[3:]] == [SHELL_ACTION, LOCAL_ACTION,
                                                          OPERATION]
    results = [p for p in tool.parts if isinstance(p, ToolResultPart)]
    assert [(r.call_id, r.kind) for r in results] == [(r.call_id, r.kind) for r in RESULTS]
    assert results[3].meta == RESULTS[3].meta and results[5].meta == {"status": "completed"}
    tools = fake_responses.decode_request({"model": "m", "input": "q", "tools": [
        {"type": "custom", "name": "x", "format": {"type": "text"}}, {"type": "shell"},
        {"type": "apply_patch"}]}).tools
    assert [(t.name, t.kind, t.format) for t in tools] == [
        ("x", "custom", {"type": "text"}), ("shell", "shell", None),
        ("apply_patch", "apply_patch", None)]


def test_chat_carries_every_kind_as_function_calls() -> None:
    """Chat Completions: every call a function call with a JSON object as arguments (custom
    input wrapped as {"input": ...}, a cut-off call as {}), each answered by a tool message."""
    body = openai_chat.encode_request(Request("m", HISTORY), stream=True)
    [assistant] = [m for m in body["messages"] if m["role"] == "assistant"]
    args = {c["id"]: json.loads(c["function"]["arguments"]) for c in assistant["tool_calls"]}
    assert args == {"call_f": {"path": "a.py"}, "call_cut": {},
                    "call_c": {"input": 'print("hi")'}, "call_s": SHELL_ACTION,
                    "call_l": LOCAL_ACTION, "call_a": OPERATION}
    assert all(c["type"] == "function" for c in assistant["tool_calls"])
    assert assistant["tool_calls"][0]["function"]["arguments"] == '{"path": "a.py"}'
    tool_ids = [m["tool_call_id"] for m in body["messages"] if m["role"] == "tool"]
    assert tool_ids == [c.id for c in CALLS]


def test_anthropic_carries_every_kind_as_tool_use() -> None:
    """Anthropic: every call a tool_use block with an object input, each answered by a
    tool_result block in the next user message."""
    body = anthropic.encode_request(Request("m", HISTORY), stream=True)
    uses = [b for b in body["messages"][1]["content"] if b["type"] == "tool_use"]
    assert {b["id"]: b["input"] for b in uses} == {
        "call_f": {"path": "a.py"}, "call_cut": {}, "call_c": {"input": 'print("hi")'},
        "call_s": SHELL_ACTION, "call_l": LOCAL_ACTION, "call_a": OPERATION}
    results = [b["tool_use_id"] for b in body["messages"][2]["content"]]
    assert results == [c.id for c in CALLS]


def test_other_protocols_offer_client_kinds_as_functions() -> None:
    """Chat and Anthropic offer a custom tool as a function of one string `input` and the
    shell / patch kinds with the schema of their Responses action, so a call reads the same
    whichever provider made it."""
    tools = [ToolSpec("run_python", "Run Python.", kind="custom"),
             ToolSpec("shell", "Run commands.", kind="shell"),
             ToolSpec("apply_patch", kind="apply_patch")]
    chat = openai_chat.encode_request(Request("m", [Message.user("q")], tools=tools),
                                      stream=False)["tools"]
    claude = anthropic.encode_request(Request("m", [Message.user("q")], tools=tools),
                                      stream=False)["tools"]
    for schemas in ([t["function"]["parameters"] for t in chat],
                    [t["input_schema"] for t in claude]):
        assert schemas[0]["required"] == ["input"]
        assert schemas[0]["properties"]["input"]["type"] == "string"
        assert schemas[1]["required"] == ["commands"]
        assert set(schemas[2]["properties"]) >= {"type", "path", "diff"}


@pytest.mark.parametrize(("kind", "args", "sent", "replaced"), [
    ("function", '{"a": 1}', '{"a": 1}', False),
    ("function", '{"a": ', "{}", True),
    ("function", "[1]", "{}", True),
    ("function", "", "{}", True),
    ("custom", "not json {", '{"input":"not json {"}', False),
    ("shell", '{"commands": ["ls"]}', '{"commands": ["ls"]}', False),
    ("apply_patch", "{broken", "{}", True),
])
def test_arguments_helper_and_predicate(kind: ToolKind, args: str, sent: str,
                                        replaced: bool) -> None:
    """One pure helper gives the JSON every protocol sends; the predicate says when it had
    to replace what the model sent."""
    call = ToolCallPart("c", "f", args, kind=kind)
    assert function_arguments(call) == sent
    assert arguments_replaced(call) is replaced


kinds = st.sampled_from(["function", "custom", "shell", "local_shell", "apply_patch"])
arguments = st.sampled_from(['{"a": 1}', "{", "", "[]", "null", 'x = "', '{"commands": []}'])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(kinds, arguments, st.booleans()), min_size=1, max_size=5))
def test_any_history_encodes_to_a_valid_body_for_every_protocol(
        spec: list[tuple[str, str, bool]]) -> None:
    """For any mix of call kinds and (valid or cut-off) arguments, with results that name
    their kind or not, every protocol's body pairs each call with one result and carries
    only JSON objects where it needs JSON."""
    calls = [ToolCallPart(f"c{i}", f"t{i}", a, f"it{i}", k)  # type: ignore[arg-type]
             for i, (k, a, _) in enumerate(spec)]
    results = [ToolResultPart(c.id, "out", kind=c.kind if named else "function")
               for c, (_, _, named) in zip(calls, spec, strict=True)]
    req = Request("m", [Message.user("q"), Message("assistant", list(calls)),
                        Message("tool", results)])
    ids = [c.id for c in calls]
    chat = openai_chat.encode_request(req, stream=False)["messages"]
    chat_calls = chat[1]["tool_calls"]
    assert [c["id"] for c in chat_calls] == ids
    assert all(isinstance(json.loads(c["function"]["arguments"]), dict) for c in chat_calls)
    assert [m["tool_call_id"] for m in chat[2:]] == ids
    claude = anthropic.encode_request(req, stream=False)["messages"]
    assert [b["id"] for b in claude[1]["content"]] == ids
    assert all(isinstance(b["input"], dict) for b in claude[1]["content"])
    assert [b["tool_use_id"] for b in claude[2]["content"]] == ids
    items = openai_responses.encode_request(req, stream=False)["input"][1:]
    call_items, outputs = items[:len(ids)], items[len(ids):]
    assert [i["call_id"] for i in call_items] == [i["call_id"] for i in outputs] == ids
    for item, out, call in zip(call_items, outputs, calls, strict=True):
        assert item["type"] == _CALL_TYPE[call.kind]
        assert out["type"] == _CALL_TYPE[call.kind] + "_output"
        if call.kind == "function":
            assert isinstance(json.loads(item["arguments"]), dict)
        elif call.kind == "custom":
            assert item["input"] == call.arguments
        else:
            assert isinstance(item["action" if "shell" in call.kind else "operation"], dict)


_CALL_TYPE: dict[str, Any] = {"function": "function_call", "custom": "custom_tool_call",
                              "shell": "shell_call", "local_shell": "local_shell_call",
                              "apply_patch": "apply_patch_call"}


CUT = ToolCallPart("call_cut", "write_file", '{"path": "b.py", "content": "def f(', "fc_9")
CUT_FINISH = {"openai-chat": "length", "anthropic": "max_tokens",
              "openai-responses": "incomplete:max_output_tokens"}


@pytest.mark.parametrize("protocol", sorted(CUT_FINISH))
def test_a_call_cut_off_by_the_token_limit_round_trips_to_a_valid_history(
        protocol: str) -> None:
    """A provider that stops at the token limit inside a call's arguments (streamed by the
    fake server as it really arrives) decodes to the cut-off text and finish `length`; the
    next request of the same protocol sends `{}` for it, and the predicate says so."""
    from runtime.events import assemble
    from runtime.model import Response
    from runtime.testing.script import encoder_for
    from runtime.wire import codec_for
    from tests.wire.streams import decode_chunks

    scripted = Response("r1", "m", [TextPart("Writing."), CUT], CUT_FINISH[protocol])
    chunks = encoder_for(protocol).encode_stream(scripted, chunk_chars=5)
    resp = assemble(decode_chunks(codec_for(protocol), chunks), protocol)
    [call] = resp.tool_calls
    assert call.arguments == CUT.arguments and resp.stop == "length"
    assert arguments_replaced(call)
    req = Request("m", [Message.user("q"), resp.message(),
                        Message("tool", [ToolResultPart(call.id, "cut off", is_error=True)])])
    body = codec_for(protocol).encode_request(req, stream=True)
    if protocol == "openai-chat":
        sent = body["messages"][1]["tool_calls"][0]["function"]["arguments"]
    elif protocol == "anthropic":
        sent = json.dumps(body["messages"][1]["content"][1]["input"])
    else:
        sent = next(i["arguments"] for i in body["input"] if i["type"] == "function_call")
    assert json.loads(sent) == {}


@pytest.mark.parametrize(("choice", "wire"), [
    ("read_file", {"type": "function", "name": "read_file"}),
    ("run_python", {"type": "custom", "name": "run_python"}),
    ("shell", {"type": "shell"}), ("apply_patch", {"type": "apply_patch"}),
    ("local_shell", "required"), ("auto", "auto")])
def test_responses_tool_choice_names_a_tool_by_its_kind(choice: str, wire: Any) -> None:
    """Forcing a tool uses the tool_choice shape of its kind (openai-python
    tool_choice_custom_param / tool_choice_shell_param / tool_choice_apply_patch_param)."""
    from runtime.model import Params

    tools = [ToolSpec("read_file"), ToolSpec("run_python", kind="custom"),
             ToolSpec("shell", kind="shell"), ToolSpec("apply_patch", kind="apply_patch"),
             ToolSpec("local_shell", kind="local_shell")]
    body = openai_responses.encode_request(
        Request("m", [Message.user("q")], tools=tools, params=Params(tool_choice=choice)),
        stream=False)
    assert body["tool_choice"] == wire
