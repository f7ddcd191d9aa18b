"""``python main.py fleet``: workers, leases, queue depth and the shared limiter as a
table (or JSON), read from a live fleet; without ``backend:`` it is a usage error, and so
is a worker's."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import trio

from runtime.cli import main
from runtime.config import BackendConfig, load_config
from runtime.fleet.connection import open_backend
from runtime.fleet.queue import SessionQueue
from runtime.testing import open_fake_server

from .fake_provider import Endless
from .test_worker import ENV, _until, _worker, write_agent


def _run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(argv, stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


# a request takes 30 s to come back: the one the session made is still missing when the
# command looks, however slowly it starts
RPM = 2


async def test_the_fleet_at_a_glance(tmp_path: Path, backend_config: BackendConfig,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker holding one session (waiting for an approval) and one session queued:
    the command shows the worker, the lease, the queue and the limiter's state."""
    monkeypatch.setenv("COUNT_FILE", str(tmp_path / "count.txt"))
    async with open_fake_server(Endless(str(tmp_path / "p.log"), faults=False)) as fake, \
            open_backend(backend_config) as backend:
        path = write_agent(tmp_path, "a", fake.base_url("openai-chat"), backend_config,
                           provider={"rate_limit": {"requests_per_minute": RPM}}, tools={
            "python": ["tests.fleet.count_tool:count"], "approval": {"count": "ask"},
            "workspace": str(tmp_path / "ws")})
        cfg = load_config(path, environ=ENV)
        queue = SessionQueue(backend)
        rid = await queue.enqueue("count once")
        stop = trio.Event()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(lambda: _worker(cfg, backend, "a", stop, concurrency=1))
            with trio.fail_after(30):
                await _until(backend, rid, "approval_request")
            await queue.enqueue("waits for a free slot")
            code, out, err = await trio.to_thread.run_sync(
                _run, ["fleet", "--config", str(path), "--json"])
            assert code == 0, err
            snap = json.loads(out)
            [w] = snap["workers"]
            assert (w["name"], w["running"], w["concurrency"]) == ("a", 1, 1)
            [lease] = snap["leases"]
            assert (lease["run_id"], lease["worker"]) == (rid, "a")
            assert 0 < lease["lease_left_s"] <= backend_config.lease_timeout
            assert snap["queued"] >= 1
            [p] = snap["providers"]
            assert (p["provider"], p["rpm"], p["circuit"]) == ("main", RPM, "closed")
            assert p["requests_left"] < RPM
            code, table, _ = await trio.to_thread.run_sync(_run, ["fleet", "--config",
                                                                 str(path)])
            assert code == 0 and "workers" in table and rid in table and "closed" in table
            stop.set()


def test_commands_need_a_backend(tmp_path: Path) -> None:
    """fleet and worker without backend: exit 2 and say what to add."""
    path = tmp_path / "agent.yaml"
    path.write_text("provider: s\nproviders: {s: {kind: scripted, script: [{text: x}]}}\n"
                    f"tools: {{workspace: {tmp_path}}}\n")
    for command in ("fleet", "worker"):
        code, _out, err = _run([command, "--config", str(path)])
        assert code == 2 and "backend:" in err and "redis://" in err
