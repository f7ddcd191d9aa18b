"""Processes of the multi-process fleet tests: the fake provider and workers, started with
the worktree's interpreter and stopped by PID."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import yaml

from runtime.config import BackendConfig

ROOT = Path(__file__).resolve().parents[2]


def env(tmp: Path) -> dict[str, str]:
    e = dict(os.environ)
    e.update({"PYTHONPATH": str(ROOT), "COUNT_FILE": str(tmp / "count.txt"),
              "COUNT_GATE": str(tmp / "count.gate"),
              "TEST_TRACE_KEY": "fleet-test-trace-key", "PYTHONUNBUFFERED": "1"})
    return e


class Proc:
    """A subprocess whose output a thread copies to ``log`` (so that a test can wait for a
    line without polling)."""

    def __init__(self, args: list[str], tmp: Path, log: Path) -> None:
        self.log = log
        self._lines: list[str] = []
        self._cond = threading.Condition()
        self.popen = subprocess.Popen(args, cwd=tmp, env=env(tmp), stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        with open(self.log, "ab") as out:
            for raw in self.popen.stdout:
                out.write(raw)
                out.flush()
                with self._cond:
                    self._lines.append(raw.decode(errors="replace"))
                    self._cond.notify_all()

    def wait_for(self, text: str, timeout: float) -> None:
        """Block until a line containing ``text`` was printed (TimeoutError after
        ``timeout`` seconds)."""
        with self._cond:
            if not self._cond.wait_for(lambda: any(text in ln for ln in self._lines),
                                       timeout):
                raise TimeoutError(f"{text!r} not printed in {timeout} s: {self.output()}")

    @property
    def pid(self) -> int:
        return self.popen.pid

    def signal(self, sig: int) -> None:
        if self.popen.poll() is None:
            os.kill(self.popen.pid, sig)

    def wait(self, timeout: float) -> int:
        return self.popen.wait(timeout=timeout)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not exit in 20 s."""
        if self.popen.poll() is not None:
            return
        self.signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            self.popen.wait(timeout=10)

    def output(self) -> str:
        with self._cond:
            return "".join(self._lines)


def fake_provider(tmp: Path, *, faults: bool) -> tuple[Proc, str]:
    """The fake provider process; returns it and its base URL (openai-chat)."""
    port_file = tmp / "provider.port"
    args = [sys.executable, "-m", "tests.fleet.fake_provider", str(port_file),
            str(tmp / "provider.log")] + (["--faults"] if faults else [])
    proc = Proc(args, tmp, tmp / "provider.out")
    deadline = time.monotonic() + 30
    while not port_file.exists():
        if proc.popen.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the fake provider did not start: {proc.output()}")
        time.sleep(0.02)
    return proc, f"http://127.0.0.1:{port_file.read_text()}/v1"


def agent_config(tmp: Path, name: str, base_url: str, backend: BackendConfig,
                 **extra: Any) -> Path:
    cfg: dict[str, Any] = {
        "provider": "main",
        "providers": {"main": {"kind": "openai-chat", "model": "m", "api_key": "k",
                               "base_url": base_url,
                               "retry": {"max_attempts": 8, "base_delay": 0.01,
                                         "max_delay": 0.1},
                               **extra.pop("provider", {})}},
        "tools": {"python": ["tests.fleet.count_tool:count"],
                  "workspace": str(tmp / "workspace")},
        "logging": {"dir": str(tmp / name / "logging")},
        "reasoning": {"encrypt": True, "key_env": "TEST_TRACE_KEY"},
        "backend": {"url": backend.url, "prefix": backend.prefix,
                    "lease_timeout": backend.lease_timeout},
        **extra,
    }
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def worker(tmp: Path, config: Path, name: str, concurrency: int = 8) -> Proc:
    args = [sys.executable, str(ROOT / "main.py"), "worker", "--config", str(config),
            "--concurrency", str(concurrency), "--name", name, "--log-format", "json",
            "--grace", "5"]
    return Proc(args, tmp, tmp / f"{name}.out")
