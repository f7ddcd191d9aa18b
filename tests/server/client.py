"""A test client of the service: every answer checked against ``/openapi.json``, and SSE
read with the project's own decoder (``runtime.wire.sse``)."""

from __future__ import annotations

from typing import Any

import httpx
import msgspec

from runtime.wire.sse import SSEDecoder, SSEEvent

from .conftest import bearer, check_response


class Api:
    def __init__(self, url: str) -> None:
        self.url = url
        self.http = httpx.AsyncClient(base_url=url, timeout=60)

    async def aclose(self) -> None:
        await self.http.aclose()

    async def call(self, method: str, template: str, key: str | None = "ops", *,
                   headers: dict[str, str] | None = None, **kw: Any) -> httpx.Response:
        """``template`` is the route's path; ``id`` / ``call_id`` fill it."""
        path = template.format(id=kw.pop("id", "{id}"), call_id=kw.pop("call_id", "{call_id}"))
        hdrs = {**(bearer(key) if key else {}), **(headers or {})}
        resp = await self.http.request(method, path, headers=hdrs, **kw)
        check_response(resp, template, method)
        return resp

    async def create(self, task: str, key: str = "ops", **body: Any) -> dict[str, Any]:
        resp = await self.call("POST", "/v1/sessions", key, json={"task": task, **body})
        assert resp.status_code == 201, resp.text
        out: dict[str, Any] = resp.json()
        return out

    async def get(self, sid: str, key: str = "ops") -> dict[str, Any]:
        resp = await self.call("GET", "/v1/sessions/{id}", key, id=sid)
        assert resp.status_code == 200, resp.text
        out: dict[str, Any] = resp.json()
        return out

    async def events(self, sid: str, key: str = "ops", *, last_event_id: int | None = None,
                     until: str | None = None, deltas: bool = True) -> list[SSEEvent]:
        """The session's events until the stream ends (or until an event of type
        ``until``, after which the connection is closed: a watcher going away)."""
        headers = bearer(key)
        if last_event_id is not None:
            headers["last-event-id"] = str(last_event_id)
        out: list[SSEEvent] = []
        dec = SSEDecoder()
        async with self.http.stream("GET", f"/v1/sessions/{sid}/events", headers=headers,
                                    params={"deltas": str(deltas).lower()}) as resp:
            assert resp.status_code == 200, (resp.status_code, await resp.aread())
            assert resp.headers["content-type"].startswith("text/event-stream")
            async for chunk in resp.aiter_raw():
                for ev in dec.feed(chunk):
                    out.append(ev)
                    if until is not None and ev.event == until:
                        return out
        out.extend(dec.close())
        return out


def records(events: list[SSEEvent]) -> list[dict[str, Any]]:
    """The transcript records among SSE events (not deltas, not stream_end)."""
    out = []
    for ev in events:
        if ev.event in ("text_delta", "stream_end"):
            continue
        rec = msgspec.json.decode(ev.data)
        assert ev.id == str(rec["seq"]) and ev.event == rec["type"]
        out.append(rec)
    return out
