"""Wiring one session: config in, actors started in one nursery, outcome out.

Start order (each with ``nursery.start``, so it is ready before the next one needs it):
logger actor -> session-state actor -> one provider runtime actor per provider in use ->
the conductor. Closing runs the other way round: the conductor writes ``session_end`` and
``summary.json`` whatever happened (finished, limit, provider failure, Ctrl-C, a bug),
the provider actors are cancelled (nothing to drain), then the session-state and logger
mailboxes close and those actors drain what is queued before they return.
"""

from __future__ import annotations

import contextlib
import functools
import secrets
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import httpx
import msgspec
import structlog
import trio

from .conductor import EXIT_INTERRUPTED, Conductor, Outcome, ProviderHandle
from .config import AgentConfig, ProviderConfig
from .console import Console
from .errors import ConfigError, ProviderError
from .hooks import Hooks
from .logger import Record, logger_actor
from .model import Message
from .pricing import Price, PriceTable
from .providers import build_provider
from .providers.actor import ActorOptions, provider_actor
from .redact import Redactor
from .resilience.retry import RetryPolicy
from .session import key_for_run, read_traces, restore_conversation, session_actor
from .tools import ToolRegistry, builtin_tools

__all__ = ["new_run_id", "run_session"]

log = structlog.get_logger("conductor")


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)


def _handle(name: str, pc: ProviderConfig, mailbox: trio.MemorySendChannel[Any]) -> ProviderHandle:
    return ProviderHandle(
        name=name, kind=pc.kind, model=pc.model, mailbox=mailbox, stream=pc.stream,
        params=pc.params, store=pc.store, cache_system=pc.cache_system,
    )


def _load_resume(run_dir: Path, run_id: str, key: bytes | None) -> tuple[list[Message], int]:
    state_file = run_dir / "state.json"
    if not state_file.exists():
        raise ConfigError(f"run {run_id} has no state.json to resume from",
                          path="--resume", fix="give the id of a folder under logging/")
    state = msgspec.json.decode(state_file.read_bytes())
    traces: list[dict[str, Any]] = []
    enc = run_dir / "reasoning.enc"
    if enc.exists() and key is not None:
        traces = list(read_traces(enc, key, run_id))
    return restore_conversation(state, traces), int(state.get("turn", 0))


async def _sigint_watcher(scope: trio.CancelScope, flag: dict[str, bool]) -> None:
    with trio.open_signal_receiver(signal.SIGINT) as signals:
        async for _ in signals:
            if flag.get("interrupted"):
                raise KeyboardInterrupt
            flag["interrupted"] = True
            scope.cancel()


