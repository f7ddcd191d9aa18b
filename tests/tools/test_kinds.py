"""Client-run Responses calls answered by the supervisor: custom, shell, local_shell and
apply_patch, run with real tools in a temporary workspace; unknown ones rejected."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
import trio

from runtime.model import ToolCallPart
from runtime.tools import ToolRegistry, builtin_tools, run_tool_calls

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="process trees via /proc")


def call(i: int, kind: str, arguments: Any, name: str | None = None) -> ToolCallPart:
    text = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return ToolCallPart(f"call_{i}", name or kind, text, kind=kind)  # type: ignore[arg-type]


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "sub").mkdir()
    (root / "notes.txt").write_text("alpha\nbeta\n")
    return root


def registry(ws: Path, *names: str, **kw: Any) -> ToolRegistry:
    return ToolRegistry(builtin_tools(ws, list(names) or ["run_shell", "apply_patch"],
                                      kill_grace=0.3, **kw))


AUTO = {"run_shell": "auto"}


async def test_custom_call_reaches_a_tool_with_one_string_parameter() -> None:
    """A custom_tool_call's freeform input is the single string argument of that tool."""
    reg = ToolRegistry()
    seen: list[str] = []

    @reg.tool
    def grammar_sql(query: str) -> str:
        """Run a query."""
        seen.append(query)
        return f"{len(query)} characters"

    (out,) = await run_tool_calls([call(1, "custom", "SELECT 1;\n-- not JSON", "grammar_sql")],
                                  reg)
    assert seen == ["SELECT 1;\n-- not JSON"]
    assert out.ok and out.content == "21 characters" and out.kind == "custom"
    part = out.to_part()
    assert part.kind == "custom" and not part.is_error and part.meta is None
    assert out.arguments == {"query": "SELECT 1;\n-- not JSON"}


async def test_custom_call_to_an_unsuitable_or_unknown_tool_is_rejected() -> None:
    """A tool without exactly one string parameter, or no tool of that name, rejects the
    custom call with a reason, and nothing runs."""
    reg = ToolRegistry()

    @reg.tool
    def two(a: str, b: str) -> str:
        raise AssertionError("must not run")

    outs = await run_tool_calls([call(1, "custom", "x", "two"), call(2, "custom", "y", "nope")],
                                reg)
    assert [o.rejected for o in outs] == [True, True]
    assert "exactly one string parameter" in outs[0].content
    assert "Unknown tool 'nope'" in outs[1].content
    assert all(o.kind == "custom" for o in outs)


async def test_shell_call_runs_each_command_with_separate_streams(ws: Path) -> None:
    """A shell_call's commands run in the workspace, in order; each gets stdout, stderr
    and its exit code in meta, and the text shows them too."""
    (out,) = await run_tool_calls([call(1, "shell", {"commands": [
        "pwd", "echo oops >&2; exit 3", "cat notes.txt"]})], registry(ws), approval=AUTO)
    assert out.ok and out.kind == "shell" and not out.rejected
    assert out.meta == {"outputs": [
        {"stdout": f"{ws}\n", "stderr": "", "exit_code": 0},
        {"stdout": "", "stderr": "oops\n", "exit_code": 3},
        {"stdout": "alpha\nbeta\n", "stderr": "", "exit_code": 0}]}
    assert "$ echo oops >&2; exit 3\nexit code: 3\n[stderr]\noops" in out.content
    part = out.to_part()
    assert part.kind == "shell" and part.meta == out.meta


async def test_shell_call_timeout_kills_the_tree_and_skips_the_rest(ws: Path) -> None:
    """timeout_ms bounds the call: the running command's processes are killed, the
    remaining commands never run."""
    outs = await run_tool_calls([call(1, "shell", {
        "commands": ["sleep 30 & echo $! > child.pid; sleep 30", "touch never"],
        "timeout_ms": 500})], registry(ws), approval=AUTO)
    (out,) = outs
    assert not out.ok and out.meta is not None
    assert out.meta["outputs"] == [{"stdout": "", "stderr": "", "timed_out": True}]
    assert "1 more command not run" in out.content
    assert not (ws / "never").exists()
    child = int((ws / "child.pid").read_text())
    stat = Path(f"/proc/{child}/stat")
    assert not stat.exists() or stat.read_bytes().split(b") ")[1][:1] == b"Z"


