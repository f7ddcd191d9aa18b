"""The ASGI application: the route table served by Starlette, behind one guard.

Every route of ``spec.ROUTES`` is served by its handler in ``handlers`` through ``_guard``,
which does, in order: authentication (401 with ``WWW-Authenticate``; failures are audited,
and beyond the per-address limit answered 429), the scope (403, audited), the per-credential
rate limit (429 with ``retry-after``; ``x-ratelimit-*`` on every answer), the body (413
while it is read, 415 unless JSON, 422 naming the field), then the handler. Every refusal
is an ``ApiError``, so every error has the one JSON shape; unknown paths and methods too.
CORS is off unless ``server.cors_origins`` lists origins.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
import trio
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from .auth import Authenticator, AuthFailure, Principal
from .errors import ApiError, error_json
from .limits import RequestLimits
from .service import Service
from .spec import ROUTES, RouteSpec

__all__ = ["Ctx", "build_app"]

_encoder = msgspec.json.Encoder()
Handler = Callable[[Request, "Ctx"], Awaitable[Any]]


class Ctx:
    """What the guard established for a handler: the caller, the body, the headers."""

    def __init__(self, service: Service, principal: Principal | None) -> None:
        self.service = service
        self.principal = principal
        self.headers: dict[str, str] = {}
        self.raw: bytes | None = None
        self.body_type: type | None = None
        self._body: Any = None

    @property
    def body(self) -> Any:
        """The body decoded into the route's Struct (422 naming the field), on first use:
        a handler looks its session up first, so a missing session is a 404 whatever the
        body."""
        if self._body is None and self.body_type is not None:
            self._body = _decode(self.raw or b"", self.body_type)
        return self._body

    @property
    def who(self) -> Principal:
        assert self.principal is not None
        return self.principal


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None
                  ) -> Response:
    return Response(_encoder.encode(data), status, headers, media_type="application/json")


def _error(exc: ApiError, headers: dict[str, str] | None = None) -> Response:
    return Response(exc.body(), exc.status, {**(headers or {}), **exc.headers},
                    media_type="application/json")


class Guard:
    """Authentication, scopes, rate limits and bodies for every route (module docstring)."""

    def __init__(self, service: Service, log: Callable[[str], None]) -> None:
        self.service = service
        cfg = service.cfg
        self.auth = Authenticator(cfg)
        self.limits = RequestLimits(cfg.rate_limit.requests_per_minute)
        self.failures = RequestLimits(cfg.rate_limit.requests_per_minute)
        self.max_body = cfg.max_body_bytes
        self.log = log

    def wrap(self, route: RouteSpec, handler: Handler) -> Callable[[Request], Awaitable[Any]]:
        metrics = self.service.metrics

        async def endpoint(request: Request) -> Any:
            t0 = time.perf_counter()
            ctx = Ctx(self.service, None)
            try:
                await self._admit(route, request, ctx)
                if route.body is not None:
                    ctx.raw, ctx.body_type = await self._body(route, request), route.body
                response = await handler(request, ctx)
                if isinstance(response, Response):
                    response.headers.update(ctx.headers)
            except ApiError as exc:
                response = _error(exc, ctx.headers)
            except ClientDisconnect:  # gone while sending its body: nobody reads this
                response = _error(ApiError(400, "bad_request", "the client went away"))
            except Exception as exc:  # a bug: logged (redacted), a plain 500 answered
                self.log("internal error in " + route.name + ": " +
                         "".join(traceback.format_exception(exc)))
                response = _error(ApiError(500, "internal", "internal error"), ctx.headers)
            status = getattr(response, "status_code", 200)
            metrics.http.labels(route.name, route.method, str(status)).inc()
            metrics.http_time.labels(route.name).observe(time.perf_counter() - t0)
            return response

        endpoint.__name__ = route.name
        return endpoint

    async def _admit(self, route: RouteSpec, request: Request, ctx: Ctx) -> None:
        if route.scope is not None:
            await self._authorize(route, request, ctx)
        known = {p.name for p in route.params if p.where == "query"}
        for name in request.query_params:
            if name not in known:
                raise ApiError(422, "validation", f"unknown query parameter {name!r}"
                               + (f"; known: {', '.join(sorted(known))}" if known else ""),
                               field=name)

    async def _authorize(self, route: RouteSpec, request: Request, ctx: Ctx) -> None:
        ip = request.client.host if request.client else "unknown"
        now = trio.current_time()
        audit = self.service.audit
        try:
            principal = self.auth.authenticate(request.headers.get("authorization"))
        except AuthFailure as exc:
            decision = self.failures.take(f"ip:{ip}", now)
            if not decision.allowed:
                self.service.metrics.auth_failures.labels("rate_limited").inc()
                raise ApiError(429, "rate_limited", "too many failed authentications from "
                               "this address", headers=decision.headers()) from None
            self.service.metrics.auth_failures.labels(exc.error).inc()
            await audit.record("auth_failure", "anonymous", ip=ip, reason=exc.reason,
                               method=route.method, path=request.url.path)
            challenge = 'Bearer realm="conductor"'
            if exc.error != "invalid_request" or request.headers.get("authorization"):
                challenge += f', error="{exc.error}", error_description="{exc.reason}"'
            raise ApiError(401, "unauthorized", exc.reason,
                           headers={"www-authenticate": challenge}) from None
        ctx.principal = principal
        decision = self.limits.take(principal.id, now)
        ctx.headers.update(decision.headers())
        ctx.headers.pop("retry-after", None)
        if not decision.allowed:
            self.service.metrics.rate_limited.inc()
            raise ApiError(429, "rate_limited", f"more than {decision.limit} requests a "
                           "minute for this credential", headers=decision.headers())
        if route.scope is not None and not principal.allows(route.scope):
            await audit.record("forbidden", principal.id, ip=ip, scope=route.scope,
                               method=route.method, path=request.url.path)
            raise ApiError(403, "forbidden", f"this credential lacks the scope {route.scope}",
                           headers={"www-authenticate": 'Bearer realm="conductor", error='
                                    f'"insufficient_scope", scope="{route.scope}"'})

    async def _body(self, route: RouteSpec, request: Request) -> bytes:
        """Read the body, refusing it (413) as soon as it is over the limit."""
        length = request.headers.get("content-length")
        if length is not None and length.strip().isdigit() and int(length) > self.max_body:
            raise ApiError(413, "payload_too_large", f"the body is {int(length)} bytes; "
                           f"at most {self.max_body} are accepted (server.max_body_bytes)")
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self.max_body:
                await _discard(request, size, 16 * self.max_body)
                raise ApiError(413, "payload_too_large", f"the body is over {self.max_body} "
                               "bytes (server.max_body_bytes)")
            chunks.append(chunk)
        data = b"".join(chunks)
        if not data.strip():
            if route.body_required:
                raise ApiError(422, "validation", "the request needs a JSON body")
            return b"{}"
        ctype = request.headers.get("content-type", "")
        if ctype.split(";")[0].strip().lower() != "application/json":
            raise ApiError(415, "unsupported_media_type", "send the body as application/json")
        return data


def _decode(data: bytes, body_type: type) -> Any:
    """A JSON body as ``body_type``; integral numbers such as ``3.0`` count as integers
    (JSON Schema's reading of ``integer``)."""
    try:
        raw = msgspec.json.decode(data)
        if isinstance(raw, dict):
            for name in _int_fields(body_type):
                value = raw.get(name)
                if isinstance(value, float) and value.is_integer():
                    raw[name] = int(value)
        return msgspec.convert(raw, body_type)
    except msgspec.ValidationError as exc:
        raise ApiError(422, "validation", str(exc), field=_field(str(exc))) from None
    except msgspec.DecodeError as exc:
        raise ApiError(422, "validation", f"the body is not valid JSON: {exc}") from None


def _int_fields(body_type: type) -> list[str]:
    info = msgspec.inspect.type_info(body_type)
    out = []
    for f in getattr(info, "fields", ()):
        kinds = f.type.types if isinstance(f.type, msgspec.inspect.UnionType) else (f.type,)
        if any(isinstance(k, msgspec.inspect.IntType) for k in kinds) and not any(
                isinstance(k, msgspec.inspect.FloatType) for k in kinds):
            out.append(f.name)
    return out


async def _discard(request: Request, size: int, cap: int) -> None:
    """Read (and drop) what the client is still sending, up to ``cap`` bytes, so that it
    gets to read the 413 instead of a connection reset (a lingering close)."""
    with trio.move_on_after(5):
        try:
            async for chunk in request.stream():
                size += len(chunk)
                if size > cap:
                    return
        except ClientDisconnect:
            return


def _field(message: str) -> str | None:
    """The field a msgspec validation message is about (``metadata``, ``task``)."""
    path = ""
    if " - at `" in message:
        where = message.rsplit(" - at `", 1)[1].rstrip("`")
        where = where.split("` in `")[-1]
        path = where.removeprefix("$").lstrip(".").replace("[...]", "")
    if "field `" in message:
        name = message.split("field `", 1)[1].split("`", 1)[0]
        path = f"{path}.{name}" if path else name
    return path or None


def _dispatch(methods: dict[str, Callable[[Request], Awaitable[Any]]]
              ) -> Callable[[Request], Awaitable[Any]]:
    """One endpoint per path (so a 405's ``Allow`` lists every method of the path)."""

    async def endpoint(request: Request) -> Any:
        method = "GET" if request.method == "HEAD" else request.method
        return await methods[method](request)

    return endpoint


def build_app(service: Service, handlers: dict[str, Handler], *,
              log: Callable[[str], None] = lambda m: None) -> Starlette:
    """The Starlette app of ``service``: exactly ``spec.ROUTES``, each by its handler."""
    guard = Guard(service, log)
    missing = {r.name for r in ROUTES} - set(handlers)
    if missing:
        raise ValueError(f"no handler for route(s) {', '.join(sorted(missing))}")
    by_path: dict[str, dict[str, Callable[[Request], Awaitable[Any]]]] = {}
    for r in ROUTES:
        by_path.setdefault(r.path, {})[r.method] = guard.wrap(r, handlers[r.name])
    routes = [Route(path, _dispatch(methods), methods=list(methods))
              for path, methods in by_path.items()]

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        kind = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "error")
        message = {404: f"no route {request.url.path}", 405: f"{request.method} is not "
                   f"allowed on {request.url.path}"}.get(exc.status_code, str(exc.detail))
        return Response(error_json(kind, message), exc.status_code, dict(exc.headers or {}),
                        media_type="application/json")

    async def crash(request: Request, exc: Exception) -> Response:
        log("internal error: " + "".join(traceback.format_exception(exc)))
        return Response(error_json("internal", "internal error"), 500,
                        media_type="application/json")

    middleware = []
    if service.cfg.cors_origins:
        middleware.append(Middleware(
            CORSMiddleware, allow_origins=service.cfg.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["authorization", "content-type", "idempotency-key",
                           "last-event-id"],
            expose_headers=["x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset",
                            "retry-after", "location", "idempotent-replayed"],
            max_age=600))
    return Starlette(routes=routes, middleware=middleware,
                     exception_handlers={HTTPException: http_error, Exception: crash})
