"""The typed shape of agent.yaml: msgspec Structs, their constraints and defaults.

Only the shape lives here (types, ranges, defaults). Rules that relate several fields
(``provider`` names an entry of ``providers``, a model is in its allowlist, ...) are in
``checks``. Every Struct forbids unknown fields. ``providers.<name>.params`` decodes straight
into ``runtime.model.Params`` (one definition of the request parameters and their ranges);
``normalise`` is the one place where the YAML's shorthands become that shape.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from ..context.fit import ContextPolicy
from ..model import Params
from ..pricing import Price, PriceTable
from ..providers.kinds import KindName

__all__ = [
    "BUILTIN_TOOLS",
    "ENV_NAME",
    "SCOPES",
    "AgentConfig",
    "ApiKeyConfig",
    "ApprovalMode",
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
    "normalise",
]

ProviderKind = KindName
ApprovalMode = Literal["auto", "ask", "deny"]
CacheMode = Literal["bypass", "read-through", "record-only", "replay"]
ContextStrategy = Literal["elide", "summarize", "provider", "off"]

BUILTIN_TOOLS: tuple[str, ...] = ("read_file", "write_file", "list_dir", "search_files",
                                  "run_shell", "apply_patch")
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
"""An environment variable name (``reasoning.key_env``, ``tools.shell_env``)."""

Positive = Annotated[float, msgspec.Meta(gt=0)]
NonNegative = Annotated[float, msgspec.Meta(ge=0)]
PositiveInt = Annotated[int, msgspec.Meta(ge=1)]
NonNegativeInt = Annotated[int, msgspec.Meta(ge=0)]


class _Section(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """Base of every agent.yaml section: unknown keys are errors."""


class TimeoutConfig(_Section):
    """Seconds: to connect, between two reads, for a whole request."""

    connect: Positive = 10.0
    read: Positive = 120.0
    total: Positive = 600.0


class RetryConfig(_Section):
    """Attempts per request (the first included) and the backoff range in seconds."""

    max_attempts: PositiveInt = 5
    base_delay: NonNegative = 0.5
    max_delay: NonNegative = 30.0


class RateLimitConfig(_Section):
    requests_per_minute: PositiveInt | None = None
    tokens_per_minute: PositiveInt | None = None


class CircuitConfig(_Section):
    """Open the circuit after ``failure_threshold`` failures in a row, for ``cooldown`` s."""

    failure_threshold: PositiveInt = 5
    cooldown: Positive = 30.0


class PoolConfig(_Section):
    """``providers.<name>.pool``: the provider's HTTP connection pool, shared by every
    session of the process. An unset limit is derived from the process's open-file budget
    (``ulimit -n``); a request that finds every connection busy waits for one, within its
    ``timeout.total``."""

    max_connections: PositiveInt | None = None
    max_keepalive: NonNegativeInt | None = None
    keepalive_expiry: Positive = 5.0


class ScriptToolCall(_Section):
    name: str
    arguments: dict[str, Any] = msgspec.field(default_factory=dict)


class ScriptTurn(_Section):
    """One answer of the scripted provider."""

    text: str = ""
    tool_calls: list[ScriptToolCall] = msgspec.field(default_factory=list)
    reasoning: str | None = None


class ProviderConfig(_Section):
    """``providers.<name>``. ``params`` is ``runtime.model.Params`` itself: what the
    conductor puts in every request to this provider."""

    kind: ProviderKind
    model: str = ""
    api_key: str | None = None
    base_url: str | None = None
    models: list[str] = msgspec.field(default_factory=list)
    stream: bool = True
    params: Params = msgspec.field(default_factory=Params)
    timeout: TimeoutConfig = msgspec.field(default_factory=TimeoutConfig)
    retry: RetryConfig = msgspec.field(default_factory=RetryConfig)
    rate_limit: RateLimitConfig = msgspec.field(default_factory=RateLimitConfig)
    circuit: CircuitConfig = msgspec.field(default_factory=CircuitConfig)
    headers: dict[str, str] = msgspec.field(default_factory=dict)
    http2: bool = False   # negotiated over https (ALPN); plain http stays HTTP/1.1
    pool: PoolConfig = msgspec.field(default_factory=PoolConfig)
    store: bool | None = None
    cache_system: bool = False
    streaming_fallback_kinds: list[str] = msgspec.field(
        default_factory=lambda: ["streaming_unsupported"])
    script: list[ScriptTurn] = msgspec.field(default_factory=list)
    # tokens; else the known-model table, or a llama.cpp server's /props
    context_window: PositiveInt | None = None


class McpServer(_Section):
    """An MCP server: a subprocess (``command``, ``args``, ``env``) or a streamable-HTTP
    ``url``; exactly one of ``command`` and ``url``."""

    command: str | None = None
    args: list[str] = msgspec.field(default_factory=list)
    env: dict[str, str] = msgspec.field(default_factory=dict)
    url: str | None = None


class ToolsConfig(_Section):
    """``tools``: the built-ins offered, their workspace, approvals, MCP servers, and
    ``shell_env``: the names of the environment variables ``run_shell`` passes on to the
    commands it runs (nothing else of the conductor's environment reaches them)."""

    builtin: list[str] = msgspec.field(default_factory=list)
    workspace: str = "./workspace"
    approval: dict[str, ApprovalMode] = msgspec.field(default_factory=dict)
    timeout: Positive = 60.0
    max_output_chars: PositiveInt = 20000
    mcp: dict[str, McpServer] = msgspec.field(default_factory=dict)
    shell_env: list[str] = msgspec.field(default_factory=list)
    # Python tools: "module:attribute" (a Tool, or a function made into one by @tool)
    python: list[str] = msgspec.field(default_factory=list)

    @property
    def workspace_path(self) -> Path:
        """The workspace folder (absolute once loaded by ``load_config``)."""
        return Path(self.workspace)


class LimitsConfig(_Section):
    max_turns: PositiveInt = 30
    max_total_tokens: PositiveInt | None = None
    max_cost_usd: Positive | None = None


class ContextConfig(_Section):
    """``context``: how a conversation is kept within the model's window
    (``runtime.context``)."""

    strategy: ContextStrategy = "elide"
    reserve_output: PositiveInt = 4096
    keep_recent_turns: PositiveInt = 4

    def policy(self) -> ContextPolicy:
        """The ``runtime.context.ContextPolicy`` of this section."""
        return ContextPolicy(self.strategy, self.reserve_output, self.keep_recent_turns)


class CacheConfig(_Section):
    mode: CacheMode = "bypass"
    path: str = ".conductor/cache"
    hash_prompts: bool = False
    max_bytes: PositiveInt = 268435456


class LoggingConfig(_Section):
    dir: str = "logging"
    redact: list[str] = msgspec.field(default_factory=list)
    format: Literal["console", "json"] = "console"


class BackendConfig(_Section):
    """``backend``: the Redis that a fleet of processes shares (``runtime.fleet``): rate
    limits, budgets, breakers, the response cache, the session queue and journals.
    ``lease_timeout``: seconds after which a silent worker's sessions go to another;
    ``cache_ttl``: seconds a shared response cache entry lives (``cache.max_bytes`` caps
    the total); ``max_connections``: the connection pool of each process."""

    url: str
    prefix: str = "conductor"
    lease_timeout: Annotated[float, msgspec.Meta(ge=1)] = 30.0
    cache_ttl: Positive = 604800.0
    # connections to Redis per process; a live event stream (serve) holds one while it waits
    max_connections: Annotated[int, msgspec.Meta(ge=4)] = 128


class BudgetsConfig(_Section):
    """``budgets``: USD per UTC day and per UTC month for every session of this config
    (counted across the fleet with a ``backend``, else in this process)."""

    daily_usd: Positive | None = None
    monthly_usd: Positive | None = None

    @property
    def active(self) -> bool:
        return self.daily_usd is not None or self.monthly_usd is not None


class ReasoningConfig(_Section):
    encrypt: bool = True
    key_env: str = "CONDUCTOR_TRACE_KEY"


Scope = Literal["sessions:read", "sessions:write", "approvals:write", "admin"]
SCOPES: tuple[str, ...] = ("sessions:read", "sessions:write", "approvals:write", "admin")


class ApiKeyConfig(_Section):
    """One API key of the service: its ``name`` (who it is in the audit log), the SHA-256 of
    the key in hex (the key itself is never stored) and its scopes."""

    name: str
    sha256: str
    scopes: list[Scope] = msgspec.field(default_factory=list)


class JwtConfig(_Section):
    """Bearer JWTs: HS256 with a shared secret, or RS256 with a public key file; issuer,
    audience and expiry are checked (``leeway`` seconds of clock skew)."""

    hs256_secret: str | None = None
    rs256_public_key_file: str | None = None
    issuer: str | None = None
    audience: str | None = None
    leeway: NonNegative = 30.0


class ServerRateLimit(_Section):
    requests_per_minute: PositiveInt = 600


Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]


