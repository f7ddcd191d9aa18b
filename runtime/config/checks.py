"""The rules that relate fields of agent.yaml, checked after decoding.

Each rule raises a ``ConfigError`` naming the file, the key path (with its YAML line, and
the command-line flag when a flag set it) and what would fix it; the first failure wins.
Besides the rules between fields, two look outside the file without changing anything:
``tools.workspace`` must be a folder or a folder that can be created (its parent exists),
and the variables named by ``tools.shell_env`` must not hold a secret of the config.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Mapping
from pathlib import Path

from ..errors import ConfigError, ErrorKind
from ..providers.kinds import KINDS
from .env import join
from .paths import at_line, did_you_mean
from .schema import BUILTIN_TOOLS, ENV_NAME, AgentConfig, PoolConfig, ProviderConfig

__all__ = ["Checker"]

_MCP_NAME = re.compile(r"[A-Za-z0-9-]+(?:_[A-Za-z0-9-]+)*")
_URL = re.compile(r"https?://[^/\s]+")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_ORIGIN = re.compile(r"https?://[^/\s]+")
_REDIS_URL = re.compile(r"(?:rediss?://[^/\s?#]*(?:/\d+)?|unix://[^\s]+)")
_PREFIX = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_PYTHON_TOOL = re.compile(r"[A-Za-z_][\w]*(?:\.[A-Za-z_]\w*)*:[A-Za-z_]\w*")


class Checker:
    """Checks one decoded config; ``run`` fills in what the rules decide (default base
    URLs, the scripted model name, the absolute workspace) and raises on the first failure.
    ``origin`` maps key paths set on the command line to their flag (``--model``)."""

    def __init__(self, cfg: AgentConfig, file: str, lines: dict[str, int],
                 origin: Mapping[str, str], environ: Mapping[str, str]) -> None:
        self.cfg, self.file, self.lines = cfg, file, lines
        self.origin, self.environ = origin, environ

    def fail(self, path: str, message: str, fix: str) -> ConfigError:
        text = at_line(message, path, self.lines)
        if path in self.origin:
            text += f" (set by {self.origin[path]})"
        return ConfigError(text, file=self.file, path=path, fix=fix)

    def run(self, config_dir: Path) -> None:
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
        self.prices()
        if cfg.task is not None and not cfg.task.strip():
            raise self.fail("task", "the task is empty" if not cfg.task else
                            "the task is only whitespace",
                            "give the task as text (task: ... or --task TEXT), or leave it out "
                            "to be asked for one")
        self.tools()
        cfg.tools.workspace = str(self.workspace(config_dir))
        for i, pattern in enumerate(cfg.logging.redact):
            try:
                re.compile(pattern)
            except re.error as exc:
                raise self.fail(f"logging.redact[{i}]", f"invalid regular expression "
                                f"{pattern!r}: {exc}", "fix the pattern (Python re syntax; "
                                "escape backslashes in double-quoted YAML)") from None
        self.backend()
        if not ENV_NAME.fullmatch(cfg.reasoning.key_env):
            raise self.fail("reasoning.key_env", f"{cfg.reasoning.key_env!r} is not an "
                            "environment variable name", "use letters, digits and _")
        self.server(config_dir)

    def server(self, config_dir: Path) -> None:
        """``server``: key names unique, hashes of 64 hex digits, one JWT key, origins that
        are origins. The RS256 key file is made absolute (relative to the config's folder)
        and must be readable; whether any credential is configured is ``serve``'s check."""
        srv = self.cfg.server
        seen: set[str] = set()
        for i, key in enumerate(srv.api_keys):
            path = f"server.api_keys[{i}]"
            if not key.name.strip():
                raise self.fail(f"{path}.name", "the key has no name",
                                "give each key a name (it is who acts in the audit log)")
            if key.name in seen:
                raise self.fail(f"{path}.name", f"key name {key.name!r} is used twice",
                                "give each key its own name")
            seen.add(key.name)
            if not _SHA256.fullmatch(key.sha256):
                raise self.fail(f"{path}.sha256", "not a SHA-256 in hex (64 characters "
                                "0-9 a-f)", "put the hash of the key, never the key: "
                                "printf %s \"$KEY\" | sha256sum")
            if not key.scopes:
                raise self.fail(f"{path}.scopes", "the key has no scope",
                                "list some of sessions:read, sessions:write, approvals:write, "
                                "admin")
        jwt = srv.jwt
        if jwt is not None:
            if (jwt.hs256_secret is None) == (jwt.rs256_public_key_file is None):
                raise self.fail("server.jwt", "JWT needs exactly one of hs256_secret and "
                                "rs256_public_key_file" + (" (both given)" if jwt.hs256_secret
                                                           else " (neither given)"),
                                "give hs256_secret: ${JWT_SECRET} or rs256_public_key_file: "
                                "path/to/key.pem")
            if jwt.hs256_secret is not None and len(jwt.hs256_secret) < 32:
                raise self.fail("server.jwt.hs256_secret", "the secret is shorter than 32 "
                                "characters (HS256 wants at least 256 bits)",
                                "use a long random secret, e.g. openssl rand -hex 32")
            if jwt.rs256_public_key_file is not None:
                key_path = (config_dir.resolve() / Path(jwt.rs256_public_key_file)
                            .expanduser()).resolve()
                if not key_path.is_file():
                    raise self.fail("server.jwt.rs256_public_key_file", f"{key_path} is not a "
                                    "file", "point it at the PEM public key of the issuer")
                jwt.rs256_public_key_file = str(key_path)
        for i, origin in enumerate(srv.cors_origins):
            if origin != "*" and not _ORIGIN.fullmatch(origin):
                raise self.fail(f"server.cors_origins[{i}]", f"{origin!r} is not an origin",
                                "use scheme://host[:port] without a path, or *")
        if not srv.host.strip():
            raise self.fail("server.host", "the host is empty", "use 127.0.0.1 or 0.0.0.0")

    def provider(self, path: str, prov: ProviderConfig) -> None:
        kind = KINDS[prov.kind]
        if kind.in_process:
            if not prov.script:
                raise self.fail(f"{path}.script", f"a {kind.name} provider needs a script",
                                "add script: [{text: ..., tool_calls: [...]}, ...]")
            prov.model = prov.model or kind.name
        else:
            if prov.script:
                raise self.fail(f"{path}.script", f"script is only for kind scripted, not "
                                f"{kind.name}", "remove script or set kind: scripted")
            if not prov.model.strip():
                raise self.fail(f"{path}.model", "model is missing or empty",
                                "add model: <the provider's model name>")
        if prov.models and prov.model not in prov.models:
            raise self.fail(f"{path}.model", f"model {prov.model!r} is not in the allowlist "
                            f"{path}.models ({', '.join(prov.models)})",
                            f"{did_you_mean(prov.model, prov.models)}use one of the listed "
                            "models or add it to models")
        if kind.key_required and not (prov.api_key or "").strip():
            var = kind.key_env
            raise self.fail(f"{path}.api_key", f"an API key is required for kind {kind.name}",
                            f"set api_key: ${{{var}}} and export {var}=... (or put it in a "
                            ".env file beside the config)")
        if prov.base_url is None:
            prov.base_url = kind.base_url
        elif not _URL.match(prov.base_url):
            raise self.fail(f"{path}.base_url", f"{prov.base_url!r} is not an http(s) URL",
                            f"use a URL such as {kind.base_url or 'http://host/v1'}")
        else:
            prov.base_url = prov.base_url.rstrip("/")
        self.pool(path, prov)
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

    def pool(self, path: str, prov: ProviderConfig) -> None:
        """HTTP settings belong to HTTP kinds; keep-alive fits in the pool; HTTP/2 needs h2."""
        kind = KINDS[prov.kind]
        pool = prov.pool
        if kind.in_process:
            for key, set_ in (("http2", prov.http2), ("pool", pool != PoolConfig())):
                if set_:
                    raise self.fail(f"{path}.{key}", f"{key} is for HTTP providers, not kind "
                                    f"{kind.name}", f"remove {key}")
            return
        if (pool.max_keepalive is not None and pool.max_connections is not None
                and pool.max_keepalive > pool.max_connections):
            raise self.fail(f"{path}.pool.max_keepalive", f"max_keepalive "
                            f"{pool.max_keepalive} is above max_connections "
                            f"{pool.max_connections}", "make max_keepalive <= max_connections")
        if prov.http2 and importlib.util.find_spec("h2") is None:
            raise self.fail(f"{path}.http2", "HTTP/2 needs the h2 package, which is not "
                            "installed", "pip install 'httpx[http2]', or remove http2")

    def backend(self) -> None:
        """``backend.url`` is a Redis URL (``redis://HOST:PORT/DB``, ``rediss://``,
        ``unix://``) and ``backend.prefix`` a plain key prefix."""
        b = self.cfg.backend
        if b is None:
            return
        if not _REDIS_URL.fullmatch(b.url):
            raise self.fail("backend.url", f"{b.url!r} is not a Redis URL",
                            "use redis://HOST:PORT/DB (rediss:// for TLS, unix:///path for "
                            "a socket), e.g. redis://127.0.0.1:6379/0")
        if not _PREFIX.fullmatch(b.prefix):
            raise self.fail("backend.prefix", f"{b.prefix!r} is not a usable key prefix",
                            "use 1 to 64 letters, digits, '_', '.' or '-'")

    def prices(self) -> None:
        """With ``limits.max_cost_usd`` or ``budgets``, every model that may take a turn
        (the main provider's and each fallback's) has a price, or is of a kind that costs
        nothing."""
        cfg = self.cfg
        if cfg.limits.max_cost_usd is not None:
            what = f"limits.max_cost_usd ({cfg.limits.max_cost_usd:g})"
            undo = "remove limits.max_cost_usd"
        elif cfg.budgets.active:
            what, undo = "budgets", "remove budgets"
        else:
            return
        table = cfg.price_table()
        for name in cfg.provider_chain():
            prov = cfg.providers[name]
            if KINDS[prov.kind].free or table.price(prov.model) is not None:
                continue
            raise self.fail(
                f"providers.{name}.model",
                f"no price is known for model {prov.model!r}, so {what} cannot be enforced "
                "for it",
                f"add its price in USD per million tokens: pricing: {{{prov.model}: "
                f"{{input: ..., output: ...}}}} (optional: cached_input, cache_write), or "
                f"{undo}")

    def tools(self) -> None:
        tools = self.cfg.tools
        for i, name in enumerate(tools.builtin):
            if name not in BUILTIN_TOOLS:
                raise self.fail(f"tools.builtin[{i}]", f"unknown built-in tool {name!r}",
                                f"{did_you_mean(name, BUILTIN_TOOLS)}"
                                f"use some of {', '.join(BUILTIN_TOOLS)}")
        for name, server in tools.mcp.items():
            path = join("tools.mcp", name)
            if not _MCP_NAME.fullmatch(name):
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
        python = [ref.partition(":")[2] for ref in tools.python]
        for key in tools.approval:
            path = join("tools.approval", key)
            prefix, sep, tool = key.partition("__")
            if key in BUILTIN_TOOLS or key in python or (sep and prefix in tools.mcp and tool):
                continue
            known = [*BUILTIN_TOOLS, *python, *(f"{s}__*" for s in tools.mcp)]
            why = (f"no MCP server named {prefix!r} in tools.mcp" if sep else
                   f"unknown tool {key!r}")
            raise self.fail(path, why, f"{did_you_mean(key, known)}use a built-in tool name "
                            "or <server>__<tool> / <server>__* of a server in tools.mcp")
        for i, ref in enumerate(tools.python):
            if not _PYTHON_TOOL.fullmatch(ref):
                raise self.fail(f"tools.python[{i}]", f"{ref!r} is not module:attribute",
                                "name an importable module and a Tool or function in it, "
                                "e.g. mypkg.tools:count_calls")
        self.shell_env()

    def shell_env(self) -> None:
        """Names of variables only, and none that holds a key: secrets never reach a tool."""
        key_vars = {k.key_env for k in KINDS.values() if k.key_env} | {
            self.cfg.reasoning.key_env}
        secrets = set(self.cfg.secrets())
        for i, name in enumerate(self.cfg.tools.shell_env):
            path = f"tools.shell_env[{i}]"
            if not ENV_NAME.fullmatch(name):
                raise self.fail(path, f"{name!r} is not an environment variable name",
                                "use letters, digits and _, not starting with a digit "
                                "(the name only: run_shell reads the value at run time)")
            if name in key_vars or self.environ.get(name) in secrets:
                raise self.fail(path, f"{name} holds a key of this config; it is never "
                                "passed to run_shell", f"remove {name} from tools.shell_env")

    def workspace(self, config_dir: Path) -> Path:
        """The absolute workspace: an existing folder, or one whose parent exists (the tools
        create it when the session starts; a typo must not create a tree). Nothing is
        created here."""
        given = self.cfg.tools.workspace
        config_dir = config_dir.resolve()
        path = (config_dir / Path(given).expanduser()).resolve()
        fix_path = "point tools.workspace at a folder (relative paths start at the config's " \
                   f"folder, {config_dir})"
        try:
            if path.is_dir():
                return path
            if path.exists():
                raise self.fail("tools.workspace", f"{given!r} ({path}) is a file, not a "
                                "folder", fix_path)
            if not path.parent.is_dir():
                raise self.fail("tools.workspace", f"{given!r} ({path}) does not exist and "
                                f"neither does its parent folder {path.parent}",
                                f"create it (mkdir -p {path}) or fix the path; only the last "
                                "folder of a workspace is created for you")
        except OSError as exc:
            raise self.fail("tools.workspace", f"cannot check {given!r} ({path}): "
                            f"{exc.strerror or exc}", fix_path) from None
        return path