async def test_shell_call_follows_run_shell_approval(ws: Path) -> None:
    """deny and a declined ask reject the call (meta says it did not run); an accepted ask
    runs it, and the prompt shows the commands."""
    reg = registry(ws)
    denied = await run_tool_calls([call(1, "shell", {"commands": ["touch x"]})], reg,
                                  approval={"run_shell": "deny"})
    prompts: list[str] = []
    declined = await run_tool_calls([call(2, "shell", {"commands": ["touch x"]})], reg,
                                    ask=lambda p: prompts.append(p) is not None)
    accepted = await run_tool_calls([call(3, "shell", {"commands": ["touch y"]})], reg,
                                    ask=lambda p: prompts.append(p) is None)
    for (o,) in (denied, declined):
        assert o.rejected and not o.ok and o.kind == "shell"
        assert o.meta == {"outputs": [{"stdout": "", "stderr": o.content, "exit_code": 126}]}
    assert "deny" in denied[0].content and "declined" in declined[0].content
    assert not (ws / "x").exists() and (ws / "y").exists() and accepted[0].ok
    assert '"commands":["touch x"]' in prompts[0] and "run_shell" in prompts[0]


async def test_local_shell_runs_an_argv_in_a_confined_folder(ws: Path,
                                                             monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    """local_shell runs its argv (no shell) in working_directory with its env added and our
    secrets removed; a folder outside the workspace or another user is refused."""
    monkeypatch.setenv("SERVICE_API_KEY", "hidden-value")
    reg = registry(ws)
    argv = ["sh", "-c", 'pwd; echo "$GREETING"; echo "${SERVICE_API_KEY:-none}"']
    outs = await run_tool_calls([
        call(1, "local_shell", {"type": "exec", "command": argv, "env": {"GREETING": "hi"},
                                "working_directory": "sub"}),
        call(2, "local_shell", {"type": "exec", "command": ["pwd"],
                                "working_directory": str(ws / "sub")}),
        call(3, "local_shell", {"type": "exec", "command": ["pwd"],
                                "working_directory": "../"}),
        call(4, "local_shell", {"type": "exec", "command": ["pwd"],
                                "working_directory": str(ws.parent)}),
        call(5, "local_shell", {"type": "exec", "command": ["pwd"], "user": "nobody-else"}),
        call(6, "local_shell", {"type": "exec", "command": ["no-such-program-here"]}),
    ], reg, approval=AUTO)
    assert outs[0].ok and outs[0].meta == {"outputs": [
        {"stdout": f"{ws / 'sub'}\nhi\nnone\n", "stderr": "", "exit_code": 0}]}
    assert outs[0].content.startswith("$ sh -c ")
    assert outs[1].ok and outs[1].meta["outputs"][0]["stdout"] == f"{ws / 'sub'}\n"  # type: ignore[index]
    for o in outs[2:5]:
        assert not o.ok and not o.rejected and "refused" in o.content
        assert o.meta == {"outputs": [{"stdout": "", "stderr": o.content, "exit_code": 126}]}
    assert not outs[5].ok and outs[5].meta["outputs"][0]["exit_code"] == 127  # type: ignore[index]


async def test_apply_patch_calls_create_update_and_delete(ws: Path) -> None:
    """Native apply_patch operations edit the workspace; status completed or failed."""
    outs = await run_tool_calls([
        call(1, "apply_patch", {"type": "create_file", "path": "new/a.txt",
                                "diff": "+one\n+two\n"}),
        call(2, "apply_patch", {"type": "update_file", "path": "notes.txt",
                                "diff": "@@\n alpha\n-beta\n+gamma\n"}),
        call(3, "apply_patch", {"type": "delete_file", "path": "new/a.txt"}),
        call(4, "apply_patch", {"type": "create_file", "path": "../escape.txt",
                                "diff": "+x\n"}),
        call(5, "apply_patch", {"type": "update_file", "path": "notes.txt",
                                "diff": "@@\n-not there\n+x\n"}),
        call(6, "apply_patch", {"type": "update_file", "path": "notes.txt"}),
    ], registry(ws))
    assert [o.meta for o in outs] == [{"status": "completed"}] * 3 + [{"status": "failed"}] * 3
    assert [o.ok for o in outs] == [True, True, True, False, False, False]
    assert (ws / "notes.txt").read_text() == "alpha\ngamma\n"
    assert not (ws / "new" / "a.txt").exists() and not (ws.parent / "escape.txt").exists()
    assert "'..'" in outs[3].content and "could not find" in outs[4].content
    assert outs[5].rejected and "needs a diff" in outs[5].content
    assert all(o.to_part().kind == "apply_patch" for o in outs)


async def test_unknown_client_run_calls_are_rejected(ws: Path) -> None:
    """Without the built-in that answers a kind, its calls get a tool_rejected result with
    the kind's meta, never silence."""
    reg = registry(ws, "read_file")
    outs = await run_tool_calls([call(1, "shell", {"commands": ["true"]}),
                                 call(2, "local_shell", {"command": ["true"]}),
                                 call(3, "apply_patch", {"type": "delete_file", "path": "x"})],
                                reg)
    assert [o.rejected for o in outs] == [True, True, True]
    assert "enable the built-in run_shell" in outs[0].content
    assert "enable the built-in apply_patch" in outs[2].content
    assert outs[0].meta is not None and outs[0].meta["outputs"][0]["exit_code"] == 126
    assert outs[2].meta == {"status": "failed"}


async def test_malformed_actions_are_rejected(ws: Path) -> None:
    """An action that is not JSON or lacks its fields is rejected with the reason."""
    outs = await run_tool_calls([call(1, "shell", "{not json"), call(2, "shell", {}),
                                 call(3, "local_shell", {"command": "ls"})], registry(ws),
                                approval=AUTO)
    assert all(o.rejected for o in outs)
    assert "not valid JSON" in outs[0].content
    assert "commands" in outs[1].content and "command" in outs[2].content


async def test_shell_output_is_capped_in_total(ws: Path) -> None:
    """Several commands with long output stay within tools.max_output_chars in all."""
    reg = ToolRegistry(builtin_tools(ws, ["run_shell"], max_output_chars=600),
                       max_output_chars=600)
    (out,) = await run_tool_calls([call(1, "shell", {"commands": ["seq 1 5000"] * 3,
                                                     "max_output_length": 100000})], reg,
                                  approval=AUTO)
    assert out.meta is not None
    total = sum(len(o["stdout"]) + len(o["stderr"]) for o in out.meta["outputs"])
    assert total <= 600 + 3 * 2 * 60
    assert all("characters cut" in o["stdout"] for o in out.meta["outputs"])
    assert len(out.content) <= 600 + 300


async def test_cancelling_the_session_kills_a_shell_call(ws: Path) -> None:
    """A shell call in flight when the session is cancelled leaves nothing running."""
    reg = registry(ws)
    os.mkfifo(ws / "ready.fifo")
    async with trio.open_nursery() as nursery:

        async def cancel_when_ready() -> None:
            await trio.to_thread.run_sync((ws / "ready.fifo").read_text)
            nursery.cancel_scope.cancel()

        nursery.start_soon(cancel_when_ready)
        await run_tool_calls([call(1, "shell", {"commands": [
            "setsid sleep 60 & echo $! > child.pid; echo ready > ready.fifo; sleep 60"]})],
            reg, approval=AUTO)
    child = int((ws / "child.pid").read_text())
    stat = Path(f"/proc/{child}/stat")
    assert not stat.exists() or stat.read_bytes().split(b") ")[1][:1] == b"Z"
