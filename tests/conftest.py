"""Shared fixtures: write an agent.yaml into a temporary folder and run a session in process."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from runtime.cli.attach import attach
from runtime.cli.console import Console
from runtime.config import load_config
from runtime.engine import Engine
from runtime.redact import Redactor
from runtime.session.outcome import SessionResult


class Run:
    """The result of an in-process session: outcome, run folder, captured console."""

    def __init__(self, outcome: SessionResult, run_dir: Path, out: str, err: str,
                 engine: Engine | None = None) -> None:
        self.outcome = outcome
        self.run_dir = run_dir
        self.out = out
        self.err = err
        # what the engine owned per provider: its circuit breaker and rate limiter (the
        # pure state machines inside the actor's async wrappers)
        self.breakers = {n: getattr(rt.options.breaker, "local", rt.options.breaker)
                         for n, rt in (engine.runtimes.items() if engine else ())}
        self.limiters = {n: getattr(rt.options.limiter, "local", rt.options.limiter)
                         for n, rt in (engine.runtimes.items() if engine else ())}

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
    """Run a session in process on its own engine, rendered by the command line's console
    into captured stdout/stderr; returns a ``Run``. Keywords: ``resume``, ``run_id``,
    ``history``, ``ask`` (answers approvals) and the engine's seams (``providers``,
    ``extra_tools``, ``transport``, ``hooks``)."""

    async def run(path: Path, *, task: str | None = None, environ: dict[str, str] | None = None,
                  resume: str | None = None, run_id: str | None = None,
                  history: list[Any] | None = None, ask: Any = None,
                  extra_tools: list[Any] | None = None, **engine: Any) -> Run:
        env = {"TEST_TRACE_KEY": "unit-test-trace-key", **(environ or {})}
        cfg = load_config(path, environ=env)
        out, err = io.StringIO(), io.StringIO()
        console = Console(out, err, Redactor(cfg.secrets(), cfg.logging.redact),
                          stream_answer=False)
        async with Engine.open(cfg, environ=env, tools=extra_tools or (), **engine) as eng:
            session = await eng.start(task or (None if resume else cfg.task), resume=resume,
                                      run_id=run_id, history=history,
                                      on_approval="wait" if ask is not None else "deny")
            result = await attach(session, console, asker=ask)
        return Run(result, session.run_dir, out.getvalue(), err.getvalue(), eng)

    return run


# Under pytest-xdist (``-n 2 --dist loadgroup`` in pyproject.toml) the tests of a group run in
# one worker: a session-scoped server (llama-server for tests/local, redis-server for
# tests/fleet) is then started once, not once per worker.
_GROUPS = {"local": "local_model", "fleet": "fleet"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    root = Path(__file__).parent
    for item in items:
        try:
            first = Path(item.path).relative_to(root).parts[0]
        except ValueError:
            continue
        group = _GROUPS.get(first)
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))
