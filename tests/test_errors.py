"""The error taxonomy: kinds, hints, body excerpts, retry-after, built by pure functions."""

from __future__ import annotations

import email.utils
import errno
import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runtime.error_kinds import RULES, Facts, classify
from runtime.errors import (
    RETRYABLE,
    ErrorKind,
    ProviderError,
    error_from_payload,
    error_from_response,
    local_cause,
    local_resource_error,
    parse_retry_after,
    sole_exception,
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
    """Only transient kinds are retryable (a local shortage may pass); auth, bad_request,
    context_length and quota never."""
    assert {k.value for k in RETRYABLE} == {
        "rate_limited", "overloaded", "server", "timeout", "connection", "stream_interrupted",
        "local_resource"}
    for kind in ("auth", "bad_request", "context_length", "permission", "not_found", "quota"):
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


# Quota and billing errors as each vendor sends them (shapes from public bug reports).
QUOTA = [
    pytest.param(429, '{"error": {"message": "You exceeded your current quota, please check '
                 'your plan and billing details.", "type": "insufficient_quota", "param": null, '
                 '"code": "insufficient_quota"}}', id="openai-insufficient_quota"),
    pytest.param(400, '{"error": {"code": "billing_hard_limit_reached", "message": "Billing '
                 'hard limit has been reached", "param": null, "type": "invalid_request_error"}}',
                 id="openai-billing_hard_limit"),
    pytest.param(429, '{"error": {"message": "Your account is not active, please check your '
                 'billing details on our website.", "type": "billing_not_active", "param": null,'
                 ' "code": "billing_not_active"}}', id="openai-billing_not_active"),
    pytest.param(400, '{"type": "error", "error": {"type": "invalid_request_error", "message": '
                 '"Your credit balance is too low to access the Anthropic API. Please go to '
                 'Plans & Billing to upgrade or purchase credits."}}', id="anthropic-credit"),
    pytest.param(402, '{"type": "error", "error": {"type": "billing_error", "message": "There '
                 'is an issue with your billing or payment information."}}',
                 id="anthropic-billing_error"),
    pytest.param(400, '{"type": "error", "error": {"type": "invalid_request_error", "message": '
                 '"You have reached your specified API usage limits. You will regain access on '
                 '2026-12-01 at 00:00 UTC."}}', id="anthropic-spend-limit"),
    pytest.param(402, '{"error": {"message": "Insufficient credits. Add more using '
                 'https://openrouter.ai/settings/credits", "code": 402}}',
                 id="openrouter-insufficient-credits"),
    pytest.param(402, '{"error": {"message": "This request requires more credits, or fewer '
                 'max_tokens. You requested up to 4096 tokens, but can only afford 4000.", '
                 '"code": 402}}', id="openrouter-more-credits"),
    pytest.param(402, '{"error": {"message": "Insufficient Balance", "type": "unknown_error", '
                 '"param": null, "code": "invalid_request_error"}}', id="deepseek-balance"),
    pytest.param(402, '{"error": {"message": "Insufficient credits - top up your balance", '
                 '"type": "insufficient_quota", "code": "insufficient_credits"}}',
                 id="gateway-insufficient_credits"),
    pytest.param(403, '{"type": "error", "error": {"type": "billing_error", "message": '
                 '"Usage is blocked due to insufficient credits."}}', id="anthropic-403"),
]


@pytest.mark.parametrize(("status", "body"), QUOTA)
def test_quota_and_billing_errors_are_final(status: int, body: str) -> None:
    """Each vendor's quota or billing error is kind quota: not retried, with the billing
    hint, whatever status carries it (429, 402, 400, 403)."""
    err = error_from_response(status, JSON, body.encode(), provider="p")
    assert err.kind is ErrorKind.QUOTA and not err.retryable
    assert "billing" in err.hint and "spending limit" in err.hint and "fallback" in err.hint


@pytest.mark.parametrize(("status", "body"), QUOTA)
def test_quota_errors_without_a_status_are_quota_too(status: int, body: str) -> None:
    """The same error object inside a 200 stream or body (no HTTP status) is quota, never
    server (today's default for a status-less error)."""
    import json

    kind, message, _, _ = error_from_payload(json.loads(body))
    assert kind is ErrorKind.QUOTA and message


def test_a_429_that_says_when_to_retry_stays_a_rate_limit() -> None:
    """A per-minute limit worded as a quota ("exceeded your current quota ... retry in 21s",
    or with a retry-after header) is a rate limit; the same words without a retry time on
    a 429 are a quota."""
    body = (b'{"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message": "You '
            b'exceeded your current quota, please check your plan and billing details. '
            b'Please retry in 21.5s."}}')
    assert error_from_response(429, JSON, body).kind is ErrorKind.RATE_LIMITED
    plain = b'{"error": {"message": "You exceeded your current quota, please check your plan"}}'
    assert error_from_response(429, JSON, plain).kind is ErrorKind.QUOTA
    assert error_from_response(429, {**JSON, "retry-after": "20"}, plain).kind \
        is ErrorKind.RATE_LIMITED


@pytest.mark.parametrize(("status", "body", "kind"), [
    pytest.param(500, '{"error": {"code": 500, "message": "Failed to parse tool call arguments '
                 'as JSON: [json.exception.parse_error.101] parse error", "type": '
                 '"server_error"}}', "bad_request", id="llama.cpp-tool-call-arguments"),
    pytest.param(500, '{"error": {"code": 500, "message": "Failed to parse messages: Missing '
                 '\'role\' in message", "type": "server_error"}}', "bad_request",
                 id="llama.cpp-messages"),
    pytest.param(500, '{"error": {"code": 500, "message": "Failed to parse tools: Missing tool '
                 'type", "type": "server_error"}}', "bad_request", id="llama.cpp-tools"),
    pytest.param(500, '{"error": {"message": "Conversation roles must alternate user/assistant'
                 '/user/assistant/..."}}', "bad_request", id="chat-template"),
    pytest.param(500, '{"error": "Error rendering prompt with jinja template: unknown filter"}',
                 "bad_request", id="lm-studio-template"),
    pytest.param(500, '{"error": "Input validation error: `inputs` must have less than 4096 '
                 'tokens"}', "bad_request", id="tgi-validation"),
    pytest.param(500, '{"error": {"code": "500", "message": "This model\'s maximum context '
                 'length is 8192 tokens. However, you requested 50014 tokens.", "type": '
                 '"OpenAIError"}}', "context_length", id="vllm-context-as-500"),
    # Ollama's tool-call parse failure is about the model's own output: it varies, retry it
    pytest.param(500, '{"error": "error parsing tool call: raw=\'{}\', err=invalid '
                 'character"}', "server", id="ollama-model-output"),
    pytest.param(500, '{"error": {"message": "The server had an error while processing your '
                 'request."}}', "server", id="openai-server-error"),
])
def test_a_5xx_about_the_request_itself_is_not_retried(status: int, body: str,
                                                       kind: str) -> None:
    """A 5xx whose body says the request is malformed (llama.cpp, chat templates, TGI) or
    too long fails the same way every time; other 5xx stay retryable server errors."""
    err = error_from_response(status, JSON, body.encode())
    assert err.kind == ErrorKind(kind)
    assert err.retryable is (kind == "server")


TEXT = st.one_of(st.text(max_size=40), st.sampled_from([
    "insufficient_quota", "billing_error", "rate_limit_error", "overloaded_error",
    "invalid_request_error", "api_error", "server_error", "Failed to parse tool call "
    "arguments as JSON", "stream not supported", "prompt is too long", "retry in 2s",
    "credit balance is too low", "timeout_error", "not_found_error"]))


@given(status=st.one_of(st.none(), st.integers(100, 599)), etype=TEXT, code=TEXT,
       message=TEXT, html=st.booleans(), retry_after=st.booleans())
def test_classification_is_total(status: int | None, etype: str, code: str, message: str,
                                 html: bool, retry_after: bool) -> None:
    """Any status (or none) with any type, code and message gets exactly one kind from the
    first matching rule, never an exception."""
    facts = Facts.of(status, etype, code, message, html=html, retry_after=retry_after)
    kind = classify(facts)
    assert isinstance(kind, ErrorKind)
    assert kind is next(k for _, test, k in RULES if test(facts))


@given(status=st.integers(100, 599), body=st.binary(max_size=300),
       ctype=st.sampled_from(["application/json", "text/html", "text/plain", ""]))
def test_any_error_response_gets_a_kind(status: int, body: bytes, ctype: str) -> None:
    """Any status with any bytes and content type builds a ProviderError with a kind and a
    hint, never raises."""
    err = error_from_response(status, {"content-type": ctype}, body)
    assert isinstance(err.kind, ErrorKind) and err.hint and err.message


@given(status=st.one_of(st.none(), st.integers(400, 599)),
       ident=st.sampled_from(["insufficient_quota", "billing_hard_limit_reached",
                              "billing_error", "insufficient_credits"]),
       where=st.sampled_from(["type", "code"]))
def test_a_quota_identifier_is_quota_at_any_status(status: int | None, ident: str,
                                                   where: str) -> None:
    """A quota type or code decides, whatever the status (or none) carries it."""
    facts = Facts.of(status, ident if where == "type" else "", ident if where == "code" else "",
                     "message")
    assert classify(facts) is ErrorKind.QUOTA


def test_local_cause_walks_wrappers_and_groups() -> None:
    """The errno behind httpx-like wrappers and trio's per-address exception groups: local
    only when every address failed locally; the first errno met decides."""
    def chain(*excs: BaseException) -> BaseException:
        for outer, inner in itertools.pairwise(excs):
            outer.__cause__ = inner
        return excs[0]

    emfile = OSError(errno.EMFILE, "Too many open files")
    assert local_cause(chain(RuntimeError("connect"), OSError("all attempts failed"),
                             ExceptionGroup("all", [emfile]))) == errno.EMFILE
    refused = OSError(errno.ECONNREFUSED, "refused")
    mixed = ExceptionGroup("all", [OSError(errno.EADDRNOTAVAIL, "v6"), refused])
    assert local_cause(chain(RuntimeError("connect"), mixed)) is None
    assert local_cause(chain(RuntimeError("x"), OSError(errno.ENOMEM, "oom"))) == errno.ENOMEM
    assert local_cause(chain(OSError(errno.ECONNRESET, "reset"), emfile)) is None
    assert local_cause(RuntimeError("no cause")) is None
    loop = RuntimeError("a")
    loop.__context__ = RuntimeError("b")
    loop.__context__.__context__ = loop
    assert local_cause(loop) is None
    err = local_resource_error(errno.EADDRNOTAVAIL, "connecting", provider="p")
    assert err.kind is ErrorKind.LOCAL_RESOURCE and err.retryable
    assert "EADDRNOTAVAIL" in err.message and "ip_local_port_range" in err.hint


def test_sole_exception_finds_the_one_leaf_of_nested_groups() -> None:
    """A group holding one failure (however deeply nested) gives it back; a group of two
    gives None, so that both stay visible."""
    alone = ValueError("alone")
    nested = BaseExceptionGroup("outer", [BaseExceptionGroup("inner", [alone])])
    assert sole_exception(nested) is alone
    assert sole_exception(ExceptionGroup("flat", [alone])) is alone
    two = ExceptionGroup("two", [ValueError("a"), ExceptionGroup("g", [KeyError("b")])])
    assert sole_exception(two) is None
