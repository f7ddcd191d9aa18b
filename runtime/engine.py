"""The engine: one per process, shared by every session it runs.

It owns what is per provider, not per session — the HTTP client and its connection pool
(one SSL context for all), the provider runtime actor, the retry policy, the rate limiter,
the circuit breaker, the response cache — plus the price table, the tool registry (MCP
servers included), the hooks, the reasoning key and the process's budget of open files.
Each provider's settings come from the config entry that declares it, and so does its
context window, resolved once (``runtime.context.WindowSource``: the entry's
``context_window``, a llama.cpp server's ``/props``, the known-model table) together with
what ``context.strategy: provider`` adds to its requests. Sessions are handles::

    async with Engine.open(cfg) as engine:
        s = await engine.start(task="...")            # or resume=RUN_ID
        async for ev in s.events(): ...               # the transcript records, live, typed
        result = await s.result()                     # status, exit code, answer, totals

The engine writes nothing to stdout or stderr and installs no signal handler: the console
and signals belong to its clients (the CLI, batch mode, the service). Leaving the ``async
with`` cancels sessions still running (their folders are closed, resumable).
"""

from __future__ import annotations

import contextlib
import os
import re
import resource
import secrets
import ssl
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TextIO

import attrs
import httpx
import msgspec
import trio

from .budgets import Budget, LocalBudget
from .config import AgentConfig, ProviderConfig
from .context.entries import read_props, vendor_params, window_source, with_betas
from .context.fit import ContextPolicy
from .context.ledger import Ledger
from .context.source import WindowSource
from .errors import ConfigError, sole_exception
from .hooks import Hooks
from .model import Message
from .pricing import PriceTable
from .providers import build_provider
from .providers.actor import ActorOptions, Provider, TurnRequest, provider_actor
from .providers.kinds import KINDS
from .redact import Redactor
from .resilience.breaker import CircuitBreaker
from .resilience.ratelimit import RateLimiter, limiter_key
from .resilience.retry import RetryPolicy
from .session.conductor import Conductor, Limits, ProviderHandle, SessionSpec
from .session.handle import Session, read_journal
from .session.journal import RunFolder, offload
from .session.restore import Restored, fold, restore_legacy
from .session.traces import TRACE_FILE, key_for_run, read_traces
from .tools import ToolRegistry, builtin_tools

__all__ = ["Engine", "new_run_id", "pool_limits", "run_session", "valid_run_id"]

_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def valid_run_id(run_id: str) -> bool:
    """Letters, digits, ``.``, ``_`` and ``-`` (not first), at most 128: a folder name that
    cannot climb out of the logging folder."""
    return bool(_RUN_ID.match(run_id)) and run_id not in (".", "..")


def new_run_id() -> str:
    """A fresh run id: the time, then 48 random bits (and the folder is created exclusively,
    so even a collision cannot share a folder)."""
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(6)


def _fd_budget(reserve: int = 48) -> int:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 65536
    return max(8, soft - reserve)


@attrs.define
class _Runtime:
    """One provider entry: its runtime actor's mailbox and what requests to it carry."""

    name: str
    config: ProviderConfig
    mailbox: trio.MemorySendChannel[TurnRequest]
    client: httpx.AsyncClient | None
    options: ActorOptions
    window: WindowSource | None = None
    policy: ContextPolicy = attrs.field(factory=ContextPolicy)

    def handle(self, model: str | None = None) -> ProviderHandle:
        pc = self.config
        model = model or pc.model
        return ProviderHandle(name=self.name, kind=pc.kind, model=model,
                              mailbox=self.mailbox, stream=pc.stream,
                              params=self._params(model), store=pc.store,
                              cache_system=pc.cache_system, window=self.window)

    def _params(self, model: str) -> Any:
        return vendor_params(self.config, model, self.window, self.policy)


