"""OpenTelemetry spans following the GenAI semantic conventions (``gen_ai.*``).

Imported only when the ``[otel]`` extra is installed and the application has set a tracer
provider before opening the engine (``runtime.engine._otel`` checks both; without a provider
every span would be a no-op, so none is made). Spans go to that provider. One
``chat <model>`` client span per provider attempt, built from the ``response_end`` and
``error`` hook events; one ``execute_tool <name>`` span per tool call.
"""

from __future__ import annotations

import time
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from .hooks import ErrorHookEvent, Hooks, ResponseEnd, ToolCallEvent

__all__ = ["register"]

_tracer = trace.get_tracer("conductor")


def _span(name: str, kind: SpanKind, duration: float, attrs: dict[str, Any]) -> Any:
    end = time.time_ns()
    start = end - int(max(0.0, duration) * 1e9)
    span = _tracer.start_span(name, kind=kind, start_time=start,
                              attributes={k: v for k, v in attrs.items() if v is not None})
    return span, end


def on_response(ev: ResponseEnd) -> None:
    span, end = _span(f"chat {ev.model}", SpanKind.CLIENT, ev.duration, {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": ev.provider,
        "gen_ai.request.model": ev.model,
        "gen_ai.response.model": ev.model,
        "gen_ai.response.id": ev.provider_request_id,
        "gen_ai.usage.input_tokens": ev.input_tokens,
        "gen_ai.usage.output_tokens": ev.output_tokens,
        "gen_ai.usage.cache_read.input_tokens": ev.cache_read_tokens,
        "gen_ai.usage.cache_creation.input_tokens": ev.cache_write_tokens,
        "conductor.run_id": ev.run_id, "conductor.turn": ev.turn,
        "conductor.request_id": ev.request_id, "conductor.ttft_s": ev.ttft,
        "conductor.cost_usd": ev.cost_usd,
    })
    span.end(end_time=end)


def on_error(ev: ErrorHookEvent) -> None:
    span, end = _span(f"chat {ev.model}", SpanKind.CLIENT, 0.0, {
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": ev.provider,
        "gen_ai.request.model": ev.model, "error.type": ev.kind,
        "http.response.status_code": ev.status, "conductor.run_id": ev.run_id,
        "conductor.turn": ev.turn, "conductor.request_id": ev.request_id,
        "conductor.attempt": ev.attempt,
    })
    span.set_status(Status(StatusCode.ERROR, ev.message[:200]))
    span.end(end_time=end)


def on_tool(ev: ToolCallEvent) -> None:
    span, end = _span(f"execute_tool {ev.name}", SpanKind.INTERNAL, ev.duration, {
        "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": ev.name,
        "gen_ai.tool.call.id": ev.call_id, "conductor.run_id": ev.run_id,
        "conductor.turn": ev.turn, "conductor.request_id": ev.request_id,
    })
    if not ev.ok:
        span.set_status(Status(StatusCode.ERROR, "rejected" if ev.rejected else "tool error"))
    span.end(end_time=end)


def register(hooks: Hooks) -> None:
    hooks.on("response_end", on_response)
    hooks.on("error", on_error)
    hooks.on("tool_call", on_tool)
