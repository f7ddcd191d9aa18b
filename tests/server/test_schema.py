"""``/openapi.json`` is what is served: every route is in it, and schemathesis, driving the
running service from the document, finds no server error and no answer outside it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from runtime.server.spec import ROUTES

from .conftest import KEYS, Fake, server_config


def test_every_route_is_documented(tmp_path: Path, fake: Fake, serve: Any) -> None:
    """The served document lists exactly the route table's routes, each with its scope, and
    the provider names of this deployment."""
    served = serve(server_config(tmp_path, fake))
    doc = httpx.get(f"{served.url}/openapi.json",
                    headers={"authorization": f"Bearer {KEYS['viewer'][0]}"}).json()
    served_ops = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    assert served_ops == {(r.method, r.path) for r in ROUTES}
    for r in ROUTES:
        op = doc["paths"][r.path][r.method.lower()]
        assert op["operationId"] == r.name
        assert op.get("x-required-scope") == r.scope
    create = doc["components"]["schemas"]["CreateSession"]["properties"]["provider"]
    assert {"enum": ["main"]} in create["anyOf"]


def schemathesis(url: str, cwd: Path, *args: str) -> tuple[int, str]:
    """One ``schemathesis run`` against ``url``, bounded by examples, not by time (a time
    budget made the phases that ran depend on the machine's load)."""
    out = subprocess.run(
        [sys.executable, "-m", "schemathesis.cli", "run", f"{url}/openapi.json",
         "-H", f"Authorization: Bearer {KEYS['admin'][0]}", "--max-examples", "10",
         "--request-timeout", "2", "--workers", "1", "--seed", "1", "--no-color", *args],
        cwd=cwd, capture_output=True, text=True, timeout=600)
    report = out.stdout[-6000:] + out.stderr[-2000:]
    assert "No issues found" in out.stdout or " passed" in out.stdout, report
    return out.returncode, report


def test_schemathesis_finds_nothing(tmp_path: Path, fake: Fake, serve: Any) -> None:
    """schemathesis (every phase, every check) against the running service reports no
    failure. The coverage phase runs without ``positive_data_acceptance``: it files a
    header mutation with a non-object body (``-d 0``) as schema-valid (a known false
    positive of that phase); the fuzzing and stateful phases run that check too."""
    fake.feed(3000)
    served = serve(server_config(tmp_path, fake, max_body_bytes=4_000_000,
                                 tools={"builtin": ["list_dir"], "approval": {}}))
    code, report = schemathesis(served.url, tmp_path, "--phases", "examples,fuzzing,stateful",
                                "--checks", "all")
    assert code == 0, report
    code, report = schemathesis(served.url, tmp_path, "--phases", "coverage", "--checks", "all",
                                "--exclude-checks", "positive_data_acceptance")
    assert code == 0, report