@attrs.define(eq=False)
class Engine:
    cfg: AgentConfig
    runtimes: dict[str, _Runtime]
    registry: ToolRegistry
    redactor: Redactor
    prices: PriceTable
    hooks: Hooks
    key: bytes | None
    key_warning: str | None
    file_slots: trio.CapacityLimiter
    logging_dir: Path
    sessions: dict[str, Session] = attrs.field(factory=dict)
    # called with every record of every session as it is emitted (in order, synchronously:
    # keep them quick and never blocking); the service's metrics are fed this way
    record_listeners: list[Callable[[Any], None]] = attrs.field(factory=list)
    # the fleet's Redis (``runtime.fleet``) when ``backend:`` is configured, else None
    backend: Any = None
    budget: Budget | None = None
    _nursery: trio.Nursery | None = None
    _actors: trio.Nursery | None = None

    # ---- opening ------------------------------------------------------------------------

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, cfg: AgentConfig, *,
                   transport: httpx.AsyncBaseTransport | None = None,
                   providers: Mapping[str, Provider] | None = None,
                   tools: Iterable[Any] = (),
                   hooks: Hooks | None = None,
                   environ: Mapping[str, str] | None = None,
                   mcp_errlog: TextIO | None = None,
                   backend: Any = None) -> AsyncIterator[Engine]:
        """Start the provider runtimes (every entry of ``providers:``) and the MCP servers;
        yield the engine. Seams for tests (users' too): ``transport`` replaces the HTTP
        transport, ``providers`` replaces the runtime of named entries (e.g. a
        ``ScriptedProvider``), ``tools`` adds Python tools, ``hooks`` receives telemetry.
        With ``backend:`` in the config, rate limits, breakers, the response cache and
        budgets are the fleet's (``runtime.fleet``); ``backend`` passes an open
        connection to share (else the engine opens its own)."""
        redactor = Redactor(cfg.secrets(), cfg.logging.redact)
        logging_dir = Path(cfg.logging.dir)
        key: bytes | None = None
        key_warning: str | None = None
        if cfg.reasoning.encrypt:
            key, key_warning = key_for_run(logging_dir, cfg.reasoning.key_env,
                                           environ if environ is not None else cfg.environ)
        budget = _fd_budget()
        hooks = hooks or Hooks()
        _otel(hooks)
        ssl_context = ssl.create_default_context() if transport is None else None
        failures: list[BaseException] = []
        try:
            async with trio.open_nursery() as root:     # the hooks runner
                await root.start(hooks.run)
                try:
                    async with contextlib.AsyncExitStack() as stack:   # clients, MCP, cache
                        registry = _registry(cfg, tools, redactor)
                        later: list[Engine] = []   # the engine, once it exists
                        if cfg.tools.mcp:
                            def notify(message: str) -> None:
                                if later:
                                    later[0].notify(message)

                            await _start_mcp(cfg, stack, registry, mcp_errlog, notify)
                        if cfg.backend is not None and backend is None:
                            from .fleet.connection import open_backend

                            backend = await stack.enter_async_context(
                                open_backend(cfg.backend))
                        cache = _response_cache(cfg, backend)
                        if cache is not None:
                            stack.push_async_callback(cache.backend.aclose)
                        async with trio.open_nursery() as actors:   # provider actors, sessions
                            runtimes: dict[str, _Runtime] = {}
                            per_provider = max(4, budget // (2 * max(1, len(cfg.providers))))
                            policy = cfg.context.policy()
                            for name, pc in cfg.providers.items():
                                client: httpx.AsyncClient | None = None
                                provider = (providers or {}).get(name)
                                limits = pool_limits(pc, per_provider)
                                if provider is None and not KINDS[pc.kind].in_process:
                                    client = await stack.enter_async_context(_client(
                                        transport, ssl_context, pc, limits))
                                window = window_source(name, pc, client)
                                if provider is None:
                                    provider = build_provider(
                                        name, with_betas(pc, window, policy), client,  # type: ignore[arg-type]
                                        redact=redactor.text, pool_size=limits.max_connections)
                                opts = _actor_options(pc, cache, name, backend)
                                if opts.limiter is not None and hasattr(provider, "on_headers"):
                                    provider.on_headers = _header_observer(opts.limiter)
                                if hasattr(provider, "report_pool"):
                                    provider.report_pool = True   # pool use in the summary
                                if hasattr(opts.limiter, "run"):  # a shared limiter's task
                                    await actors.start(opts.limiter.run)  # type: ignore[union-attr]
                                mailbox = await actors.start(_supervised, name, provider, opts,
                                                             failures)
                                runtimes[name] = _Runtime(name, pc, mailbox, client, opts,
                                                          window, policy)
                            await read_props(rt.window for rt in runtimes.values())
                            engine = cls(cfg, runtimes, registry, redactor, _prices(cfg), hooks,
                                         key, key_warning,
                                         trio.CapacityLimiter(max(4, min(64, budget // 4))),
                                         logging_dir, backend=backend,
                                         budget=_budget(cfg, backend))
                            hooks.on_failure = engine._hook_failed
                            engine._actors = actors
                            later.append(engine)
                            closing = trio.Event()
                            engine._nursery = await actors.start(_host, closing)
                            try:
                                yield engine
                            finally:
                                engine._nursery = None
                                with trio.CancelScope(shield=True):
                                    await engine._close_sessions(closing)
                                actors.cancel_scope.cancel()
                finally:
                    hooks.close()
        except BaseExceptionGroup as group:
            lone = sole_exception(group)
            if lone is None:
                raise
            raise lone from None  # one failure comes out as itself (a ConfigError: exit 2)
        if failures:
            raise BaseExceptionGroup("a provider runtime actor failed", failures)

    async def _close_sessions(self, closing: trio.Event, grace: float = 30.0) -> None:
        """Cancel the sessions still running and wait (``grace`` s at most) for them to close
        their run folders."""
        for s in list(self.sessions.values()):
            if not s.done:
                s.cancel("cancelled")
        with trio.move_on_after(grace):
            for s in list(self.sessions.values()):
                await s.result()
        closing.set()

    # ---- sessions -----------------------------------------------------------------------

    async def start(self, task: str | None = None, *, resume: str | None = None,
                    run_id: str | None = None, provider: str | None = None,
                    model: str | None = None, max_turns: int | None = None,
                    history: list[Message] | None = None, keep_open: bool = False,
                    folder: Path | None = None, on_approval: str = "wait",
                    tee: Any = None) -> Session:
        """Start a session (``task``) or resume one (``resume``: a run id); returns its
        handle once its run folder exists. ``provider``/``model``/``max_turns`` override the
        config for this session; ``folder`` is where its run folder goes (default
        ``logging.dir``); ``on_approval``: ``wait`` for ``Session.approve``, or ``deny``
        when nobody can answer; ``tee`` receives every journal line too (a fleet worker's
        journal stream in Redis: ``runtime.fleet.journal``)."""
        if self._nursery is None:
            raise RuntimeError("the engine is closed")
        cfg = self.cfg
        base = folder or self.logging_dir
        order = self._order(provider)
        await read_props(self.runtimes[n].window for n in order)  # a server that came up since
        handles = {h.name: h for h in self.handles_for(order[0], model)}
        restored: Restored | None = None
        if resume is not None:
            run_id = resume
        if run_id is not None and not valid_run_id(run_id):
            raise ConfigError(f"invalid run id {run_id!r}", path="--resume" if resume else
                              "--run-id", fix="use letters, digits, '.', '_' and '-' only")
        if task is not None and not task.strip():
            raise ConfigError("the task is empty", path="task",
                              fix="give a task with some text in it")
        rid: str
        if resume is not None:
            rid, run_dir = resume, base / resume
            restored = await offload(self._restore, run_dir, rid)
            await offload(RunFolder(run_dir).repair)
        else:
            rid, run_dir = await offload(self._new_folder, base, run_id)
        run_id = rid
        spec = SessionSpec(
            run_id=rid, order=tuple(order), system=cfg.system,
            limits=Limits(max_turns or cfg.limits.max_turns, cfg.limits.max_total_tokens,
                          cfg.limits.max_cost_usd),
            tool_timeout=cfg.tools.timeout, approval=dict(cfg.tools.approval),
            keep_open=keep_open)
        session = Session(rid, run_dir, on_approval=on_approval, handles=self.handles_for,
                          tee=tee)
        self.sessions[rid] = session
        first = list(history or []) if restored is None else restored.messages
        pinned = len(first) if restored is None else 0   # a history is not in the journal

        def make(rec: Any, state: Any) -> Conductor:
            from .session.conversation import Conversation

            return Conductor(spec, handles, self.registry, rec, state, self.prices,
                             self.hooks, Conversation(list(first), Ledger(pinned=pinned)),
                             approver=session.ask, context_policy=cfg.context.policy(),
                             budget=self.budget)

        started_at = (restored.started_at if restored is not None and restored.started_at
                      else time.time())
        await self._nursery.start(self._run, session, make, task, restored, started_at)
        return session

    async def _run(self, session: Session, make: Callable[..., Conductor], task: str | None,
                   restored: Restored | None, started_at: float, *,
                   task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            await session.run(make, task=task, redactor=self.redactor, key=self.key,
                              restored=restored, slots=self.file_slots,
                              started_at=started_at, on_record=self._on_record(),
                              task_status=task_status)
        finally:  # the engine keeps running sessions only; the caller keeps its handle
            if self.sessions.get(session.run_id) is session:
                del self.sessions[session.run_id]

    def _on_record(self) -> Callable[[Any], None] | None:
        """What a new session calls with each record: the hooks (when any is registered)
        and the record listeners."""
        calls = [*([self.hooks.record] if self.hooks.active else []), *self.record_listeners]
        if not calls:
            return None
        if len(calls) == 1:
            return calls[0]

        def each(rec: Any) -> None:
            for call in calls:
                call(rec)

        return each

    def notify(self, message: str, code: str = "mcp") -> None:
        """Something that concerns every running session (an MCP server crashed or went
        down): a warning in each of their transcripts."""
        if self._actors is None:
            return
        for s in list(self.sessions.values()):
            if not s.done:
                self._actors.start_soon(s.warn, message, code)

    async def _hook_failed(self, label: str, exc: BaseException, ev: Any) -> None:
        """A hook raised: it is disabled; the session whose event it was says so once."""
        session = self.sessions.get(getattr(ev, "run_id", ""))
        if session is not None:
            await session.warn(f"hook {label} raised {type(exc).__name__}: {exc}; it is "
                               "disabled", code="hook_disabled")

    def handles_for(self, provider: str, model: str | None = None) -> list[ProviderHandle]:
        """How a session reaches entry ``provider`` (with ``model``, default its configured
        one, within its ``models`` allowlist), then its fallbacks."""
        order = self._order(provider)
        rt = self.runtimes[provider]
        allowed = rt.config.models
        if model is not None and allowed and model not in allowed:
            raise ConfigError(f"model {model!r} is not in the allowlist of provider "
                              f"{provider!r} ({', '.join(allowed)})",
                              path=f"providers.{provider}.models",
                              fix="choose a listed model or add it to the allowlist")
        return [self.runtimes[n].handle(model if n == provider else None) for n in order]

    def _order(self, provider: str | None) -> list[str]:
        cfg = self.cfg
        if provider is None:
            return [cfg.provider, *cfg.fallbacks]
        if provider not in self.runtimes:
            raise ConfigError(f"no provider named {provider!r} in providers", path="provider",
                              fix=f"use one of {', '.join(self.runtimes)}")
        return [provider, *(f for f in cfg.fallbacks if f != provider)]

    def _new_folder(self, base: Path, run_id: str | None) -> tuple[str, Path]:
        """Create the run folder exclusively (0700): a generated id is drawn again on a
        collision; a given one that exists with content is an error."""
        base.mkdir(parents=True, exist_ok=True)
        for _ in range(100):
            rid = run_id or new_run_id()
            folder = RunFolder(base / rid)
            try:
                folder.create(exist_ok=run_id is not None)
            except FileExistsError:
                if run_id is not None:
                    raise ConfigError(f"run folder {base / rid} already exists",
                                      path="--run-id",
                                      fix="choose another --run-id, or --resume it") from None
                continue
            return rid, folder.path
        raise RuntimeError("could not find a free run id")  # pragma: no cover

    def _restore(self, run_dir: Path, run_id: str) -> Restored:
        if not (run_dir / "transcript.jsonl").exists():
            raise ConfigError(f"run {run_id} has no transcript.jsonl to resume from",
                              path="--resume", fix="give the id of a folder under "
                              f"{run_dir.parent}")
        traces: list[dict[str, Any]] = []
        enc = run_dir / TRACE_FILE
        if enc.exists() and self.key is not None:
            traces = list(read_traces(enc, self.key, run_id))
        restored = fold((rec for rec, _ in read_journal(run_dir)), traces)
        if restored.legacy:
            state_file = run_dir / "state.json"
            if not state_file.exists():
                raise ConfigError(f"run {run_id} has no state.json to resume from",
                                  path="--resume", fix="this run was written by an older "
                                  "version and cannot be resumed without its state.json")
            state = msgspec.json.decode(state_file.read_bytes())
            restored.messages = restore_legacy(state, traces)
            restored.turn = int(state.get("turn", restored.turn))
            restored.pending, restored.turn_closed = [], True
        return restored


async def _supervised(name: str, provider: Provider, opts: ActorOptions,
                      failures: list[BaseException], *,
                      task_status: trio.TaskStatus[trio.MemorySendChannel[TurnRequest]]
                      = trio.TASK_STATUS_IGNORED) -> None:
    """A provider runtime actor whose failure (a bug) is reported, not spread: its mailbox
    closes, so sessions sending to it get ``ActorFailed`` (a turn in flight sees its reply
    channel end), and the engine raises the failure when it closes."""
    try:
        await provider_actor(provider, opts, task_status=task_status)
    except Exception as exc:
        failures.append(exc)


async def _host(closing: trio.Event, *,
                task_status: trio.TaskStatus[trio.Nursery] = trio.TASK_STATUS_IGNORED) -> None:
    """The sessions' nursery, shielded: a cancellation of the engine reaches a session as
    ``Session.cancel`` (it closes its run folder), never as a cut in the middle of a write."""
    with trio.CancelScope(shield=True):
        async with trio.open_nursery() as nursery:
            task_status.started(nursery)
            await closing.wait()
            nursery.cancel_scope.cancel()  # what outlived its grace


def pool_limits(pc: ProviderConfig, connections: int) -> httpx.Limits:
    """The connection pool of one provider entry: ``providers.<name>.pool``, and for what it
    leaves unset, limits derived from ``connections`` (its share of the open-file budget)."""
    pool = pc.pool
    most = pool.max_connections if pool.max_connections is not None else min(100, connections)
    keep = (pool.max_keepalive if pool.max_keepalive is not None
            else min(20, connections, most))
    return httpx.Limits(max_connections=most, max_keepalive_connections=min(keep, most),
                        keepalive_expiry=pool.keepalive_expiry)


def _client(transport: httpx.AsyncBaseTransport | None, ssl_context: ssl.SSLContext | None,
            pc: ProviderConfig, limits: httpx.Limits) -> httpx.AsyncClient:
    """One provider's HTTP client: its own pool, the engine's one SSL context."""
    return httpx.AsyncClient(
        transport=transport, follow_redirects=False, http2=pc.http2,
        verify=ssl_context if ssl_context is not None else True, limits=limits)


async def _start_mcp(cfg: AgentConfig, stack: contextlib.AsyncExitStack,
                     registry: ToolRegistry, errlog: TextIO | None,
                     notify: Callable[[str], Any]) -> None:
    """The MCP servers of ``tools.mcp``, closed with the engine; their tools registered."""
    from .tools.mcp import open_mcp_tools

    if errlog is None:  # a server's stderr goes nowhere unless the client wants it
        errlog = stack.enter_context(open(os.devnull, "w"))  # noqa: ASYNC230
    for t in await stack.enter_async_context(open_mcp_tools(cfg.tools.mcp, errlog=errlog,
                                                            notify=notify)):
        registry.register(t)


def _registry(cfg: AgentConfig, extra: Iterable[Any], redactor: Redactor) -> ToolRegistry:
    """Built-ins (the workspace created if missing and its parent exists; else
    WorkspaceError, a ConfigError on tools.workspace) and ``extra``; every tool's output is
    capped at tools.max_output_chars; commands see tools.shell_env and no secret."""
    registry = ToolRegistry(max_output_chars=cfg.tools.max_output_chars)
    timeout = cfg.tools.timeout
    for t in builtin_tools(Path(cfg.tools.workspace), list(cfg.tools.builtin),
                           max_output_chars=cfg.tools.max_output_chars,
                           shell_timeout=max(0.1, timeout - min(2.0, timeout / 10)),
                           shell_env=list(cfg.tools.shell_env), redactor=redactor):
        registry.register(t)
    for t in [*_python_tools(cfg), *extra]:
        registry.register(t)
    return registry


def _python_tools(cfg: AgentConfig) -> list[Any]:
    """``tools.python``: each ``module:attribute`` is a Tool, or a function made into one
    (``@tool``: its type hints and docstring give the schema)."""
    import importlib

    from .tools.registry import Tool, tool

    out: list[Any] = []
    for i, ref in enumerate(cfg.tools.python):
        module_name, _, attr = ref.partition(":")
        path = f"tools.python[{i}]"
        try:
            obj = getattr(importlib.import_module(module_name), attr)
        except ImportError as exc:
            raise ConfigError(f"cannot import {module_name!r} for {ref!r}: {exc}", path=path,
                              fix="install the module or put it on PYTHONPATH") from None
        except AttributeError:
            raise ConfigError(f"module {module_name!r} has no {attr!r}", path=path,
                              fix="name a Tool or a function defined in that module") from None
        if not isinstance(obj, Tool):
            if not callable(obj):
                raise ConfigError(f"{ref!r} is neither a Tool nor a function", path=path,
                                  fix="name a Tool or a function")
            obj = tool(obj)
        out.append(obj)
    return out


def _prices(cfg: AgentConfig) -> PriceTable:
    return cfg.price_table()


def _actor_options(pc: ProviderConfig, cache: Any, name: str = "",
                   backend: Any = None) -> ActorOptions:
    """The retry policy, rate limiter and breaker of one provider entry, from its own
    settings (with a fleet ``backend``, the limiter and breaker are shared through Redis
    by every process using the same provider: name, base URL and key). Without a
    configured ``rate_limit`` the limiter only paces requests by the provider's 429s and
    request-count headers."""
    rl = pc.rate_limit
    configured = rl.requests_per_minute is not None or rl.tokens_per_minute is not None
    limiter: Any
    breaker: Any
    if backend is not None:
        from .fleet.limiter import RedisBreaker, RedisLimiter

        shared = limiter_key(name, pc.base_url or pc.kind, pc.api_key)
        limiter = RedisLimiter(backend, shared, rl.requests_per_minute, rl.tokens_per_minute,
                               token_headers=configured)
        breaker = RedisBreaker(backend, shared, pc.circuit.failure_threshold,
                               pc.circuit.cooldown)
    else:
        limiter = RateLimiter(rl.requests_per_minute, rl.tokens_per_minute,
                              token_headers=configured)
        breaker = CircuitBreaker(pc.circuit.failure_threshold, pc.circuit.cooldown)
    return ActorOptions(
        policy=RetryPolicy(pc.retry.max_attempts, pc.retry.base_delay, pc.retry.max_delay),
        streaming_fallback_kinds=frozenset(pc.streaming_fallback_kinds),
        cache=cache, cache_kind=pc.kind, limiter=limiter, breaker=breaker,
        circuit_wait=pc.timeout.total)


def _budget(cfg: AgentConfig, backend: Any) -> Budget | None:
    """``budgets:`` (and, with a fleet, each session's ``limits.max_cost_usd`` counted
    wherever it runs); None when there is nothing to count."""
    b = cfg.budgets
    if backend is not None and (b.active or cfg.limits.max_cost_usd is not None):
        from .fleet.budgets import RedisBudget

        return RedisBudget(backend, b.daily_usd, b.monthly_usd)
    if b.active:
        return LocalBudget(b.daily_usd, b.monthly_usd)
    return None


def _header_observer(limiter: Any) -> Callable[[Any], None]:
    def observe(headers: Any) -> None:
        limiter.observe_headers(headers, trio.current_time())

    return observe


def _response_cache(cfg: AgentConfig, fleet: Any = None) -> Any:
    """The response cache of ``cache.mode`` (None for bypass); ``cache.path`` is relative to
    the working directory, like ``logging.dir``. With a fleet backend the entries are in
    Redis, shared (``backend.cache_ttl``, ``cache.max_bytes``)."""
    if cfg.cache.mode == "bypass":
        return None
    from .cache_store import AsyncCacheStore, CacheStore, ResponseCache

    backend: Any
    if fleet is not None and cfg.backend is not None:
        from .fleet.cache import RedisCacheStore

        backend = RedisCacheStore(fleet, max_bytes=cfg.cache.max_bytes,
                                  ttl=cfg.backend.cache_ttl)
    else:
        backend = AsyncCacheStore(CacheStore(cfg.cache.path, max_bytes=cfg.cache.max_bytes))
    return ResponseCache(backend, cfg.cache.mode, hash_prompts=cfg.cache.hash_prompts)


def _otel(hooks: Hooks) -> None:
    """OpenTelemetry spans when the [otel] extra is installed and the application has set a
    tracer provider (before opening the engine); nothing imported without the SDK. With the
    SDK but no provider every span would be a no-op, yet each would still cost a trip
    through the hooks' task per attempt and per tool call: none is registered then."""
    import importlib.metadata

    try:  # looked up without importing anything
        importlib.metadata.distribution("opentelemetry-sdk")
    except importlib.metadata.PackageNotFoundError:
        return
    from opentelemetry import trace

    if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        return  # nothing configured (OTEL_PYTHON_TRACER_PROVIDER counts as configured)
    from .otel import register

    register(hooks)


async def run_session(cfg: AgentConfig, *, task: str | None, run_id: str | None = None,
                      resume: str | None = None, ask: Any = None,
                      history: list[Message] | None = None,
                      **engine_options: Any) -> tuple[Any, Path]:
    """One session on its own engine, to its end: ``(result, run_folder)``. ``ask`` answers
    ``approval: ask`` calls (``ask(prompt) -> bool``, plain or async; without it they are
    denied); the other keywords go to :meth:`Engine.open` (``transport``, ``providers``,
    ``tools``, ``hooks``, ``environ``)."""
    from .session.client import follow

    if "extra_tools" in engine_options:
        engine_options["tools"] = engine_options.pop("extra_tools") or ()
    async with Engine.open(cfg, **engine_options) as engine:
        session = await engine.start(task, resume=resume, run_id=run_id, history=history,
                                     on_approval="wait" if ask is not None else "deny")
        result = await follow(session, asker=ask)
    return result, session.run_dir
