"""The package's public face is exactly what README.md documents."""

from __future__ import annotations

import re

import runtime
from tests.recordings import ROOT


def test_exported_names_are_the_documented_ones() -> None:
    """`runtime.__all__` equals the README's "Public API" list, and every name resolves."""
    text = (ROOT / "README.md").read_text()
    section = re.search(r"Public API \(`import runtime`\):(.*?)\. Test doubles", text, re.S)
    assert section is not None, "README.md lost its Public API paragraph"
    documented = set(re.findall(r"`(\w+)`", section.group(1)))
    assert documented == set(runtime.__all__)
    for name in runtime.__all__:
        assert getattr(runtime, name) is not None


PURE = ["runtime.model", "runtime.events", "runtime.errors", "runtime.error_kinds",
        "runtime.redact", "runtime.crypto",
        "runtime.resilience", "runtime.resilience.retry", "runtime.resilience.ratelimit",
        "runtime.resilience.breaker", "runtime.resilience.shared", "runtime.pricing",
        "runtime.cache", "runtime.accounting", "runtime.wire.sse", "runtime.wire.openai_chat",
        "runtime.wire.openai_responses", "runtime.wire.anthropic"]


def test_pure_core_imports_no_trio_and_no_httpx() -> None:
    """The pure modules (codecs, SSE, backoff, limits, pricing, redaction, cache keys) load
    without trio or httpx: they do no I/O."""
    import subprocess
    import sys

    code = ("import sys\n" + "".join(f"import {m}\n" for m in PURE) +
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'trio', 'httpx', 'anyio'}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
