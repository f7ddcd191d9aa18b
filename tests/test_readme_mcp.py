"""The README's MCP example runs with ``.venv/bin/python main.py`` when the venv is not on
PATH: ``command: python`` means the interpreter running the conductor."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

from tests.recordings import ROOT


def readme_mcp_tools() -> dict[str, object]:
    """The ``tools:`` block of the README's "MCP tools" section, as YAML data."""
    text = (ROOT / "README.md").read_text("utf-8")
    section = text.split("## MCP tools", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert block is not None, "README.md lost its MCP example"
    tools: dict[str, object] = yaml.safe_load(block[1])["tools"]
    return tools


def test_readme_mcp_example_runs_without_the_venv_on_path(tmp_path: Path) -> None:
    """With a PATH whose ``python`` and ``python3`` are not the conductor's interpreter (they
    exit at once), the README's servers still start and the model's call of
    ``time__get_current_time`` gets a real answer; exit 0."""
    tools = readme_mcp_tools()
    assert tools["mcp"]["time"]["command"] == "python"  # type: ignore[index]
    decoy = tmp_path / "bin"
    decoy.mkdir()
    for name in ("python", "python3"):
        (decoy / name).write_text("#!/bin/sh\necho 'not the conductor python' >&2\nexit 3\n")
        (decoy / name).chmod(0o755)
    config = {
        "provider": "main",
        "providers": {"main": {"kind": "scripted", "script": [
            {"tool_calls": [{"name": "time__get_current_time",
                             "arguments": {"timezone": "UTC"}}]},
            {"text": "It is time."}]}},
        "task": "What time is it in UTC?",
        "tools": {**tools, "workspace": "ws"},
        "logging": {"dir": str(tmp_path / "logging")},
        "reasoning": {"encrypt": False},
    }
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump(config), "utf-8")
    env = {**os.environ, "PATH": f"{decoy}{os.pathsep}/usr/bin{os.pathsep}/bin"}
    env.pop("VIRTUAL_ENV", None)
    proc = subprocess.run([sys.executable, str(ROOT / "main.py"), "--config", str(path),
                           "--run-id", "mcp"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "It is time."
    records = [json.loads(line) for line in
               (tmp_path / "logging" / "mcp" / "transcript.jsonl").read_text().splitlines()]
    (result,) = [r for r in records if r["type"] == "tool_result"]
    assert result["ok"] is True and "UTC" in result["content"]
