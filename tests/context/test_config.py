"""agent.yaml's context section and providers.<name>.context_window: defaults, and
errors that name the key path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from runtime.config import load_config
from runtime.context import ContextPolicy
from runtime.errors import ConfigError

ENV = {"ANTHROPIC_API_KEY": "sk-ant-test-1234"}


def config(**extra: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = {"provider": "main", "providers": {"main": {
        "kind": "anthropic", "model": "claude-sonnet-4-5", "api_key": "${ANTHROPIC_API_KEY}"}}}
    cfg.update(extra)
    return cfg


def load(tmp_path: Path, data: dict[str, Any]) -> Any:
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_config(path, environ=ENV)


def test_defaults(tmp_path: Path) -> None:
    """Without a context section: elide, reserve 4096, keep 4 turns, no window override."""
    cfg = load(tmp_path, config())
    assert cfg.context.policy() == ContextPolicy("elide", 4096, 4)
    assert cfg.main.context_window is None


def test_values(tmp_path: Path) -> None:
    """The section and the per-provider window are read as given."""
    data = config(context={"strategy": "summarize", "reserve_output": 1000,
                           "keep_recent_turns": 2})
    data["providers"]["main"]["context_window"] = 4000
    cfg = load(tmp_path, data)
    assert cfg.context.policy() == ContextPolicy("summarize", 1000, 2)
    assert cfg.main.context_window == 4000


@pytest.mark.parametrize(("section", "path", "words"), [
    ({"context": {"strategy": "truncate"}}, "context.strategy", "elide"),
    ({"context": {"reserve_output": 0}}, "context.reserve_output", ">= 1"),
    ({"context": {"keep_recent_turns": 0}}, "context.keep_recent_turns", ">= 1"),
    ({"context": {"keep_turns": 3}}, "context.keep_turns", "keep_recent_turns"),
    ({"context": {"reserve_output": "lots"}}, "context.reserve_output", "int"),
])
def test_errors_name_the_key_path(tmp_path: Path, section: dict[str, Any], path: str,
                                  words: str) -> None:
    """A wrong context value is an error naming its key path."""
    with pytest.raises(ConfigError) as info:
        load(tmp_path, config(**section))
    assert info.value.path == path, str(info.value)
    assert words in str(info.value)


@pytest.mark.parametrize(("window", "words"), [(-5, ">= 1"), (4096, "reserve_output"),
                                                 ("big", "int")])
def test_bad_context_window(tmp_path: Path, window: Any, words: str) -> None:
    """A context_window that is not a positive count above the reserve is refused."""
    data = config()
    data["providers"]["main"]["context_window"] = window
    with pytest.raises(ConfigError) as info:
        load(tmp_path, data)
    assert info.value.path == "providers.main.context_window", str(info.value)
    assert words in str(info.value)
