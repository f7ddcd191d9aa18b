"""The handlers of the routes in ``spec.ROUTES``, by route name.

Each takes the request and the guard's ``Ctx`` (the caller, the decoded body, the rate
headers) and returns a response; refusals are ``ApiError``. The audit log gets every
session creation, approval or denial, cancellation, message and every use of the ``admin``
scope on another caller's sessions.
"""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from ..config import AgentConfig
from .app import Ctx, Handler, json_response
from .errors import ApiError
from .metrics import CONTENT_TYPE
from .models import (
    STATUSES,
    Accepted,
    ApprovalAnswer,
    ApprovalRequestBody,
    CancelBody,
    CreateSession,
    Health,
    Identity,
    MessageBody,
    SessionCreated,
    SessionList,
)
from .openapi import build
from .page import PAGE
from .service import events_url
from .sse import parse_last_event_id
from .store import BadCursor, SessionRecord
from .stream import EventStream

__all__ = ["HANDLERS"]


async def _admin_use(ctx: Ctx, rec: SessionRecord, action: str) -> None:
    """Acting on someone else's session (``admin``, or an approver) is audited as such."""
    if rec.owner != ctx.who.id:
        await ctx.service.audit.record("admin_access", ctx.who.id, session=rec.id,
                                       owner=rec.owner, action_taken=action)


