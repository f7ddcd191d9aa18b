"""Smoke runs against real providers: checks, a result table, and recorded exchanges.

``scripts/smoke_<kind>.py`` each build a ``SmokeSpec`` (kind, default model, checks) and
call ``main``; the key variable and the default base URL are the kind's
(``runtime.providers.kinds``). A run sends real requests through ``HTTPProvider`` over an
``httpx.AsyncClient`` whose transport is a ``RecordingTransport``: it keeps every exchange's
request and raw response bytes, which gives the provider's request id and, with
``--record DIR``, files in the format of ``../shared/recordings/README.md`` (kept headers
only, keys scrubbed, ``expect`` records computed by decoding with our own codecs).

A check is ``async def check(run: SmokeRun) -> str``: it sends turns with ``run.turn``,
asserts with ``run.require`` and returns a short detail. The table shows, per check: ok,
time to first token (of its first request), tokens (in/out), cost (``PriceTable``) and the
request ids.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import attrs
import httpx
import trio

from runtime.errors import ProviderError
from runtime.events import Event, ReasoningDelta, RefusalDelta, TextDelta, ToolCallStart
from runtime.model import (
    Message,
    Params,
    Request,
    Response,
    ToolResultPart,
    ToolSpec,
    Usage,
)
from runtime.pricing import PriceTable
from runtime.providers import HTTPProvider, ProviderSpec, Timeouts
from runtime.providers.kinds import KINDS
from runtime.redact import Redactor
from scripts._capture import Exchange, RecordingTransport, recording_of

__all__ = [
    "GET_TIME",
    "Check",
    "CheckFailed",
    "CheckResult",
    "SmokeRun",
    "SmokeSpec",
    "check_stream",
    "check_tool",
    "main",
    "tool_round_trip",
]

_OUTPUT = (TextDelta, ReasoningDelta, ToolCallStart, RefusalDelta)

GET_TIME = ToolSpec(
    "get_time", "The current time in a time zone (IANA name, e.g. Asia/Tokyo).",
    {"type": "object", "properties": {"timezone": {"type": "string"}},
     "required": ["timezone"]},
)


class CheckFailed(Exception):
    """A smoke check saw something it did not expect."""


@attrs.define
class CheckResult:
    name: str
    ok: bool = False
    detail: str = ""
    ttft: float | None = None
    usage: Usage | None = None
    cost: float | None = None
    exchanges: list[Exchange] = attrs.field(factory=list)

    @property
    def request_ids(self) -> list[str]:
        return [ex.request_id for ex in self.exchanges if ex.request_id]


Check = Callable[["SmokeRun"], Awaitable[str]]


@attrs.frozen
class SmokeSpec:
    """What one smoke script runs: provider kind, defaults and checks."""

    kind: str
    model: str
    checks: Sequence[tuple[str, Check]]
    params: Params = attrs.field(factory=Params)
    provider: str = "openai"

    @property
    def key_env(self) -> str | None:
        """The variable holding the key, for a kind that needs one (else no key is sent)."""
        kind = KINDS[self.kind]
        return kind.key_env if kind.key_required else None


class SmokeRun:
    """The state of one smoke run: provider, transport, prices, the current check."""

    def __init__(self, spec: SmokeSpec, provider: HTTPProvider, transport: RecordingTransport,
                 prices: PriceTable) -> None:
        self.spec = spec
        self.provider = provider
        self.transport = transport
        self.prices = prices
        self.model = provider.spec.model
        self.current = CheckResult("")

    def request(self, messages: list[Message], **kw: Any) -> Request:
        """A request with the script's base params, overridden by ``params`` fields in kw."""
        over = kw.pop("params", {})
        params = Params(**{**_fields(self.spec.params), **over})
        return Request(self.model, messages, params=params, **kw)

    def require(self, cond: object, message: str) -> None:
        if not cond:
            raise CheckFailed(message)

    async def turn(self, req: Request, *, stream: bool = True) -> Response:
        """Send one request; record time to first output, usage and cost in the check."""
        send, recv = trio.open_memory_channel[list[Event]](16)
        first: list[float] = []
        start = trio.current_time()

        async def consume() -> None:
            async with recv:
                async for batch in recv:
                    if not first and any(isinstance(ev, _OUTPUT) for ev in batch):
                        first.append(trio.current_time() - start)

        failure: Exception | None = None
        async with trio.open_nursery() as nursery:
            nursery.start_soon(consume)
            async with send:
                try:
                    resp = await self.provider.attempt(req, send, stream=stream)
                except Exception as exc:  # raised below as itself, not in an exception group
                    failure = exc
        if failure is not None:
            raise failure
        cur = self.current
        if cur.ttft is None and first:
            cur.ttft = first[0]
        if resp.usage is not None:
            cur.usage = resp.usage if cur.usage is None else cur.usage + resp.usage
            cost = self.prices.cost(resp.model or self.model, resp.usage)
            if cost is None:
                cost = self.prices.cost(self.model, resp.usage)
            if cost is not None:
                cur.cost = (cur.cost or 0.0) + cost
        return resp

    def last_request_body(self) -> dict[str, Any]:
        """The JSON body of the last request sent (as it went over the wire)."""
        self.require(self.transport.exchanges, "no request was sent")
        return self.transport.exchanges[-1].request_json

    async def run_check(self, name: str, check: Check) -> CheckResult:
        self.current = result = CheckResult(name)
        mark = len(self.transport.exchanges)
        try:
            result.detail = await check(self)
            result.ok = True
        except CheckFailed as exc:
            result.detail = str(exc)
        except ProviderError as exc:
            rid = f" (request id {exc.request_id})" if exc.request_id else ""
            result.detail = f"{exc}{rid}"
        except Exception as exc:  # a smoke run reports every failure in its table
            result.detail = f"{type(exc).__name__}: {exc}"
        result.exchanges = self.transport.exchanges[mark:]
        return result


