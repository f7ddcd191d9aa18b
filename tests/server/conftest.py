"""Service-mode fixtures: the fake provider (in a thread), ``serve`` as a real subprocess
stopped by PID, and an HTTP client that checks every answer against ``/openapi.json``."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import yaml

from runtime.model import Response, TextPart, ToolCallPart, Usage
from runtime.server.openapi import build
from runtime.testing import FakeProviderServer
from runtime.testing.script import RecordedRequest

ROOT = Path(__file__).resolve().parents[2]
KEYS = {  # name -> (key, scopes)
    "ops": ("ops-key-0123456789", ["sessions:read", "sessions:write", "approvals:write"]),
    "viewer": ("viewer-key-0123456789", ["sessions:read"]),
    "writer": ("writer-key-0123456789", ["sessions:read", "sessions:write"]),
    "admin": ("admin-key-0123456789", ["admin"]),
    "approver": ("approver-key-0123456789", ["approvals:write"]),
}


def bearer(name: str) -> dict[str, str]:
    return {"authorization": f"Bearer {KEYS[name][0]}"}


class Brain:
    """The fake model: answers by the task. ``hold`` stalls the first answer of tasks that
    contain ``[stall]`` until released (a long stall: the turn never ends by itself)."""

    def __init__(self) -> None:
        self.hold = True
        self.lock = threading.Lock()

    def __call__(self, req: RecordedRequest) -> Any:
        from runtime.testing.faults import stall

        messages = req.body.get("messages", [])
        task = next((m.get("content") for m in messages if m.get("role") == "user"), "")
        task = task if isinstance(task, str) else json.dumps(task)
        tool_results = [m for m in messages if m.get("role") == "tool"]
        users = [m for m in messages if m.get("role") == "user"]
        usage = Usage(input_tokens=100, output_tokens=20)
        if "[stall]" in task and self.hold:
            return stall(3600.0, then=_text("never", usage), after_events=1)
        if "[tool]" in task and not tool_results:
            return Response(parts=[TextPart("Let me look. "),
                                   ToolCallPart(id="call_1", name="run_shell",
                                                arguments='{"command": "echo approved-run"}')],
                            stop="tool_calls", usage=usage)
        if "[list]" in task and not tool_results:
            return Response(parts=[ToolCallPart(id="call_l", name="list_dir",
                                                arguments='{"path": "."}')],
                            stop="tool_calls", usage=usage)
        if tool_results:
            return _text(f"done after the tool: {str(tool_results[-1].get('content'))[:60]}",
                         usage)
        return _text(f"answer {len(users)} to: {users[-1].get('content')} "
                     + "streamed in many small pieces", usage)


def _text(text: str, usage: Usage) -> Response:
    return Response(parts=[TextPart(text)], stop="end_turn", usage=usage)


class Fake:
    def __init__(self, server: FakeProviderServer, brain: Brain) -> None:
        self.server = server
        self.brain = brain

    def feed(self, n: int = 400) -> None:
        self.server.add(*([self.brain] * n))


@pytest.fixture
def fake() -> Iterator[Fake]:
    """The fake provider on 127.0.0.1, answering by task (``Brain``)."""
    brain = Brain()
    with FakeProviderServer.in_thread([brain] * 400, chunk_chars=4,
                                      chunk_delay=0.002) as server:
        yield Fake(server, brain)


def server_config(tmp_path: Path, fake: Fake, *, tools: dict[str, Any] | None = None,
                  **server: Any) -> Path:
    """An agent.yaml for ``serve``: the fake provider, run_shell asking for approval
    (``tools`` replaces the tools section); ``server`` keys go to the server section."""
    cfg: dict[str, Any] = {
        "provider": "main",
        "providers": {"main": {"kind": "openai-chat", "model": "fake-model",
                               "api_key": "sk-provider-secret-0123456789",
                               "base_url": fake.server.base_url("openai-chat"),
                               "retry": {"max_attempts": 1}}},
        "tools": {"builtin": ["run_shell", "list_dir"], "approval": {"run_shell": "ask"},
                  **(tools or {}), "workspace": str(tmp_path / "workspace")},
        "logging": {"dir": str(tmp_path / "logging")},
        "reasoning": {"encrypt": False},
        "pricing": {"fake-model": {"input": 1.0, "output": 2.0}},
        "server": server_section(**server),
    }
    (tmp_path / "workspace").mkdir(exist_ok=True)
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def server_section(**server: Any) -> dict[str, Any]:
    """A server: section on a free port with the test keys (``server`` keys added)."""
    return {"port": 0, "api_keys": [
        {"name": name, "sha256": hashlib.sha256(key.encode()).hexdigest(),
         "scopes": scopes} for name, (key, scopes) in KEYS.items()],
        "rate_limit": {"requests_per_minute": 10000}, **server}


class Served:
    """``python main.py serve`` as a subprocess (stopped by PID); its stderr lines (JSON)."""

    def __init__(self, config: Path) -> None:
        self.config = config
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, "main.py", "serve", "--config", str(config), "--log-format",
             "json"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.lines: list[dict[str, Any]] = []
        self._listening = threading.Event()
        self.draining = threading.Event()   # the drain has begun (its first log line)
        self.url = ""
        threading.Thread(target=self._read, daemon=True).start()
        if not self._listening.wait(60):
            self.stop()
            raise RuntimeError(f"serve did not start: {self.lines}")

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            try:
                line = json.loads(raw)
            except ValueError:
                line = {"event": "raw", "text": raw.decode(errors="replace")}
            self.lines.append(line)
            if line.get("event") == "drain":
                self.draining.set()
            if line.get("event") == "listening":
                self.url = line["url"]
                self._listening.set()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def terminate(self) -> float:
        """SIGTERM by PID; returns the seconds until the process exited."""
        t0 = time.monotonic()
        os.kill(self.pid, signal.SIGTERM)
        self.proc.wait(timeout=120)
        return time.monotonic() - t0

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.proc.wait()


@pytest.fixture
def serve() -> Iterator[Callable[[Path], Served]]:
    """Start ``serve`` subprocesses; each is stopped by PID at the end."""
    started: list[Served] = []

    def start(config: Path) -> Served:
        s = Served(config)
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


_SPEC = build()


def check_response(resp: httpx.Response, path_template: str, method: str) -> None:
    """The answer is one that ``/openapi.json`` documents for this route: its status, its
    content type and (JSON) its body schema."""
    op = _SPEC["paths"][path_template][method.lower()]
    documented = op["responses"]
    assert str(resp.status_code) in documented, (
        f"{method} {path_template}: {resp.status_code} is not documented: {resp.text[:200]}")
    content = documented[str(resp.status_code)]["content"]
    ctype = resp.headers.get("content-type", "").split(";")[0]
    assert ctype in content, f"{ctype} not in {list(content)}"
    if ctype == "application/json":
        schema = {**content[ctype]["schema"], "components": _SPEC["components"]}
        jsonschema.validate(resp.json(), schema)
