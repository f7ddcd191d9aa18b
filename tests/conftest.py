"""Shared fixtures: write an agent.yaml into a temporary folder and run a session in process."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from runtime.app import run_session
from runtime.conductor import Outcome
from runtime.config import load_config


class Run:
    """The result of an in-process session: outcome, run folder, captured console."""

    def __init__(self, outcome: Outcome, run_dir: Path, out: str, err: str) -> None:
        self.outcome = outcome
        self.run_dir = run_dir
        self.out = out
        self.err = err

    @property
    def transcript(self) -> list[dict[str, Any]]:
        path = self.run_dir / "transcript.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()]

    def events(self, type: str) -> list[dict[str, Any]]:
        return [e for e in self.transcript if e["type"] == type]

    @property
    def summary(self) -> dict[str, Any]:
        return json.loads((self.run_dir / "summary.json").read_text())  # type: ignore[no-any-return]

    def errors(self, turn: int) -> list[dict[str, Any]]:
        return json.loads((self.run_dir / "errors" / f"turn_{turn}.json").read_text())  # type: ignore[no-any-return]


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[..., Path]:
    """Write a config dict as agent.yaml under tmp_path (logging and workspace inside it)."""

    def write(cfg: dict[str, Any], name: str = "agent.yaml") -> Path:
        cfg = dict(cfg)
        cfg.setdefault("logging", {}).setdefault("dir", str(tmp_path / "logging"))
        cfg.setdefault("tools", {}).setdefault("workspace", str(tmp_path / "workspace"))
        cfg.setdefault("reasoning", {"encrypt": True, "key_env": "TEST_TRACE_KEY"})
        path = tmp_path / name
        path.write_text(yaml.safe_dump(cfg))
        return path

    return write


@pytest.fixture
def run_agent() -> Callable[..., Any]:
    """Run a session in process with captured stdout/stderr; returns a ``Run``."""

    async def run(path: Path, *, task: str | None = None, environ: dict[str, str] | None = None,
                  **kwargs: Any) -> Run:
        env = {"TEST_TRACE_KEY": "unit-test-trace-key", **(environ or {})}
        cfg = load_config(path, environ=env)
        out, err = io.StringIO(), io.StringIO()
        outcome, run_dir = await run_session(
            cfg, task=task or (None if kwargs.get("resume") else cfg.task), stdout=out, stderr=err, stream_answer=False,
            handle_signals=False, environ=env, **kwargs)
        return Run(outcome, run_dir, out.getvalue(), err.getvalue())

    return run


@pytest.fixture(autouse=True)
def _fresh_process_wide_state() -> None:
    """Circuit breakers and rate limiters are shared by every session of a process: each
    test starts with none."""
    from runtime.resilience import breaker, ratelimit

    breaker.clear_registry()
    ratelimit.clear_registry()
