"""The tools inside a whole session: client-run kinds answered with their kind and meta,
the shell's environment scrubbed, output capped, and a bad workspace refused at start."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from runtime.errors import ConfigError
from runtime.model import Request, Response, TextPart, ToolCallPart, ToolResultPart, Usage
from runtime.testing import ScriptedProvider

BASE: dict[str, Any] = {
    "provider": "main",
    "providers": {"main": {"kind": "scripted", "model": "scripted",
                           "script": [{"text": "unused"}]}},
    "task": "do it",
}
PATCH = "*** Begin Patch\n*** Add File: via_function.txt\n+made by a function call\n" \
        "*** End Patch\n"


async def two_turns(run_agent: Callable[..., Any], path: Path, first: Response
                    ) -> tuple[Any, Request]:
    """A session whose provider answers ``first`` and then "done": the run (finished) and
    the second request (the one that carries the tool results)."""
    seen: list[Request] = []

    def final(req: Request) -> Response:
        seen.append(req)
        return Response("r2", "scripted", [TextPart("done")], "stop", "stop", Usage(1, 1))

    run = await run_agent(path, providers={"main": ScriptedProvider("main", [first, final])})
    assert run.outcome.status == "finished"
    return run, seen[0]


async def test_client_run_calls_are_answered_in_a_session(
        write_config: Callable[..., Path], run_agent: Callable[..., Any], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """shell, apply_patch (native and function) and an unknown custom call each get a
    result of their kind in the next request; the shell sees only allowlisted, non-secret
    variables; long output is capped at tools.max_output_chars."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-session-secret-123456")
    monkeypatch.setenv("VISIBLE_VAR", "yes")
    first = Response("r1", "scripted", [
        ToolCallPart("c1", "shell", json.dumps({"commands": ["env", "seq 1 3000"]}),
                     kind="shell"),
        ToolCallPart("c2", "apply_patch", json.dumps(
            {"type": "create_file", "path": "native.txt", "diff": "+made natively\n"}),
            kind="apply_patch"),
        ToolCallPart("c3", "apply_patch", json.dumps({"patch": PATCH})),
        ToolCallPart("c4", "sql", "SELECT 1", kind="custom"),
    ], "tool_calls", "tool_calls", Usage(1, 1))
    cfg = {**BASE, "tools": {"builtin": ["run_shell", "apply_patch"],
                             "approval": {"run_shell": "auto"}, "shell_env": ["VISIBLE_VAR"],
                             "max_output_chars": 400,
                             "workspace": str(tmp_path / "workspace")}}
    run, second = await two_turns(run_agent, write_config(cfg), first)
    results = [p for p in second.messages[-1].parts if isinstance(p, ToolResultPart)]
    assert [(r.call_id, r.kind, r.is_error) for r in results] == [
        ("c1", "shell", False), ("c2", "apply_patch", False), ("c3", "function", False),
        ("c4", "custom", True)]
    env_out, seq_out = results[0].meta["outputs"]  # type: ignore[index]
    assert "VISIBLE_VAR=yes" in env_out["stdout"] and "sk-session" not in env_out["stdout"]
    assert "OPENAI_API_KEY" not in env_out["stdout"]
    assert "characters cut" in seq_out["stdout"] and len(seq_out["stdout"]) < 400
    assert results[1].meta == {"status": "completed"}
    assert (tmp_path / "workspace" / "native.txt").read_text() == "made natively\n"
    assert (tmp_path / "workspace" / "via_function.txt").read_text() == \
        "made by a function call\n"
    assert "Unknown tool 'sql'" in str(results[3].content)
    assert [e["call_id"] for e in run.events("tool_rejected")] == ["c4"]


async def test_function_tools_in_a_session_scrub_and_cap(
        write_config: Callable[..., Path], run_agent: Callable[..., Any], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """run_shell sees the allowlist and no secret, apply_patch edits the workspace, and every
    result reaching the model is capped at tools.max_output_chars."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-session-secret-123456")
    monkeypatch.setenv("VISIBLE_VAR", "yes")
    first = Response("r1", "scripted", [
        ToolCallPart("c1", "run_shell", json.dumps({"command": "env; seq 1 3000"})),
        ToolCallPart("c2", "apply_patch", json.dumps({"patch": PATCH})),
    ], "tool_calls", "tool_calls", Usage(1, 1))
    cfg = {**BASE, "tools": {"builtin": ["run_shell", "apply_patch"],
                             "approval": {"run_shell": "auto"}, "shell_env": ["VISIBLE_VAR"],
                             "max_output_chars": 3000,
                             "workspace": str(tmp_path / "workspace")}}
    _, second = await two_turns(run_agent, write_config(cfg), first)
    shell, patch = [p for p in second.messages[-1].parts if isinstance(p, ToolResultPart)]
    text = str(shell.content)
    assert "VISIBLE_VAR=yes" in text and "sk-session" not in text
    assert "OPENAI_API_KEY" not in text
    assert "characters cut" in text and len(text) < 3100
    assert str(patch.content).splitlines() == ["Applied the patch:", "A via_function.txt"]
    assert (tmp_path / "workspace" / "via_function.txt").read_text() == \
        "made by a function call\n"


async def test_a_workspace_that_is_a_file_stops_the_session_before_its_run_folder(
        write_config: Callable[..., Path], run_agent: Callable[..., Any],
        tmp_path: Path) -> None:
    """tools.workspace naming a file is a ConfigError on tools.workspace, and no run folder
    is left behind."""
    (tmp_path / "file.txt").write_text("not a folder")
    cfg = {**BASE, "tools": {"builtin": ["read_file"], "workspace": str(tmp_path / "file.txt")}}
    with pytest.raises(ConfigError) as info:
        await run_agent(write_config(cfg))
    assert info.value.path == "tools.workspace"
    logs = tmp_path / "logging"
    assert not logs.exists() or not any(logs.iterdir())