def _query_int(request: Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not raw.strip().isdigit() or not lo <= int(raw) <= hi:
        raise ApiError(422, "validation", f"{name} must be an integer from {lo} to {hi}",
                       field=name)
    return int(raw)


async def create_session(request: Request, ctx: Ctx) -> Response:
    body: CreateSession = ctx.body
    key = request.headers.get("idempotency-key")
    if key is not None and not 1 <= len(key) <= 255:
        raise ApiError(422, "validation", "Idempotency-Key must have 1 to 255 characters",
                       field="Idempotency-Key")
    rec, replayed = await ctx.service.create(ctx.who, body, key)
    headers = {"location": f"/v1/sessions/{rec.id}"}
    if replayed:
        headers["idempotent-replayed"] = "true"
    status = ctx.service.status_of(rec)
    return json_response(SessionCreated(rec.id, status, events_url(rec.id)),  # type: ignore[arg-type]
                         201, headers)


async def list_sessions(request: Request, ctx: Ctx) -> Response:
    limit = _query_int(request, "limit", 50, 1, 200)
    status = request.query_params.get("status")
    if status is not None and status not in STATUSES:
        raise ApiError(422, "validation", f"status must be one of {', '.join(STATUSES)}",
                       field="status")
    owner = None if ctx.who.admin else ctx.who.id
    svc = ctx.service
    try:
        if status is not None and status not in ("finished", "failed", "limit", "cancelled",
                                                 "interrupted", "queued"):
            # live statuses change under the store: filter on what the API shows
            records, nxt = _live_page(svc, owner, request.query_params.get("cursor"), limit,
                                      status)
        else:
            records, nxt = svc.store.page(owner, request.query_params.get("cursor"), limit,
                                          status)
    except BadCursor as exc:
        raise ApiError(422, "validation", str(exc), field="cursor") from None
    if ctx.who.admin:
        await svc.audit.record("admin_access", ctx.who.id, action_taken="list_sessions",
                               status=status)
    return json_response(SessionList([svc.view(r) for r in records], nxt))


def _live_page(svc: Any, owner: str | None, cursor: str | None, limit: int,
               status: str) -> tuple[list[SessionRecord], str | None]:
    out: list[SessionRecord] = []
    while True:
        records, cursor = svc.store.page(owner, cursor, limit, None)
        out.extend(r for r in records if svc.status_of(r) == status)
        if len(out) >= limit or cursor is None:
            return out[:limit], cursor if len(out) >= limit else None


async def get_session(request: Request, ctx: Ctx) -> Response:
    rec = ctx.service.visible(ctx.who, request.path_params["id"])
    await _admin_use(ctx, rec, "get_session")
    return json_response(ctx.service.view(rec))


async def session_events(request: Request, ctx: Ctx) -> Any:
    rec = ctx.service.visible(ctx.who, request.path_params["id"])
    try:
        since = parse_last_event_id(request.headers.get("last-event-id"))
    except ValueError as exc:
        raise ApiError(422, "validation", str(exc), field="Last-Event-ID") from None
    after = _query_int(request, "after", 0, 0, 999_999_999_999_999)
    if since is None:
        since = after
    deltas = request.query_params.get("deltas", "true").lower()
    if deltas not in ("true", "false", "1", "0"):
        raise ApiError(422, "validation", "deltas must be true or false", field="deltas")
    await _admin_use(ctx, rec, "watch_session")
    return EventStream(ctx.service, rec, since, deltas=deltas in ("true", "1"),
                       headers=ctx.headers)


async def send_message(request: Request, ctx: Ctx) -> Response:
    rec = ctx.service.visible(ctx.who, request.path_params["id"])
    body: MessageBody = ctx.body
    ctx.service.send(rec, body.text)
    await ctx.service.audit.record("message", ctx.who.id, session=rec.id)
    await _admin_use(ctx, rec, "send_message")
    return json_response(Accepted(rec.id, ctx.service.status_of(rec)), 202)  # type: ignore[arg-type]


async def answer_approval(request: Request, ctx: Ctx) -> Response:
    svc = ctx.service
    rec = svc.visible(ctx.who, request.path_params["id"], approving=True)
    body: ApprovalRequestBody = ctx.body
    call_id = request.path_params["call_id"]
    await svc.approve(rec, call_id, body.allow, body.reason, body.always, ctx.who.id)
    await svc.audit.record("approval" if body.allow else "denial", ctx.who.id, session=rec.id,
                           call_id=call_id, reason=body.reason, always=body.always or None)
    await _admin_use(ctx, rec, "approval")
    return json_response(ApprovalAnswer(rec.id, call_id, body.allow,
                                        svc.status_of(rec)))  # type: ignore[arg-type]


async def cancel_session(request: Request, ctx: Ctx) -> Response:
    svc = ctx.service
    rec = svc.visible(ctx.who, request.path_params["id"])
    body: CancelBody = ctx.body
    status = await svc.cancel(rec)
    await svc.audit.record("cancel", ctx.who.id, session=rec.id, reason=body.reason)
    await _admin_use(ctx, rec, "cancel")
    return json_response(Accepted(rec.id, status), 202)  # type: ignore[arg-type]


async def health(request: Request, ctx: Ctx) -> Response:
    return json_response(Health("draining" if ctx.service.draining else "ok"))


async def ready(request: Request, ctx: Ctx) -> Response:
    draining = ctx.service.draining
    probe = getattr(ctx.service, "ready", None)
    if probe is None:
        return json_response(Health("draining" if draining else "ok"), 503 if draining else 200)
    ok, backend = await probe()   # a fleet: Redis must answer too
    return json_response(Health("draining" if draining else "ok", backend=backend),
                         200 if ok else 503)


async def metrics(request: Request, ctx: Ctx) -> Response:
    return Response(ctx.service.metrics.render(), 200, media_type=CONTENT_TYPE)


def spec_of(cfg: AgentConfig) -> dict[str, Any]:
    """The OpenAPI document of a deployment: its provider names and, when every provider
    has an allowlist, its models."""
    lists = [p.models for p in cfg.providers.values()]
    models = sorted({m for ms in lists for m in ms}) if all(lists) else []
    return build(providers=list(cfg.providers), models=models)


async def openapi(request: Request, ctx: Ctx) -> Response:
    if ctx.service.openapi_json is None:
        ctx.service.openapi_json = msgspec.json.encode(spec_of(ctx.service.engine.cfg))
    return Response(ctx.service.openapi_json, 200, media_type="application/json")


async def whoami(request: Request, ctx: Ctx) -> Response:
    who = ctx.who
    return json_response(Identity(who.id, who.kind, who.name,  # type: ignore[arg-type]
                                  sorted(who.scopes)))


async def index(request: Request, ctx: Ctx) -> Response:
    """The web page (``page``): public, like ``/health``; everything it shows comes from
    the API with the key the user pastes into it."""
    return Response(PAGE.body, 200, PAGE.headers, media_type="text/html")


HANDLERS: dict[str, Handler] = {
    "create_session": create_session, "list_sessions": list_sessions,
    "get_session": get_session, "session_events": session_events,
    "send_message": send_message, "answer_approval": answer_approval,
    "cancel_session": cancel_session, "health": health, "ready": ready, "metrics": metrics,
    "openapi": openapi, "whoami": whoami, "index": index,
}
