"""Refusals over loopback HTTP: 401, 403, 404, 405, 413, 415, 422 and 429, each in the one
error shape, each answer as ``/openapi.json`` documents it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from .client import Api
from .conftest import Fake, server_config


async def test_authentication_and_scopes(tmp_path: Path, fake: Fake, serve: Any) -> None:
    """No credential, a wrong key and a malformed header get 401 with a Bearer challenge; a
    key without the scope gets 403 naming it; /health needs nothing."""
    api = Api(serve(server_config(tmp_path, fake)).url)
    try:
        none = await api.call("GET", "/v1/sessions", None)
        assert none.status_code == 401
        assert none.headers["www-authenticate"] == 'Bearer realm="conductor"'
        assert none.json() == {"error": {"kind": "unauthorized", "message": "no credential"}}
        wrong = await api.call("GET", "/v1/sessions", None,
                               headers={"authorization": "Bearer not-a-key"})
        assert wrong.status_code == 401
        assert 'error="invalid_token"' in wrong.headers["www-authenticate"]
        assert "not-a-key" not in wrong.text
        basic = await api.call("GET", "/v1/sessions", None,
                               headers={"authorization": "Basic b3BzOmtleQ=="})
        assert basic.status_code == 401
        forbidden = await api.call("POST", "/v1/sessions", "viewer", json={"task": "x"})
        assert forbidden.status_code == 403
        assert forbidden.json()["error"]["kind"] == "forbidden"
        assert "sessions:write" in forbidden.json()["error"]["message"]
        assert 'error="insufficient_scope"' in forbidden.headers["www-authenticate"]
        metrics = await api.call("GET", "/metrics", "approver")
        assert metrics.status_code == 200
        assert (await api.call("GET", "/health", None)).json() == {"status": "ok"}
        assert (await api.call("GET", "/ready", None)).status_code == 200
    finally:
        await api.aclose()


async def test_bodies_are_bounded_and_validated(tmp_path: Path, fake: Fake, serve: Any) -> None:
    """A body over max_body_bytes gets 413 (by its length, and while reading a chunked one),
    a non-JSON body 415, and an invalid one 422 naming the field."""
    api = Api(serve(server_config(tmp_path, fake, max_body_bytes=2048)).url)
    try:
        big = await api.call("POST", "/v1/sessions", json={"task": "x" * 5000})
        assert big.status_code == 413
        assert big.json()["error"]["kind"] == "payload_too_large"

        async def chunks() -> AsyncIterator[bytes]:
            yield b'{"task": "'
            for _ in range(100):
                yield b"y" * 100
            yield b'"}'

        chunked = await api.call("POST", "/v1/sessions", content=chunks(),
                                 headers={"content-type": "application/json"})
        assert chunked.status_code == 413
        text = await api.call("POST", "/v1/sessions", content=b"task=x",
                              headers={"content-type": "text/plain"})
        assert text.status_code == 415
        cases = [({"task": 5}, "task"), ({"task": "ok", "colour": "red"}, "colour"),
                 ({}, "task"), ({"task": "ok", "max_turns": 0}, "max_turns"),
                 ({"task": "   "}, "task"), ({"task": "ok", "metadata": {"k": [1]}}, "metadata"),
                 ({"task": "ok", "provider": "nope"}, "provider")]
        for body, field in cases:
            resp = await api.call("POST", "/v1/sessions", json=body)
            assert resp.status_code == 422, body
            assert resp.json()["error"]["field"] == field, resp.json()
            assert resp.json()["error"]["kind"] == "validation"
        bad_json = await api.call("POST", "/v1/sessions", content=b"{nope",
                                  headers={"content-type": "application/json"})
        assert bad_json.status_code == 422
        bad_cursor = await api.call("GET", "/v1/sessions", params={"cursor": "zzz"})
        assert bad_cursor.status_code == 422 and bad_cursor.json()["error"]["field"] == "cursor"
        missing = await api.call("GET", "/v1/sessions/{id}", id="no-such-session")
        assert missing.status_code == 404
        unknown = await api.http.get("/v2/nothing")
        assert unknown.status_code == 404 and unknown.json()["error"]["kind"] == "not_found"
        wrong_method = await api.http.delete("/v1/sessions")
        assert wrong_method.status_code == 405
        assert wrong_method.json()["error"]["kind"] == "method_not_allowed"
    finally:
        await api.aclose()


async def test_rate_limit_per_credential(tmp_path: Path, fake: Fake, serve: Any) -> None:
    """Each credential has its own allowance: past it, 429 with retry-after; x-ratelimit-*
    count down on every answer; another key is not affected."""
    api = Api(serve(server_config(tmp_path, fake, rate_limit={"requests_per_minute": 3})).url)
    try:
        remaining = []
        for _ in range(3):
            resp = await api.call("GET", "/v1/sessions")
            assert resp.status_code == 200
            assert resp.headers["x-ratelimit-limit"] == "3"
            remaining.append(int(resp.headers["x-ratelimit-remaining"]))
        assert remaining == [2, 1, 0]
        refused = await api.call("GET", "/v1/sessions")
        assert refused.status_code == 429
        assert refused.json()["error"]["kind"] == "rate_limited"
        assert 1 <= int(refused.headers["retry-after"]) <= 20
        other = await api.call("GET", "/v1/sessions", "viewer")
        assert other.status_code == 200
    finally:
        await api.aclose()
