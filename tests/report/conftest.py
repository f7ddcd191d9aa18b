"""The run folders every report test reads: made once per session by real sessions."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio

from .runs import make_runs


@pytest.fixture(scope="session")
def made(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, Any]]]:
    """``(logging folder, what was observed while making it)``."""
    folder = tmp_path_factory.mktemp("runs")
    seen = trio.run(make_runs, folder)
    yield folder / "logging", seen
    shutil.rmtree(folder, ignore_errors=True)