async def run_session(
    cfg: AgentConfig,
    *,
    task: str | None,
    run_id: str | None = None,
    resume: str | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    stream_answer: bool | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    ask: Callable[[str], bool] | None = None,
    handle_signals: bool = True,
    environ: dict[str, str] | None = None,
    extra_tools: list[Any] | None = None,
    providers: dict[str, Any] | None = None,
    history: list[Message] | None = None,
    hooks: Hooks | None = None,
) -> tuple[Outcome, Path]:
    """Run one session to its end; return the outcome and the run folder.

    Seams for tests (users' too): ``transport`` replaces the HTTP transport, ``providers``
    replaces the runtime of named provider entries (e.g. a ``ScriptedProvider`` with
    dynamic answers), ``extra_tools`` registers more tools, ``ask`` answers approvals,
    ``history`` starts the conversation with earlier messages (e.g. a worked example),
    ``hooks`` receives telemetry events (runtime.hooks)."""
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    redactor = Redactor(cfg.secrets(), cfg.logging.redact)
    console = Console(out, err, redactor, stream_answer=stream_answer)
    run_id = resume or run_id or new_run_id()
    logging_dir = Path(cfg.logging.dir)
    run_dir = logging_dir / run_id
    if run_dir.exists() and not resume and any(run_dir.iterdir()):
        raise ConfigError(f"run folder {run_dir} already exists", path="--run-id",
                          fix="choose another --run-id, or --resume it")
    run_dir.mkdir(parents=True, exist_ok=True)
    key: bytes | None = None
    key_warning: str | None = None
    if cfg.reasoning.encrypt:
        key, key_warning = key_for_run(logging_dir, cfg.reasoning.key_env, environ or cfg.environ)
    messages: list[Message] = list(history or [])
    first_turn = 0
    if resume:
        messages, first_turn = _load_resume(run_dir, run_id, key)

    registry = _tool_registry(cfg, extra_tools or [])
    prices = PriceTable({m: Price(p.input, p.output, p.cached_input, p.cache_write)
                         for m, p in cfg.pricing.items()})
    order = [cfg.provider, *cfg.fallbacks]
    structlog.contextvars.bind_contextvars(run_id=run_id)
    cache = _response_cache(cfg)
    flag: dict[str, bool] = {}

    async with httpx.AsyncClient(transport=transport, follow_redirects=False) as client, \
            _mcp_tools(cfg) as mcp_tools, trio.open_nursery() as root:
        for t in mcp_tools:  # each MCP server runs supervised for the whole session
            registry.register(t)
        log_send = await root.start(logger_actor, run_dir, run_id, redactor)
        hooks = hooks or Hooks()
        _otel_hooks(hooks)
        await root.start(_run_hooks, hooks, log_send.clone(), console)
        async with log_send:
            state_send = await root.start(
                functools.partial(session_actor, run_id, log_send.clone(), key=key))
            async with state_send, trio.open_nursery() as providers_nursery:
                handles: dict[str, ProviderHandle] = {}
                for name in order:
                    pc = cfg.providers[name]
                    provider = (providers or {}).get(name) or build_provider(
                        name, pc, client, redact=redactor.text)
                    opts = ActorOptions(
                        policy=RetryPolicy(pc.retry.max_attempts, pc.retry.base_delay,
                                           pc.retry.max_delay),
                        streaming_fallback_kinds=frozenset(pc.streaming_fallback_kinds),
                        cache=cache, cache_kind=pc.kind,
                        limiter=_limiter(name, pc), breaker=_breaker(name, pc),
                        circuit_wait=pc.timeout.total,
                    )
                    if hasattr(provider, "on_headers"):
                        provider.on_headers = _header_observer(opts.limiter)
                    mailbox = await providers_nursery.start(provider_actor, provider, opts)
                    handles[name] = _handle(name, pc, mailbox)
                conductor = Conductor(
                    run_id=run_id, providers=handles, order=order, registry=registry,
                    log=log_send.clone(), state=state_send.clone(), console=console,
                    system=cfg.system, max_turns=cfg.limits.max_turns,
                    max_total_tokens=cfg.limits.max_total_tokens,
                    max_cost_usd=cfg.limits.max_cost_usd, tool_timeout=cfg.tools.timeout,
                    approval=dict(cfg.tools.approval), ask=ask, prices=prices,
                    messages=messages, turn=first_turn, hooks=hooks,
                )
                async with conductor.log, conductor.state:
                    if key_warning:
                        console.line(f"warning: {key_warning}")
                        await conductor.log.send(Record("warning", 0, {"message": key_warning}))
                    # if an actor dies, this body is cancelled: the run folder still ends
                    # with session_end and summary.json, then the failure propagates
                    outcome = Outcome("error", 1, message="the session was stopped by the "
                                      "failure of an actor (reported on stderr)")
                    try:
                        with trio.CancelScope() as scope:
                            if handle_signals and _in_main_thread():
                                providers_nursery.start_soon(_sigint_watcher, scope, flag)
                            outcome = await _drive(conductor,
                                                   task if not resume or task else None)
                        if scope.cancelled_caught or flag.get("interrupted"):
                            outcome = Outcome("interrupted", EXIT_INTERRUPTED,
                                              message="interrupted by the user (Ctrl-C)")
                    finally:
                        with trio.CancelScope(shield=True):
                            await conductor.finish(outcome)
                providers_nursery.cancel_scope.cancel()
        hooks.close()
        if cache is not None:
            await cache.backend.aclose()
    if outcome.status == "finished" and not console.stream_answer:
        console.write_out(outcome.answer + ("" if outcome.answer.endswith("\n") else "\n"))
    elif outcome.status != "finished":
        console.line(f"[{outcome.status}] {outcome.message}")
    return outcome, run_dir


