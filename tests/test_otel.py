"""OpenTelemetry spans with gen_ai.* attributes when the SDK is installed, nothing otherwise.

Each case runs in a fresh interpreter: the tracer provider is process-global."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.recordings import ROOT

SESSION = r"""
import io, json, sys, trio, yaml
sys.path.insert(0, {root!r})
{prelude}
from runtime.engine import run_session
from runtime.config import load_config
from pathlib import Path
tmp = Path({tmp!r})
(tmp / "agent.yaml").write_text(yaml.safe_dump({{
    "provider": "main", "task": "go",
    "providers": {{"main": {{"kind": "scripted", "model": "scripted", "script": [
        {{"tool_calls": [{{"name": "list_dir", "arguments": {{"path": "."}}}}]}},
        {{"text": "done"}}]}}}},
    "tools": {{"builtin": ["list_dir"], "workspace": str(tmp / "ws")}},
    "logging": {{"dir": str(tmp / "logs")}}, "reasoning": {{"encrypt": False}}}}))
cfg = load_config(tmp / "agent.yaml")
outcome, _ = trio.run(lambda: run_session(cfg, task=cfg.task))
{report}
"""

WITH_SDK = """
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)
"""

WITHOUT_SDK = """
import importlib.metadata
_real = importlib.metadata.distribution
def _hidden(name):
    if name == "opentelemetry-sdk":
        raise importlib.metadata.PackageNotFoundError(name)
    return _real(name)
importlib.metadata.distribution = _hidden
"""


def run(tmp_path: Path, prelude: str, report: str) -> dict:
    code = SESSION.format(root=str(ROOT), tmp=str(tmp_path), prelude=prelude, report=report)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_spans_follow_genai_conventions(tmp_path: Path) -> None:
    """With the SDK: one chat span per attempt and one execute_tool span, gen_ai.* attributes."""
    pytest.importorskip("opentelemetry.sdk")
    out = run(tmp_path, WITH_SDK, "print(json.dumps([{'name': s.name, 'attrs': dict(s.attributes)}"
                                  " for s in exporter.get_finished_spans()]))")
    names = [s["name"] for s in out]
    assert names.count("chat scripted") == 2 and names.count("execute_tool list_dir") == 1
    chat = next(s["attrs"] for s in out if s["name"] == "chat scripted")
    assert chat["gen_ai.operation.name"] == "chat"
    assert chat["gen_ai.request.model"] == "scripted"
    assert chat["gen_ai.provider.name"] == "main"
    assert chat["gen_ai.usage.output_tokens"] > 0
    assert chat["conductor.request_id"].startswith("req_")
    tool = next(s["attrs"] for s in out if s["name"].startswith("execute_tool"))
    assert tool["gen_ai.tool.name"] == "list_dir"


def test_nothing_imported_without_the_extra(tmp_path: Path) -> None:
    """Without the [otel] extra no opentelemetry module is imported by a session."""
    out = run(tmp_path, WITHOUT_SDK,
              "print(json.dumps(sorted(m for m in sys.modules if m.startswith('opentelemetry'))))")
    assert out == []


def test_no_span_work_when_the_application_set_no_tracer_provider(tmp_path: Path) -> None:
    """With the SDK installed but no tracer provider set, every span would be a no-op: no
    hook is registered for them, so attempts and tool calls do not pay a trip through the
    hooks' task for nothing."""
    pytest.importorskip("opentelemetry.sdk")
    out = run(tmp_path, "", "print(json.dumps('runtime.otel' in sys.modules))")
    assert out is False
