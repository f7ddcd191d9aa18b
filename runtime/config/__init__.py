"""agent.yaml -> a typed ``AgentConfig``.

``load_config(path)`` reads the file, the ``.env`` beside it (never overriding variables
already in the environment), interpolates ``${VAR}`` / ``${VAR:-default}`` in every string
value (after YAML parsing: a value cannot inject YAML; ``$${`` is a literal ``${``), applies
the command line's overrides, decodes into msgspec Structs and checks the rules that relate
fields. Every problem is a ``ConfigError`` naming the file, the key path
(``providers.main.retry.max_attempts``) and a fix. Nothing is created on disk.

The package: ``schema`` (the typed shape), ``env`` (``.env`` and ``${VAR}``), ``paths``
(YAML lines, unknown keys, msgspec errors as key paths), ``checks`` (rules relating
fields). The provider kinds are ``runtime.providers.kinds``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec

from ..errors import ConfigError
from .checks import Checker
from .env import interpolate, interpolate_tree, parse_dotenv
from .paths import at_line, check_unknown, load_yaml, translate
from .schema import (
    BUILTIN_TOOLS,
    SCOPES,
    AgentConfig,
    ApiKeyConfig,
    BackendConfig,
    BudgetsConfig,
    CacheConfig,
    CacheMode,
    CircuitConfig,
    ContextConfig,
    ContextStrategy,
    JwtConfig,
    LimitsConfig,
    LoggingConfig,
    McpServer,
    PoolConfig,
    Price,
    ProviderConfig,
    ProviderKind,
    RateLimitConfig,
    ReasoningConfig,
    RetryConfig,
    ScriptToolCall,
    ScriptTurn,
    ServerConfig,
    ServerRateLimit,
    TimeoutConfig,
    ToolsConfig,
    normalise,
)

__all__ = [
    "BUILTIN_TOOLS",
    "SCOPES",
    "AgentConfig",
    "ApiKeyConfig",
    "BackendConfig",
    "BudgetsConfig",
    "CacheConfig",
    "CacheMode",
    "CircuitConfig",
    "ContextConfig",
    "ContextStrategy",
    "JwtConfig",
    "LimitsConfig",
    "LoggingConfig",
    "McpServer",
    "Overrides",
    "PoolConfig",
    "Price",
    "ProviderConfig",
    "ProviderKind",
    "RateLimitConfig",
    "ReasoningConfig",
    "RetryConfig",
    "ScriptToolCall",
    "ScriptTurn",
    "ServerConfig",
    "ServerRateLimit",
    "TimeoutConfig",
    "ToolsConfig",
    "interpolate",
    "load_config",
    "parse_dotenv",
]


class Overrides(msgspec.Struct, forbid_unknown_fields=True):
    """What the command line may change: ``--provider``, ``--model`` (of the chosen
    provider), ``--max-turns``, ``--cache`` (the mode) and ``--task``."""

    provider: str | None = None
    model: str | None = None
    max_turns: int | None = None
    cache: str | None = None
    task: str | None = None


_FLAGS = {"provider": "--provider", "model": "--model", "max_turns": "--max-turns",
          "cache": "--cache", "task": "--task"}


def load_config(path: str | os.PathLike[str], *, environ: Mapping[str, str] | None = None,
                overrides: Overrides | Mapping[str, Any] | None = None) -> AgentConfig:
    """Load, interpolate, override and validate an agent.yaml (see the module docstring).

    ``environ`` defaults to ``os.environ``, which is never modified."""
    source = Path(path)
    file = str(path)
    try:
        text = source.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ConfigError("config file not found", file=file,
                          fix="check the --config path (relative paths start at "
                              f"{Path.cwd()})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the config: {exc}", file=file,
                          fix="give a readable UTF-8 YAML file") from exc
    raw, lines = load_yaml(text, file)
    if not isinstance(raw, dict):
        raise ConfigError(
            "the file is empty" if raw is None else
            f"the top level must be a mapping of keys, not {type(raw).__name__}",
            file=file, fix="start from an example in config/ (provider:, providers:, ...)")
    env = _environment(source, environ)
    try:
        raw = interpolate_tree(raw, env, file=file)
    except ConfigError as exc:
        raise ConfigError(at_line(exc.message, exc.path, lines), file=exc.file, path=exc.path,
                          fix=exc.fix) from None
    origin = _apply_overrides(raw, _overrides(overrides, file))
    check_unknown(raw, AgentConfig, file=file, lines=lines)
    normalise(raw)
    try:
        cfg = msgspec.convert(raw, AgentConfig, strict=False)
    except msgspec.ValidationError as exc:
        raise translate(exc, raw, AgentConfig, file=file, lines=lines, origin=origin) from None
    Checker(cfg, file, lines, origin, env).run(source.parent)
    cfg.__dict__["_source"] = source.resolve()
    cfg.__dict__["_environ"] = env
    return cfg


def _environment(source: Path, environ: Mapping[str, str] | None) -> dict[str, str]:
    """The ``.env`` beside the config overlaid by the real environment (a copy)."""
    env: dict[str, str] = {}
    dotenv = source.parent / ".env"
    if dotenv.is_file():
        try:
            env.update(parse_dotenv(dotenv.read_text("utf-8"), file=str(dotenv)))
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read {dotenv}: {exc}", file=str(dotenv),
                              fix="make it a readable UTF-8 text file or remove it") from exc
    env.update(os.environ if environ is None else environ)
    return env


def _overrides(given: Overrides | Mapping[str, Any] | None, file: str) -> Overrides:
    if given is None:
        return Overrides()
    if isinstance(given, Overrides):
        return given
    try:
        return msgspec.convert(dict(given), Overrides, strict=False)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"bad command-line override: {exc}", file=file,
                          fix=f"overrides are {', '.join(_FLAGS.values())}") from None


def _apply_overrides(raw: dict[str, Any], ov: Overrides) -> dict[str, str]:
    """Write the overrides into the raw tree; returns {key path: flag} for error messages."""
    origin: dict[str, str] = {}

    def section(name: str) -> dict[str, Any]:
        if not isinstance(raw.get(name), dict):
            raw[name] = {}
        sub: dict[str, Any] = raw[name]
        return sub

    if ov.provider is not None:
        raw["provider"] = ov.provider
        origin["provider"] = "--provider"
        if isinstance(raw.get("fallbacks"), list):  # the chosen main is no longer a fallback
            raw["fallbacks"] = [f for f in raw["fallbacks"] if f != ov.provider]
    if ov.model is not None:
        name = raw.get("provider")
        providers = raw.get("providers")
        if isinstance(providers, dict) and isinstance(providers.get(name), dict):
            providers[name]["model"] = ov.model
            origin[f"providers.{name}.model"] = "--model"
    if ov.max_turns is not None:
        section("limits")["max_turns"] = ov.max_turns
        origin["limits.max_turns"] = "--max-turns"
    if ov.cache is not None:
        section("cache")["mode"] = ov.cache
        origin["cache.mode"] = "--cache"
    if ov.task is not None:
        raw["task"] = ov.task
        origin["task"] = "--task"
    return origin