# --- shared checks -------------------------------------------------------------------------

async def check_stream(run: SmokeRun) -> str:
    """A streamed answer: text arrives as deltas, the response finishes normally."""
    req = run.request([Message.user("Count from 1 to 5, digits separated by spaces.")])
    resp = await run.turn(req, stream=True)
    ex = run.transport.exchanges[-1]
    run.require("text/event-stream" in ex.response_headers.get("content-type", ""),
                f"not streamed: content-type {ex.response_headers.get('content-type')!r}")
    run.require(resp.text.strip(), "the streamed answer has no text")
    run.require(resp.stop in ("stop", "length"), f"finished with {resp.stop!r}")
    return f"{len(resp.text)} chars, finish {resp.finish_reason}"


async def tool_round_trip(run: SmokeRun, *, history: Sequence[Message] = (),
                          prompt: str = "What time is it in Tokyo? Use the get_time tool.",
                          system: str | None = None, store: bool | None = None,
                          params: dict[str, Any] | None = None,
                          first: dict[str, Any] | None = None,
                          final_text: bool = True) -> tuple[Response, Response]:
    """Turn 1 must call ``get_time`` with schema-valid arguments; the results go back; turn 2
    must finish (with a text answer and no call when ``final_text``). ``params`` apply to
    both turns, ``first`` to turn 1 only. The second request's body, as sent, must carry a
    result for every call."""
    both = params or {}
    msgs = [*history, Message.user(prompt)]
    req1 = run.request(msgs, system=system, tools=[GET_TIME], store=store,
                       params={**both, **(first or {})})
    resp1 = await run.turn(req1)
    calls = resp1.tool_calls
    run.require(calls, f"no tool call (finish {resp1.finish_reason!r}, text {resp1.text[:60]!r})")
    for call in calls:
        run.require(call.name == "get_time", f"called an unknown tool {call.name!r}")
        try:
            args = json.loads(call.arguments)
        except ValueError:
            raise CheckFailed(f"arguments are not JSON: {call.arguments[:80]!r}") from None
        run.require(isinstance(args, dict) and isinstance(args.get("timezone"), str),
                    f"arguments do not match the schema: {call.arguments[:80]!r}")
    results = [ToolResultPart(c.id, "12:00", name=c.name) for c in calls]
    msgs += [resp1.message(), Message("tool", list(results))]
    req2 = run.request(msgs, system=system, tools=[GET_TIME], store=store, params=both)
    resp2 = await run.turn(req2)
    sent = json.dumps(run.last_request_body())
    for c in calls:
        run.require(json.dumps(c.id) in sent, f"the second request lacks the result of {c.id}")
    if final_text:
        run.require(resp2.text.strip() and not resp2.tool_calls,
                    f"no final answer (finish {resp2.finish_reason!r})")
    else:
        run.require(resp2.stop != "error", f"turn 2 failed (finish {resp2.finish_reason!r})")
    return resp1, resp2


async def check_tool(run: SmokeRun) -> str:
    """A tool round trip: a forced call, its result sent back, a final answer."""
    resp1, resp2 = await tool_round_trip(run, first={"tool_choice": "required"})
    return f"{len(resp1.tool_calls)} call(s), answer {len(resp2.text)} chars"


