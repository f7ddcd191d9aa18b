"""The package's public face is exactly what README.md documents."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

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
# pure modules inside packages whose other parts do I/O: each must load alone, without its
# package's actors, servers or clients
PURE_IN_PACKAGES = ["runtime.config", "runtime.providers.kinds", "runtime.tools",
                    "runtime.tools.validate", "runtime.tools.schema", "runtime.testing",
                    "runtime.testing.faults", "runtime.testing.script", "runtime.testing.expect",
                    "runtime.testing.wire.openai_chat", "runtime.testing.wire.openai_responses",
                    "runtime.testing.wire.anthropic"]
HEAVY = {"trio", "httpx", "h11", "anyio", "httpcore", "mcp"}


def _loaded_after(code: str) -> str:
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_pure_core_imports_no_trio_and_no_httpx() -> None:
    """The pure modules (codecs, SSE, backoff, limits, pricing, redaction, cache keys) load
    without trio or httpx: they do no I/O."""
    code = ("import sys\n" + "".join(f"import {m}\n" for m in PURE) +
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'trio', 'httpx', 'anyio'}))")
    assert _loaded_after(code) == "[]"


@pytest.mark.parametrize("module", PURE_IN_PACKAGES)
def test_pure_module_in_a_package_loads_alone(module: str) -> None:
    """Importing ``module`` in a fresh interpreter loads none of trio, httpx, h11, anyio or
    the MCP SDK: its package resolves its other names lazily."""
    code = (f"import sys\nimport {module}\n"
            f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({sorted(HEAVY)!r})))")
    assert _loaded_after(code) == "[]"


def test_lazy_packages_still_export_their_names() -> None:
    """runtime.tools, runtime.testing and runtime.providers resolve every name of their
    __all__ on use; ScriptedProvider is the product's, re-exported for tests."""
    import runtime.providers
    import runtime.providers.scripted
    import runtime.testing
    import runtime.tools

    for package in (runtime.tools, runtime.testing, runtime.providers):
        for name in package.__all__:
            assert getattr(package, name) is not None, (package.__name__, name)
        with pytest.raises(AttributeError):
            _ = package.no_such_name
    assert runtime.testing.ScriptedProvider is runtime.providers.scripted.ScriptedProvider
    assert runtime.providers.ScriptedProvider is runtime.providers.scripted.ScriptedProvider


def _imports(path: Path, root: Path = ROOT) -> set[str]:
    """Every module ``path`` imports, relative imports resolved against its package."""
    package = ".".join(path.relative_to(root).parent.parts)  # the package path is in
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")
            base = base[:len(base) - node.level + 1] if node.level else []
            mod = ".".join([*base, *([node.module] if node.module else [])])
            found.add(mod)
            found.update(f"{mod}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "import_module":
            found.update(a.value for a in node.args if isinstance(a, ast.Constant)
                         and isinstance(a.value, str) and "testing" in a.value)
    return found


def test_production_code_never_imports_the_test_doubles() -> None:
    """No module of the package outside runtime/testing/ imports runtime.testing: the
    scripted provider the product uses lives in runtime.providers.scripted."""
    offenders = {}
    for path in (ROOT / "runtime").rglob("*.py"):
        if "testing" in path.relative_to(ROOT / "runtime").parts:
            continue
        bad = {m for m in _imports(path) if m == "runtime.testing"
               or m.startswith("runtime.testing.") or ".testing" in m}
        if bad:
            offenders[str(path.relative_to(ROOT))] = sorted(bad)
    assert offenders == {}


def test_the_import_scan_resolves_relative_imports(tmp_path: Path) -> None:
    """The scan sees ``from ..testing.scripted import X`` in runtime/providers/ (how the old
    build_provider imported it) as an import of runtime.testing."""
    fake = tmp_path / "runtime" / "providers" / "__init__.py"
    fake.parent.mkdir(parents=True)
    fake.write_text("from ..testing.scripted import ScriptedProvider\nfrom . import kinds\n")
    got = _imports(fake, tmp_path)
    assert {"runtime.testing.scripted", "runtime.testing.scripted.ScriptedProvider",
            "runtime.providers", "runtime.providers.kinds"} <= got
