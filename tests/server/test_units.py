"""The service's pure parts: the audit chain, SSE frames, request limits, the store, auth
and the server: config section."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Any

import jwt
import msgspec
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import given
from hypothesis import strategies as st

from runtime.config import ServerConfig, load_config
from runtime.errors import ConfigError
from runtime.server.app import _field
from runtime.server.audit import GENESIS, seal, verify_lines
from runtime.server.auth import Authenticator, AuthFailure
from runtime.server.limits import RequestLimits
from runtime.server.sse import frame, parse_last_event_id, stream_end
from runtime.server.store import BadCursor, LocalQueue, LocalStore, SessionRecord
from runtime.wire.sse import SSEDecoder


def _chain(n: int) -> list[bytes]:
    lines, prev = [], GENESIS
    for i in range(1, n + 1):
        line, prev = seal({"action": "x", "who": f"key:k{i}", "n": i}, i, prev)
        lines.append(line.rstrip(b"\n"))
    return lines


@given(st.integers(3, 12), st.data())
def test_any_edit_removal_or_swap_is_named(n: int, data: st.DataObject) -> None:
    """An intact chain verifies; editing, removing or swapping any line makes verification
    fail and name a line at or next to the damage."""
    lines = _chain(n)
    assert verify_lines(lines).ok and verify_lines(lines).records == n
    i = data.draw(st.integers(0, n - 2))
    edited = list(lines)
    edited[i] = edited[i].replace(b'"n":', b'"n":1')
    assert next(p.line for p in verify_lines(edited).problems) == i + 1
    removed = lines[:i] + lines[i + 1:]
    report = verify_lines(removed)
    assert not report.ok and report.problems[0].line == i + 1
    assert "removed" in report.problems[0].what
    swapped = list(lines)
    swapped[i], swapped[i + 1] = swapped[i + 1], swapped[i]
    report = verify_lines(swapped)
    assert report.problems[0].line == i + 1 and "reordered" in report.problems[0].what


def test_sse_frames_decode_back() -> None:
    """A frame decodes (with the project's SSE decoder) to its event, id and data; a delta
    has no id; stream_end says where to resume; Last-Event-ID is a position or an error."""
    data = b'{"type":"assistant","text":"a\\nb"}'
    events = SSEDecoder().feed(frame("assistant", data, 7) + frame("text_delta", b"{}")
                               + stream_end("dropped", 7, "too slow"))
    assert [(e.event, e.id) for e in events] == [("assistant", "7"), ("text_delta", "7"),
                                                 ("stream_end", "7")]
    assert events[0].data.encode() == data
    assert msgspec.json.decode(events[2].data)["last_event_id"] == 7
    assert parse_last_event_id(None) is None and parse_last_event_id(" 12 ") == 12
    for bad in ("", "x", "-1", "1" * 16):
        with pytest.raises(ValueError):
            parse_last_event_id(bad)


def test_request_limits_per_key() -> None:
    """A key gets its allowance, then a refusal with the seconds to wait; others are not
    affected; the allowance refills with time."""
    lim = RequestLimits(2)
    assert [lim.take("a", 0.0).remaining for _ in range(2)] == [1, 0]
    refused = lim.take("a", 0.0)
    assert not refused.allowed and refused.retry_after == 30
    assert refused.headers()["retry-after"] == "30"
    assert lim.take("b", 0.0).allowed
    assert lim.take("a", 30.0).allowed


def test_store_pages_and_cursors() -> None:
    """Pages are newest first, owner-filtered, with a cursor that continues exactly; a
    cursor the store did not make is refused; the queue is bounded unless forced."""
    store = LocalStore()
    for i in range(5):
        store.put(SessionRecord(id=f"s{i}", owner="key:a" if i % 2 == 0 else "key:b",
                                created_at=float(i), status="finished"))
    page, nxt = store.page("key:a", None, 2)
    assert [r.id for r in page] == ["s4", "s2"] and nxt is not None
    page, nxt = store.page("key:a", nxt, 2)
    assert [r.id for r in page] == ["s0"] and nxt is None
    with pytest.raises(BadCursor):
        store.page(None, "zzz", 2)
    q = LocalQueue(1)
    assert q.push("x") and not q.push("y") and q.push("y", force=True)
    assert q.remove("x") and q.ids() == ["y"]


def _auth(**jwt_cfg: Any) -> Authenticator:
    cfg = msgspec.convert({"api_keys": [{"name": "ops", "sha256": hashlib.sha256(
        b"the-key").hexdigest(), "scopes": ["sessions:read"]}],
        **({"jwt": jwt_cfg} if jwt_cfg else {})}, ServerConfig)
    return Authenticator(cfg)


def test_api_keys() -> None:
    """The right key is its principal with its scopes; a wrong one, none, or another scheme
    is refused without the key in the reason."""
    auth = _auth()
    p = auth.authenticate("Bearer the-key")
    assert p.id == "key:ops" and p.allows("sessions:read") and not p.allows("admin")
    for header in (None, "", "Bearer", "Basic the-key", "Bearer wrong-key"):
        with pytest.raises(AuthFailure) as err:
            auth.authenticate(header)
        assert "key" not in err.value.reason or "the-key" not in err.value.reason


def test_jwt_hs256_checks_expiry_issuer_audience() -> None:
    """A valid token's subject and scope claim make its principal; an expired token, another
    issuer, another audience or another secret are refused."""
    secret = "s" * 40
    auth = _auth(hs256_secret=secret, issuer="idp", audience="conductor", leeway=0)
    now = int(time.time())
    good = {"sub": "alice", "iss": "idp", "aud": "conductor", "exp": now + 60,
            "scope": "sessions:read approvals:write bogus"}
    p = auth.authenticate("Bearer " + jwt.encode(good, secret, algorithm="HS256"))
    assert p.id == "jwt:alice" and p.scopes == {"sessions:read", "approvals:write"}
    for change, why in (({"exp": now - 10}, "expired"), ({"iss": "other"}, "issuer"),
                        ({"aud": "other"}, "audience")):
        token = jwt.encode({**good, **change}, secret, algorithm="HS256")
        with pytest.raises(AuthFailure, match=why):
            auth.authenticate("Bearer " + token)
    forged = jwt.encode(good, "x" * 40, algorithm="HS256")
    with pytest.raises(AuthFailure, match="signature"):
        auth.authenticate("Bearer " + forged)


def test_jwt_rs256(tmp_path: Any) -> None:
    """RS256 tokens verify against the issuer's public key file; a token signed by another
    key, or an HS256 token, is refused."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    (tmp_path / "pub.pem").write_bytes(pem)
    auth = _auth(rs256_public_key_file=str(tmp_path / "pub.pem"))
    claims = {"sub": "bot", "exp": int(time.time()) + 60, "scope": ["admin"]}
    p = auth.authenticate("Bearer " + jwt.encode(claims, key, algorithm="RS256"))
    assert p.id == "jwt:bot" and p.admin
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(AuthFailure, match="signature"):
        auth.authenticate("Bearer " + jwt.encode(claims, other, algorithm="RS256"))
    with pytest.raises(AuthFailure):
        auth.authenticate("Bearer " + jwt.encode(claims, "k" * 40, algorithm="HS256"))


def test_validation_messages_name_the_field() -> None:
    """msgspec's messages become the field a 422 names."""
    assert _field("Object missing required field `task`") == "task"
    assert _field("Expected `str`, got `int` - at `$.task`") == "task"
    assert _field("Expected `bool`, got `array` - at `$.metadata[...]`") == "metadata"
    assert _field("Expected `str` of length >= 1 - at `key` in `$.metadata`") == "metadata"
    assert _field("Object contains unknown field `colour`") == "colour"


@pytest.mark.parametrize(("server", "path"), [
    ({"api_keys": [{"name": "a", "sha256": "abc", "scopes": ["admin"]}]},
     "server.api_keys[0].sha256"),
    ({"api_keys": [{"name": "a", "sha256": "0" * 64, "scopes": ["admin"]},
                   {"name": "a", "sha256": "1" * 64, "scopes": ["admin"]}]},
     "server.api_keys[1].name"),
    ({"api_keys": [{"name": "a", "sha256": "0" * 64, "scopes": ["root"]}]},
     "server.api_keys[0].scopes[0]"),
    ({"jwt": {"issuer": "x"}}, "server.jwt"),
    ({"jwt": {"hs256_secret": "short"}}, "server.jwt.hs256_secret"),
    ({"cors_origins": ["example.com"]}, "server.cors_origins[0]"),
    ({"max_sessions": 0}, "server.max_sessions"),
])
def test_server_config_errors_name_the_key(write_config: Any, server: dict[str, Any],
                                           path: str) -> None:
    """Each mistake in server: is a ConfigError naming its key path."""
    cfg = {"provider": "m", "providers": {"m": {"kind": "scripted", "script": [{"text": "x"}]}},
           "server": server}
    with pytest.raises(ConfigError) as err:
        load_config(write_config(cfg), environ={})
    assert err.value.path == path, str(err.value)


def test_service_files_are_written_whole_when_os_write_comes_up_short(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``os.write`` may write fewer bytes than asked: the service's state file (replaced
    whole) and its logs (appended) still get every byte, as a run folder's files do."""
    from runtime.fleet.journal import _write_folder
    from runtime.server import files

    real_write = os.write

    def short(fd: int, data: bytes | memoryview) -> int:
        return real_write(fd, bytes(data[:5]))

    body = b'{"sessions": ["a", "b", "c"]}\n'
    monkeypatch.setattr(os, "write", short)
    files.replace(tmp_path / "state" / "server_state.jsonl", body)
    files._append(tmp_path / "audit.jsonl", body, True)
    _write_folder(tmp_path / "run", [b'{"type": "session_start"}', b'{"n": 2}'], [b"frame-1"])
    monkeypatch.undo()
    assert (tmp_path / "state" / "server_state.jsonl").read_bytes() == body
    assert (tmp_path / "audit.jsonl").read_bytes() == body
    assert (tmp_path / "run" / "transcript.jsonl").read_bytes() == (
        b'{"type": "session_start"}\n{"n": 2}\n')
    assert (tmp_path / "run" / "reasoning.enc").read_bytes() == b"frame-1"
