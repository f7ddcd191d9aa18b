"""Lazy package exports: a package names the module each public name lives in, and that
module is imported the first time the name is used, so importing a package stays cheap
and pure (``tests/test_public_api.py``). Pure: imports nothing but ``importlib``."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(package: str, where: Mapping[str, str],
                 namespace: dict[str, Any]) -> Callable[[str], Any]:
    """The module ``__getattr__`` of ``package``: ``where`` maps a public name to the
    submodule (relative to the package) that defines it; a name once loaded is kept in the
    package's ``namespace`` (its ``globals()``), so the lookup happens once."""

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f".{module}", package), name)
        namespace[name] = value
        return value

    return __getattr__
