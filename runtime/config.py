"""agent.yaml -> a typed ``AgentConfig``.

``load_config(path)`` reads the file, the ``.env`` beside it (never overriding variables
already in the environment), interpolates ``${VAR}`` / ``${VAR:-default}`` in every string
value (after YAML parsing: a value cannot inject YAML; ``$${`` is a literal ``${``), applies
the command line's overrides, decodes into msgspec Structs and checks the rules that relate
fields. Every problem is a ``ConfigError`` naming the file, the key path
(``providers.main.retry.max_attempts``) and a fix. The schema is in ``_config_schema``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec

from ._config_env import interpolate, interpolate_tree, join, parse_dotenv
from ._config_paths import at_line, check_unknown, did_you_mean, load_yaml, translate
from ._config_schema import (
    API_KEY_ENV,
    BUILTIN_TOOLS,
    DEFAULT_BASE_URLS,
    KEY_REQUIRED,
    KINDS,
    AgentConfig,
    CacheConfig,
    CacheMode,
    CircuitConfig,
    ContextConfig,
    ContextStrategy,
    LimitsConfig,
    LoggingConfig,
    McpServer,
    ParamsConfig,
    Price,
    ProviderConfig,
    ProviderKind,
    RateLimitConfig,
    ReasoningConfig,
    RetryConfig,
    ScriptToolCall,
    ScriptTurn,
    TimeoutConfig,
    ToolsConfig,
)
from .errors import ConfigError, ErrorKind

__all__ = [
    "BUILTIN_TOOLS",
    "DEFAULT_BASE_URLS",
    "KINDS",
    "AgentConfig",
    "CacheConfig",
    "CacheMode",
    "CircuitConfig",
    "ContextConfig",
    "ContextStrategy",
    "LimitsConfig",
    "LoggingConfig",
    "McpServer",
    "Overrides",
    "ParamsConfig",
    "Price",
    "ProviderConfig",
    "ProviderKind",
    "RateLimitConfig",
    "ReasoningConfig",
    "RetryConfig",
    "ScriptToolCall",
    "ScriptTurn",
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
    try:
        cfg = msgspec.convert(raw, AgentConfig, strict=False)
    except msgspec.ValidationError as exc:
        raise translate(exc, raw, AgentConfig, file=file, lines=lines, origin=origin) from None
    _Checker(cfg, file, lines, origin).run()
    workspace = (source.parent / Path(cfg.tools.workspace).expanduser()).resolve()
    cfg.tools.workspace = str(workspace)
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


class _Checker:
    """The rules that relate fields, checked after decoding; the first failure raises."""

    def __init__(self, cfg: AgentConfig, file: str, lines: dict[str, int],
                 origin: dict[str, str]) -> None:
        self.cfg, self.file, self.lines, self.origin = cfg, file, lines, origin

    def fail(self, path: str, message: str, fix: str) -> ConfigError:
        text = at_line(message, path, self.lines)
        if path in self.origin:
            text += f" (set by {self.origin[path]})"
        return ConfigError(text, file=self.file, path=path, fix=fix)

    def run(self) -> None:
        cfg = self.cfg
        names = list(cfg.providers)
        if not names:
            raise self.fail("providers", "no provider is configured",
                            "add an entry under providers: (see config/ for examples)")
        for name, prov in cfg.providers.items():
            self.provider(f"providers.{name}", prov)
        if cfg.provider not in cfg.providers:
            raise self.fail("provider", f"no provider named {cfg.provider!r} in providers",
                            f"{did_you_mean(cfg.provider, names)}use one of {', '.join(names)}")
        for i, fb in enumerate(cfg.fallbacks):
            path = f"fallbacks[{i}]"
            if fb not in cfg.providers:
                raise self.fail(path, f"fallback {fb!r} is not in providers",
                                f"{did_you_mean(fb, names)}use one of {', '.join(names)}")
            if fb == cfg.provider:
                raise self.fail(path, f"fallback {fb!r} is the main provider",
                                "list only other providers as fallbacks")
            if fb in cfg.fallbacks[:i]:
                raise self.fail(path, f"fallback {fb!r} is listed twice", "remove the repeat")
        self.tools()
        for i, pattern in enumerate(cfg.logging.redact):
            try:
                re.compile(pattern)
            except re.error as exc:
                raise self.fail(f"logging.redact[{i}]", f"invalid regular expression "
                                f"{pattern!r}: {exc}", "fix the pattern (Python re syntax; "
                                "escape backslashes in double-quoted YAML)") from None
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", cfg.reasoning.key_env):
            raise self.fail("reasoning.key_env", f"{cfg.reasoning.key_env!r} is not an "
                            "environment variable name", "use letters, digits and _")

    def provider(self, path: str, prov: ProviderConfig) -> None:
        kind = prov.kind
        if kind == "scripted":
            if not prov.script:
                raise self.fail(f"{path}.script", "a scripted provider needs a script",
                                "add script: [{text: ..., tool_calls: [...]}, ...]")
            prov.model = prov.model or "scripted"
        else:
            if prov.script:
                raise self.fail(f"{path}.script", f"script is only for kind scripted, not "
                                f"{kind}", "remove script or set kind: scripted")
            if not prov.model.strip():
                raise self.fail(f"{path}.model", "model is missing or empty",
                                "add model: <the provider's model name>")
        if prov.models and prov.model not in prov.models:
            raise self.fail(f"{path}.model", f"model {prov.model!r} is not in the allowlist "
                            f"{path}.models ({', '.join(prov.models)})",
                            f"{did_you_mean(prov.model, prov.models)}use one of the listed "
                            "models or add it to models")
        if kind in KEY_REQUIRED and not (prov.api_key or "").strip():
            var = API_KEY_ENV[kind]
            raise self.fail(f"{path}.api_key", f"an API key is required for kind {kind}",
                            f"set api_key: ${{{var}}} and export {var}=... (or put it in a "
                            ".env file beside the config)")
        if prov.base_url is None:
            prov.base_url = DEFAULT_BASE_URLS[kind]
        elif not re.match(r"https?://[^/\s]+", prov.base_url):
            raise self.fail(f"{path}.base_url", f"{prov.base_url!r} is not an http(s) URL",
                            f"use a URL such as {DEFAULT_BASE_URLS[kind] or 'http://host/v1'}")
        else:
            prov.base_url = prov.base_url.rstrip("/")
        if prov.retry.max_delay < prov.retry.base_delay:
            raise self.fail(f"{path}.retry.max_delay", "max_delay is below base_delay",
                            "make max_delay >= base_delay")
        reserve = self.cfg.context.reserve_output
        if prov.context_window is not None and prov.context_window <= reserve:
            raise self.fail(f"{path}.context_window", f"context_window {prov.context_window} "
                            f"leaves no room for context.reserve_output ({reserve})",
                            "raise context_window to the model's real window or lower "
                            "context.reserve_output")
        kinds = [k.value for k in ErrorKind]
        for i, name in enumerate(prov.streaming_fallback_kinds):
            if name not in kinds:
                raise self.fail(f"{path}.streaming_fallback_kinds[{i}]",
                                f"unknown error kind {name!r}",
                                f"{did_you_mean(name, kinds)}use one of {', '.join(kinds)}")

    def tools(self) -> None:
        tools = self.cfg.tools
        for i, name in enumerate(tools.builtin):
            if name not in BUILTIN_TOOLS:
                raise self.fail(f"tools.builtin[{i}]", f"unknown built-in tool {name!r}",
                                f"{did_you_mean(name, BUILTIN_TOOLS)}"
                                f"use some of {', '.join(BUILTIN_TOOLS)}")
        for name, server in tools.mcp.items():
            path = join("tools.mcp", name)
            if not re.fullmatch(r"[A-Za-z0-9-]+(?:_[A-Za-z0-9-]+)*", name):
                raise self.fail(path, f"MCP server name {name!r} is not usable in tool names "
                                "<server>__<tool>", "use letters, digits, - and single _")
            if (server.command is None) == (server.url is None):
                raise self.fail(path, "an MCP server needs exactly one of command and url"
                                + (" (both given)" if server.command else " (neither given)"),
                                "give command: (with args/env) for a subprocess server, or "
                                "url: for a streamable-HTTP one")
            if server.url is not None and (server.args or server.env):
                raise self.fail(path, "args and env are for command servers, not url ones",
                                "remove args/env or use command:")
        for key in tools.approval:
            path = join("tools.approval", key)
            prefix, sep, tool = key.partition("__")
            if key in BUILTIN_TOOLS or (sep and prefix in tools.mcp and tool):
                continue
            known = [*BUILTIN_TOOLS, *(f"{s}__*" for s in tools.mcp)]
            why = (f"no MCP server named {prefix!r} in tools.mcp" if sep else
                   f"unknown tool {key!r}")
            raise self.fail(path, why, f"{did_you_mean(key, known)}use a built-in tool name "
                            "or <server>__<tool> / <server>__* of a server in tools.mcp")
