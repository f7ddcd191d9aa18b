"""The error taxonomy: kinds, hints, body excerpts, retry-after, built by pure functions."""

from __future__ import annotations

import email.utils

import pytest

from runtime.errors import (
    RETRYABLE,
    ErrorKind,
    ProviderError,
    error_from_response,
    parse_retry_after,
)
from runtime.redact import Redactor
from tests.recordings import interactions

JSON = {"content-type": "application/json"}


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (401, '{"error": {"type": "invalid_request_error", "code": "invalid_api_key", "message": "Incorrect API key"}}', "auth"),
        (401, '{"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}}', "auth"),
        (403, '{"type": "error", "error": {"type": "permission_error", "message": "no"}}', "permission"),
        (404, '{"error": {"message": "The model `x` does not exist", "code": "model_not_found"}}', "not_found"),
        (400, '{"error": {"message": "This model\'s maximum context length is 128000 tokens", "code": "context_length_exceeded"}}', "context_length"),
        (400, '{"type": "error", "error": {"type": "invalid_request_error", "message": "prompt is too long: 210000 tokens > 200000 maximum"}}', "context_length"),
        (400, '{"error": {"message": "Unsupported value: temperature"}}', "bad_request"),
        (400, '{"error": {"message": "stream not supported"}}', "streaming_unsupported"),
        (429, '{"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}}', "rate_limited"),
        (529, '{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}', "overloaded"),
        (500, '{"error": {"message": "The server had an error"}}', "server"),
        (503, "upstream connect error", "server"),
        (504, "gateway timeout", "timeout"),
    ],
)
def test_kind_from_status_and_body(status: int, body: str, kind: str) -> None:
    """Status, error type and code decide the kind; the most specific match wins."""
    err = error_from_response(status, JSON, body.encode(), provider="p")
    assert err.kind == ErrorKind(kind)
    assert err.status == status and err.provider == "p"
    assert err.hint and err.message


def test_html_error_page_becomes_readable_message_and_excerpt() -> None:
    """An HTML page from a proxy gives its title as message and its first 400 chars as details."""
    page = "<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body>" + "x" * 1000
    err = error_from_response(502, {"content-type": "text/html"}, page.encode())
    assert err.kind is ErrorKind.SERVER
    assert err.message == "502 Bad Gateway"
    assert err.details == page[:400]
    html_200 = error_from_response(200, {"content-type": "text/html"}, b"<html><h1>Login</h1></html>")
    assert html_200.kind is ErrorKind.MALFORMED_RESPONSE and html_200.message == "Login"


def test_plain_text_body_and_request_id() -> None:
    """A plain-text body is the message; the request id header is kept."""
    err = error_from_response(500, {"x-request-id": "req_1"}, b"internal   error\n")
    assert (err.message, err.request_id, err.details) == ("internal error", "req_1", "internal   error\n")


def test_details_are_redacted_and_capped() -> None:
    """Secrets echoed by a provider never reach the error's message or details."""
    red = Redactor(["sk-canary-0123456789"], [r"(?i)password=\S+"])
    body = b'{"error": {"message": "bad key sk-canary-0123456789 password=hunter2"}}' + b" " * 600
    err = error_from_response(401, JSON, body, redact=red.text)
    assert "sk-canary" not in err.message + (err.details or "")
    assert "hunter2" not in err.message + (err.details or "")
    assert len(err.details or "") <= 400


def test_retryable_kinds() -> None:
    """Only transient kinds are retryable; auth, bad_request and context_length never."""
    assert {k.value for k in RETRYABLE} == {
        "rate_limited", "overloaded", "server", "timeout", "connection", "stream_interrupted"}
    for kind in ("auth", "bad_request", "context_length", "permission", "not_found"):
        assert not ProviderError(kind, "x").retryable


def test_retry_after_forms() -> None:
    """retry-after in seconds, as an HTTP date, and retry-after-ms (which wins)."""
    now = 1_700_000_000.0
    assert parse_retry_after({"Retry-After": "7"}) == 7.0
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert parse_retry_after({"retry-after": date}, now=now) == pytest.approx(30, abs=1)
    assert parse_retry_after({"retry-after": "7", "retry-after-ms": "1500"}) == 1.5
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({}) is None
    err = error_from_response(429, {"retry-after": "3"}, b"{}")
    assert err.retry_after == 3.0 and err.kind is ErrorKind.RATE_LIMITED


@pytest.mark.parametrize(
    "case", [c for c in interactions() if c[3]["error"] and not c[3]["error"].get("in_stream")],
    ids=lambda c: c[0],
)
def test_recorded_http_errors(case: tuple) -> None:
    """Every recorded HTTP error body yields its type, code and message."""
    _, _, inter, exp = case
    r = inter["response"]
    err = error_from_response(r["status"], r["headers"], r["body"].encode())
    e = exp["error"]
    assert (err.status, err.type, err.code) == (e["status"], e["type"], e["code"])
    assert e["message"] in err.message
    assert err.details == r["body"][:400]