async def _run_hooks(hooks: Hooks, log: trio.MemorySendChannel[Any], console: Console, *,
                     task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """The hooks runner, owning a clone of the logger's mailbox for its warnings."""

    async def failed(label: str, exc: BaseException) -> None:
        text = f"hook {label} raised {type(exc).__name__}: {exc}; it is disabled"
        console.line(f"warning: {text}")
        await log.send(Record("warning", 0, {"message": text}))

    async with log:
        hooks.on_failure = failed
        await hooks.run(task_status=task_status)


def _mcp_tools(cfg: AgentConfig) -> Any:
    """The MCP servers of ``tools.mcp`` as a context manager yielding their tools; the SDK
    is imported only when servers are configured."""
    if not cfg.tools.mcp:
        return _no_tools()
    from .tools.mcp import open_mcp_tools

    return open_mcp_tools(cfg.tools.mcp)


@contextlib.asynccontextmanager
async def _no_tools() -> Any:
    yield []


def _shared_key(name: str, pc: ProviderConfig) -> str:
    from .resilience.ratelimit import limiter_key

    return limiter_key(name, pc.base_url or pc.kind, pc.api_key)


def _limiter(name: str, pc: ProviderConfig) -> Any:
    """The process-wide rate limiter of this provider: the configured rate_limit, or, with
    none, one that only paces requests by the provider's 429s and request-count headers."""
    rl = pc.rate_limit
    from .resilience.ratelimit import shared_limiter

    configured = rl.requests_per_minute is not None or rl.tokens_per_minute is not None
    return shared_limiter(_shared_key(name, pc), rl.requests_per_minute, rl.tokens_per_minute,
                          token_headers=configured)


def _breaker(name: str, pc: ProviderConfig) -> Any:
    """The process-wide circuit breaker of this provider."""
    from .resilience.breaker import shared_breaker

    return shared_breaker(_shared_key(name, pc), pc.circuit.failure_threshold,
                          pc.circuit.cooldown)


def _header_observer(limiter: Any) -> Callable[[Any], None]:
    def observe(headers: Any) -> None:
        limiter.observe_headers(headers, trio.current_time())

    return observe


def _response_cache(cfg: AgentConfig) -> Any:
    """The response cache of ``cache.mode`` (None for bypass); ``cache.path`` is relative to
    the working directory, like ``logging.dir``."""
    if cfg.cache.mode == "bypass":
        return None
    from .cache_store import AsyncCacheStore, CacheStore, ResponseCache

    backend = AsyncCacheStore(CacheStore(cfg.cache.path, max_bytes=cfg.cache.max_bytes))
    return ResponseCache(backend, cfg.cache.mode, hash_prompts=cfg.cache.hash_prompts)


def _otel_hooks(hooks: Hooks) -> None:
    """OpenTelemetry spans when the [otel] extra is installed; nothing imported otherwise."""
    import importlib.metadata

    try:  # looked up without importing anything
        importlib.metadata.distribution("opentelemetry-sdk")
    except importlib.metadata.PackageNotFoundError:
        return
    from .otel import register

    register(hooks)


def _tool_registry(cfg: AgentConfig, extra: list[Any]) -> ToolRegistry:
    workspace = Path(cfg.tools.workspace)
    workspace.mkdir(parents=True, exist_ok=True)
    registry = ToolRegistry()
    for t in builtin_tools(workspace, list(cfg.tools.builtin),
                           max_output_chars=cfg.tools.max_output_chars,
                           shell_timeout=max(0.1, cfg.tools.timeout - min(2.0, cfg.tools.timeout / 10))):
        registry.register(t)
    for t in extra:
        registry.register(t)
    return registry


async def _drive(conductor: Conductor, task: str | None) -> Outcome:
    try:
        return await conductor.run(task)
    except ProviderError as exc:  # pragma: no cover - providers report via replies
        return Outcome("provider_failed", 3, message=str(exc))
    except Exception as exc:  # a bug or a dead actor: reported, and the run folder closed
        log.exception("session failed")
        return Outcome("error", 1, message=f"{type(exc).__name__}: {exc}")


def _in_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()