# --- running and reporting -----------------------------------------------------------------

def _fields(p: Params) -> dict[str, Any]:
    return {f: getattr(p, f) for f in p.__struct_fields__}


def _fmt_usage(u: Usage | None) -> str:
    return "-" if u is None else f"{u.input_tokens}/{u.output_tokens}"


def table(results: Sequence[CheckResult]) -> str:
    """The result table: check, ok, ttft, tokens (in/out), cost, request id, detail."""
    rows = [("check", "ok", "ttft", "tokens", "cost", "request id", "detail")]
    for r in results:
        rows.append((r.name, "ok" if r.ok else "FAIL",
                     "-" if r.ttft is None else f"{r.ttft:.2f}s", _fmt_usage(r.usage),
                     "-" if r.cost is None else f"${r.cost:.6f}",
                     ",".join(r.request_ids) or "-", r.detail.replace("\n", " ")[:200]))
    widths = [max(len(row[i]) for row in rows) for i in range(6)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row[:6], widths, strict=True))
                     + "  " + row[6] for row in rows)


def write_records(dirpath: Path, spec: SmokeSpec, base_url: str, results: Sequence[CheckResult],
                  redactor: Redactor) -> list[Path]:
    """One recording file per check that sent requests; returns the paths written."""
    out: list[Path] = []
    protocol = KINDS[spec.kind].protocol
    assert protocol is not None, "smoke scripts run against HTTP kinds"
    folder = "openrouter" if spec.kind == "openrouter" else protocol
    script = f"smoke_{spec.kind.replace('-', '_')}"
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    source = f"conductor scripts/{script}.py against {urlsplit(base_url).netloc} at {stamp}"
    for r in results:
        if not r.exchanges:
            continue
        rec = recording_of(protocol, r.exchanges, source=source, folder=folder,
                           provider=spec.provider, redactor=redactor)
        path = dirpath / folder / f"{script}__{r.name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(rec, indent=1) + "\n")
        out.append(path)
    return out


async def _server_answers(base_url: str) -> bool:
    try:
        async with httpx.AsyncClient(timeout=3.0) as client:
            await client.get(base_url.rstrip("/") + "/models")
    except httpx.HTTPError:
        return False
    return True


async def run_smoke(spec: SmokeSpec, base_url: str, model: str, api_key: str | None,
                    inner: httpx.AsyncBaseTransport | None = None) -> list[CheckResult]:
    transport = RecordingTransport(inner)
    async with httpx.AsyncClient(transport=transport,
                                 headers={"accept-encoding": "identity"}) as client:
        pspec = ProviderSpec(name=spec.kind, kind=spec.kind, base_url=base_url, model=model,
                             api_key=api_key, timeouts=Timeouts(10, 120, 300))
        run = SmokeRun(spec, HTTPProvider(pspec, client), transport, PriceTable())
        return [await run.run_check(name, check) for name, check in spec.checks]


def main(spec: SmokeSpec, argv: Sequence[str] | None = None) -> int:
    """Parse options, skip without a key (or, for ``local``, without a server), run the
    checks, print the table; 0 when every check passed, 1 otherwise."""
    script = f"smoke_{spec.kind.replace('-', '_')}"
    ap = argparse.ArgumentParser(prog=script, description=f"Smoke checks against {spec.kind}.")
    ap.add_argument("--base-url", default=KINDS[spec.kind].base_url)
    ap.add_argument("--model", default=spec.model)
    ap.add_argument("--record", metavar="DIR", type=Path,
                    help="write each exchange as a recording file under DIR")
    args = ap.parse_args(argv)
    key = os.environ.get(spec.key_env, "") if spec.key_env else ""
    if spec.key_env and not key:
        print(f"SKIP {script}: {spec.key_env} is not set")
        return 0
    if spec.key_env is None and not trio.run(_server_answers, args.base_url):
        print(f"SKIP {script}: no server answers at {args.base_url}")
        return 0
    results = trio.run(run_smoke, spec, args.base_url, args.model, key or None)
    print(f"{script}: model {args.model} at {args.base_url}")
    print(table(results))
    if args.record is not None:
        paths = write_records(args.record, spec, args.base_url, results,
                              Redactor([key] if key else []))
        print(f"recorded {len(paths)} file(s) under {args.record}")
    failed = [r.name for r in results if not r.ok]
    print(f"{len(results) - len(failed)}/{len(results)} checks ok"
          + (f"; failed: {', '.join(failed)}" if failed else ""))
    sys.stdout.flush()
    return 1 if failed else 0
