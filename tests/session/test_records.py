"""Transcript records: every type round-trips through its struct; a run written by the
previous format still resumes; an embedding program sees nothing on its stdout/stderr."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import msgspec
import pytest
import yaml

from runtime.config import load_config
from runtime.engine import Engine
from runtime.model import ReasoningPart, Request, Response, TextPart, ToolCallPart, Usage
from runtime.session.records import RECORD_TYPES, decode_line, encode_record
from runtime.testing import ScriptedProvider
from tests.recordings import ROOT

FIXTURES = Path(__file__).parent.parent / "fixtures"


def sample(cls: type[Any]) -> Any:
    """An instance with every field set to a value of its type that is not the default."""
    values: dict[str, Any] = {}
    for field in msgspec.structs.fields(cls):
        hint = str(field.type)
        if field.name == "parts":
            values["parts"] = [TextPart("hi"), ToolCallPart("c1", "t", '{"a": 1}', kind="custom")]
        elif "Literal" in hint:
            continue  # the default is a valid member
        elif hint.startswith("int") or field.type is int:
            values[field.name] = 7
        elif hint.startswith("float") or field.type is float:
            values[field.name] = 1.5
        elif "bool" in hint:
            values[field.name] = True
        elif "list" in hint:
            values[field.name] = ["x"] if "str" in hint else [1, 2]
        elif "dict" in hint or field.type is Any:
            values[field.name] = {"k": "v"}
        elif "str" in hint:
            values[field.name] = f"{field.name}-value"
    return cls(**values)


@pytest.mark.parametrize("tag", sorted(RECORD_TYPES))
def test_every_record_type_round_trips(tag: str) -> None:
    """Encoded then decoded, each record type comes back equal, with its type tag and the
    fields every record carries."""
    rec = sample(RECORD_TYPES[tag])
    line = encode_record(rec)
    assert decode_line(line) == rec
    data = json.loads(line)
    assert data["type"] == tag == rec.type
    assert {"ts", "run_id", "turn", "seq"} <= set(data)


def test_unknown_and_torn_lines_are_skipped_not_fatal() -> None:
    """A record type from a newer writer or a torn last line is skipped by readers."""
    assert decode_line(b'{"type": "from_the_future", "ts": 1}') is None
    assert decode_line(b'{"type": "warning", "mess') is None


async def test_a_run_of_the_previous_format_still_resumes(tmp_path: Path) -> None:
    """A run folder written by the previous version (whole conversation in state.json,
    reasoning frames keyed by message index, no seq) resumes: the signed reasoning comes
    back, the journal grows with new records, totals count both runs."""
    logs = tmp_path / "logs"
    shutil.copytree(FIXTURES / "legacy-run", logs / "legacy-run")
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump({
        "provider": "main", "providers": {"main": {"kind": "scripted", "model": "m",
                                                   "script": [{"text": "-"}]}},
        "tools": {"builtin": ["read_file", "write_file"], "workspace": str(tmp_path)},
        "logging": {"dir": str(logs)}, "reasoning": {"key_env": "LEGACY_KEY"}}))
    env = {"LEGACY_KEY": "legacy-fixture-key"}
    cfg = load_config(path, environ=env)
    seen: list[Request] = []

    def answer(req: Request) -> Response:
        seen.append(req)
        return Response("r3", "m", [TextPart("the note says hello")], "stop", "stop",
                        Usage(30, 5))

    async with Engine.open(cfg, environ=env, providers={"main": ScriptedProvider(
            "main", [answer])}) as engine:
        s = await engine.start("and now?", resume="legacy-run")
        result = await s.result()
    assert result.status == "finished" and result.answer == "the note says hello"
    messages = seen[0].messages
    assert [m.role for m in messages] == ["user", "assistant", "tool", "assistant", "tool",
                                          "user"]
    [thought] = [p for p in messages[1].parts if isinstance(p, ReasoningPart)]
    assert thought.signature == "SIG-LEGACY-1"
    lines = [json.loads(x) for x in (s.run_dir / "transcript.jsonl").read_text().splitlines()]
    assert lines[-1]["type"] == "session_end" and lines[-1]["status"] == "finished"
    assert [x["seq"] for x in lines if "seq" in x] == list(
        range(len(lines) - sum("seq" in x for x in lines) + 1, len(lines) + 1))
    summary = json.loads((s.run_dir / "summary.json").read_text())
    assert summary["runs"] == 2 and summary["totals"]["input_tokens"] == 10 + 20 + 30


EMBED = r"""
import sys, trio, yaml, httpx
from pathlib import Path
sys.path.insert(0, {root!r})
from runtime import Engine, load_config
from runtime.model import Response, TextPart, ToolCallPart, Usage
from runtime.testing import FakeProviderServer

made = []
real_init = httpx.AsyncClient.__init__
def counting_init(self, *a, **k):
    made.append(1)
    real_init(self, *a, **k)
httpx.AsyncClient.__init__ = counting_init

def answer(req):
    n = sum(m.get("role") == "assistant" for m in req.body.get("messages", []))
    if n == 0:
        return Response("r1", "m", [TextPart("looking"), ToolCallPart(
            "c1", "list_dir", '{{"path": "."}}')], "tool_calls", "tool_calls", Usage(10, 5))
    return Response("r2", "m", [TextPart("done")], "stop", "stop", Usage(20, 2))

tmp = Path({tmp!r})
with FakeProviderServer.in_thread([answer] * 400) as server:
    (tmp / "agent.yaml").write_text(yaml.safe_dump({{
        "provider": "main", "fallbacks": ["backup"], "task": "look",
        "providers": {{
            "main": {{"kind": "openai-chat", "model": "m", "api_key": "k-embed-1",
                      "base_url": server.base_url("openai-chat")}},
            "backup": {{"kind": "anthropic", "model": "m", "api_key": "k-embed-2",
                        "base_url": server.base_url("anthropic")}}}},
        "tools": {{"builtin": ["list_dir"], "workspace": str(tmp / "ws")}},
        "logging": {{"dir": str(tmp / "logs")}}, "reasoning": {{"encrypt": False}}}}))
    (tmp / "ws").mkdir()
    cfg = load_config(tmp / "agent.yaml")

    async def main():
        async with Engine.open(cfg) as engine:
            sessions = [await engine.start(f"task {{i}}") for i in range(100)]
            results = [await s.result() for s in sessions]
        return results

    results = trio.run(main)
open(tmp / "result.txt", "w").write(
    f"{{sorted(set(r.status for r in results))}} {{len(results)}} {{len(made)}}")
"""


def test_embedding_writes_nothing_and_shares_one_client_per_provider(tmp_path: Path) -> None:
    """100 sessions through one engine in a fresh interpreter: every one finishes, stdout
    and stderr stay empty (fd level), and one HTTP client exists per provider entry."""
    script = EMBED.format(root=str(ROOT), tmp=str(tmp_path))
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    assert proc.stdout == b"" and proc.stderr == b""
    assert (tmp_path / "result.txt").read_text() == "['finished'] 100 2"