class ServerConfig(_Section):
    """``server``: service mode (``python main.py serve``)."""

    host: str = "127.0.0.1"
    port: Port = 8400
    api_keys: list[ApiKeyConfig] = msgspec.field(default_factory=list)
    jwt: JwtConfig | None = None
    max_body_bytes: PositiveInt = 1_000_000
    max_sessions: PositiveInt = 100
    max_queue: Annotated[int, msgspec.Meta(ge=0)] = 1000
    rate_limit: ServerRateLimit = msgspec.field(default_factory=ServerRateLimit)
    shutdown_grace: NonNegative = 30.0
    resume_on_start: bool = True
    cors_origins: list[str] = msgspec.field(default_factory=list)
    heartbeat: Positive = 15.0


class AgentConfig(_Section, dict=True):
    """A whole agent.yaml. ``source`` / ``config_dir`` / ``environ`` are set by
    ``load_config`` (they are not keys of the file; ``msgspec.structs.replace`` drops them)."""

    provider: str
    providers: dict[str, ProviderConfig]
    fallbacks: list[str] = msgspec.field(default_factory=list)
    system: str | None = None
    task: str | None = None
    tools: ToolsConfig = msgspec.field(default_factory=ToolsConfig)
    limits: LimitsConfig = msgspec.field(default_factory=LimitsConfig)
    context: ContextConfig = msgspec.field(default_factory=ContextConfig)
    cache: CacheConfig = msgspec.field(default_factory=CacheConfig)
    logging: LoggingConfig = msgspec.field(default_factory=LoggingConfig)
    reasoning: ReasoningConfig = msgspec.field(default_factory=ReasoningConfig)
    pricing: dict[str, Price] = msgspec.field(default_factory=dict)
    server: ServerConfig = msgspec.field(default_factory=ServerConfig)
    backend: BackendConfig | None = None
    budgets: BudgetsConfig = msgspec.field(default_factory=BudgetsConfig)

    @property
    def source(self) -> Path:
        """The agent.yaml this config was loaded from."""
        src: Path | None = self.__dict__.get("_source")
        if src is None:
            raise AttributeError("source is set by load_config")
        return src

    @property
    def config_dir(self) -> Path:
        """The folder of the config file (relative paths in it are relative to this)."""
        return self.source.parent

    @property
    def environ(self) -> dict[str, str]:
        """The environment used for interpolation: the process (or given) environment over
        the ``.env`` beside the config. Read variables such as ``reasoning.key_env`` here."""
        env: dict[str, str] = self.__dict__.get("_environ", {})
        return env

    @property
    def main(self) -> ProviderConfig:
        """The provider entry that drives the session."""
        return self.providers[self.provider]

    def provider_chain(self) -> list[str]:
        """The main provider then the fallbacks, in the order they are tried."""
        return [self.provider, *self.fallbacks]

    def price_table(self) -> PriceTable:
        """The built-in prices with ``pricing:`` over them."""
        return PriceTable(self.pricing)

    def secrets(self) -> list[str]:
        """Every secret value in the config, for the redactor: each provider's ``api_key``,
        secret-looking header values and MCP server env values."""
        out: list[str] = []
        for prov in self.providers.values():
            out.append(prov.api_key or "")
            out.extend(v for k, v in prov.headers.items() if _secret_name(k))
        for server in self.tools.mcp.values():
            out.extend(v for k, v in server.env.items() if _secret_name(k))
        if self.server.jwt is not None:
            out.append(self.server.jwt.hs256_secret or "")
        return list(dict.fromkeys(s for s in out if s))


_SECRET_MARKERS = ("key", "token", "secret", "password", "authorization", "auth", "cookie")


def _secret_name(name: str) -> bool:
    low = name.lower()
    return any(m in low for m in _SECRET_MARKERS)


def normalise(raw: dict[str, Any]) -> None:
    """Rewrite the YAML's shorthands into the schema's shape, in place (before decoding):
    ``params.stop: "END"`` is ``["END"]``."""
    providers = raw.get("providers")
    if not isinstance(providers, dict):
        return
    for prov in providers.values():
        params = prov.get("params") if isinstance(prov, dict) else None
        if isinstance(params, dict) and isinstance(params.get("stop"), str):
            params["stop"] = [params["stop"]]
