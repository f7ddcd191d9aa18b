"""Final provider answers over loopback: quota and billing errors (with a status, inside a
200 stream, as a 200 body) and a 5xx that says the request itself is malformed are sent
once, never retried, reported with their hint, and a fallback takes the turn."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trio
import yaml

from runtime.model import Response, TextPart, Usage
from runtime.testing import faults, open_fake_server

FINAL = Response("r-final", "m", [TextPart("answered by the backup")], "stop", "stop",
                 Usage(10, 2))

# Error objects as the vendors send them (shapes from their public bug reports and docs).
OPENAI_QUOTA = {"error": {
    "message": "You exceeded your current quota, please check your plan and billing details. "
               "For more information on this error, read the docs: "
               "https://platform.openai.com/docs/guides/error-codes/api-errors.",
    "type": "insufficient_quota", "param": None, "code": "insufficient_quota"}}
OPENAI_HARD_LIMIT = {"error": {"code": "billing_hard_limit_reached", "param": None,
                               "message": "Billing hard limit has been reached",
                               "type": "invalid_request_error"}}
ANTHROPIC_CREDIT = {"type": "error", "error": {
    "type": "invalid_request_error",
    "message": "Your credit balance is too low to access the Anthropic API. Please go to "
               "Plans & Billing to upgrade or purchase credits."},
    "request_id": "req_011CbrFTcXhtiMzr3s6EocF7"}
ANTHROPIC_BILLING = {"type": "error", "error": {
    "type": "billing_error",
    "message": "Usage is blocked due to insufficient credits. Please visit Plans and Billing "
               "to upgrade or purchase credits."}}
OPENROUTER_CREDITS = {"error": {
    "message": "Insufficient credits. Add more using https://openrouter.ai/settings/credits",
    "code": 402, "metadata": {"limit_source": "openrouter_credits"}}}
OPENROUTER_MORE = {"error": {
    "message": "This request requires more credits, or fewer max_tokens. You requested up "
               "to 4096 tokens, but can only afford 4000. To increase, visit "
               "https://openrouter.ai/settings/credits and add more credits",
    "code": 402}}
DEEPSEEK_BALANCE = {"error": {"message": "Insufficient Balance", "type": "unknown_error",
                              "param": None, "code": "invalid_request_error"}}

STATUS_CASES = [
    pytest.param("openai-chat", 429, OPENAI_QUOTA, id="chat-openai-429"),
    pytest.param("openai-chat", 402, OPENROUTER_CREDITS, id="chat-openrouter-402"),
    pytest.param("openai-chat", 402, DEEPSEEK_BALANCE, id="chat-deepseek-402"),
    pytest.param("openai-responses", 429, OPENAI_QUOTA, id="responses-openai-429"),
    pytest.param("openai-responses", 400, OPENAI_HARD_LIMIT, id="responses-hard-limit-400"),
    pytest.param("anthropic", 400, ANTHROPIC_CREDIT, id="anthropic-credit-400"),
    pytest.param("anthropic", 402, ANTHROPIC_BILLING, id="anthropic-billing-402"),
    pytest.param("anthropic", 403, ANTHROPIC_BILLING, id="anthropic-billing-403"),
]

# the same errors inside a 200 stream, as each protocol reports one there
OPENROUTER_CHUNK = {"id": "gen-1", "object": "chat.completion.chunk", "model": "m",
                    "error": OPENROUTER_MORE["error"],
                    "choices": [{"index": 0, "delta": {"content": ""},
                                 "finish_reason": "error"}]}
RESPONSES_ERROR_EVENT = {"type": "error", "code": "insufficient_quota", "param": None,
                         "message": OPENAI_QUOTA["error"]["message"], "sequence_number": 2}
RESPONSES_FAILED = {"type": "response.failed", "sequence_number": 3, "response": {
    "id": "resp_1", "object": "response", "created_at": 0, "status": "failed", "model": "m",
    "output": [], "usage": None,
    "error": {"code": "insufficient_quota", "message": OPENAI_QUOTA["error"]["message"]}}}
ANTHROPIC_ERROR_EVENT = {"type": "error", "error": ANTHROPIC_BILLING["error"]}
STREAM_CASES = [
    pytest.param("openai-chat", OPENAI_QUOTA, None, 0, id="chat-openai"),
    pytest.param("openai-chat", OPENROUTER_CHUNK, None, 1, id="chat-openrouter-chunk"),
    pytest.param("openai-responses", RESPONSES_ERROR_EVENT, None, 1, id="responses-error"),
    pytest.param("openai-responses", RESPONSES_FAILED, "response.failed", 1,
                 id="responses-failed"),
    pytest.param("anthropic", ANTHROPIC_ERROR_EVENT, None, 1, id="anthropic-billing"),
    pytest.param("anthropic", {"type": "error", "error": ANTHROPIC_CREDIT["error"]}, None, 0,
                 id="anthropic-credit"),
]

# and as the body of a 200 answer to a request without streaming
BODY_CASES = [
    pytest.param("openai-chat", OPENROUTER_CREDITS, id="chat-openrouter"),
    pytest.param("openai-chat", DEEPSEEK_BALANCE, id="chat-deepseek"),
    pytest.param("openai-responses", {
        "id": "resp_1", "object": "response", "status": "failed", "output": None,
        "error": RESPONSES_FAILED["response"]["error"]}, id="responses-failed"),
    pytest.param("anthropic", ANTHROPIC_BILLING, id="anthropic-billing"),
]


def write(tmp_path: Path, protocol: str, main_url: str, backup_url: str | None, *,
          stream: bool = True) -> Path:
    providers: dict[str, Any] = {"main": {
        "kind": protocol, "model": "m", "api_key": "k-main-1", "base_url": main_url,
        "stream": stream, "retry": {"max_attempts": 5, "base_delay": 0.1},
        "circuit": {"failure_threshold": 1, "cooldown": 600}}}
    cfg: dict[str, Any] = {"provider": "main", "providers": providers, "task": "go",
                           "tools": {"workspace": str(tmp_path / "ws")},
                           "logging": {"dir": str(tmp_path / "logs")},
                           "reasoning": {"key_env": "TEST_TRACE_KEY"}}
    if backup_url is not None:
        providers["backup"] = {"kind": protocol, "model": "m", "api_key": "k-backup-1",
                               "base_url": backup_url}
        cfg["fallbacks"] = ["backup"]
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


async def fail_over(tmp_path: Path, run_agent: Any, protocol: str, fault: Any, *,
                    stream: bool = True) -> Any:
    """Main answers with ``fault``; returns the run and both servers' request counts."""
    with trio.fail_after(30):
        async with open_fake_server([fault, FINAL]) as s1, open_fake_server([FINAL]) as s2:
            main_url = s1.base_url(protocol)
            run = await run_agent(write(tmp_path, protocol, main_url, s2.base_url(protocol),
                                        stream=stream))
    run.counts = (s1.request_count, s2.request_count)
    run.breaker = run.breakers["main"]
    return run


def assert_final_quota(run: Any) -> None:
    """Sent once, reported as quota with the billing hint, taken over by the fallback."""
    assert run.outcome.exit_code == 0, run.err
    assert run.out.strip() == "answered by the backup"
    assert run.counts == (1, 1)
    [record] = run.errors(1)
    assert record["kind"] == "quota" and record["will_retry"] is False
    assert not record["retryable"]
    assert "billing" in record["hint"] and "fallback" in record["hint"]
    assert "[provider-error] main quota" in run.err
    assert [e["provider"] for e in run.events("assistant")] == ["backup"]
    assert run.breaker.consecutive_failures == 0  # the provider is up; the key has no money


@pytest.mark.parametrize(("protocol", "status", "body"), STATUS_CASES)
async def test_quota_error_with_a_status_is_final(protocol: str, status: int,
                                                  body: dict[str, Any], tmp_path: Path,
                                                  run_agent) -> None:
    """A vendor's quota or billing error body (429, 402, 400, 403) is kind quota."""
    run = await fail_over(tmp_path, run_agent, protocol, faults.custom(status, body))
    assert_final_quota(run)
    assert run.errors(1)[0]["status"] == status


@pytest.mark.parametrize(("protocol", "error", "event", "after"), STREAM_CASES)
async def test_quota_error_inside_a_200_stream_is_final(protocol: str, error: dict[str, Any],
                                                        event: str | None, after: int,
                                                        tmp_path: Path, run_agent) -> None:
    """The quota error reported inside a 200 event stream (no HTTP error status)."""
    fault = faults.error_in_stream(error, event=event, then=FINAL, after_events=after)
    run = await fail_over(tmp_path, run_agent, protocol, fault)
    assert_final_quota(run)


@pytest.mark.parametrize(("protocol", "body"), BODY_CASES)
async def test_quota_error_as_a_200_body_is_final(protocol: str, body: dict[str, Any],
                                                  tmp_path: Path, run_agent) -> None:
    """The quota error as the JSON body of a 200 answer to a request without streaming."""
    run = await fail_over(tmp_path, run_agent, protocol, faults.error_in_stream(body),
                          stream=False)
    assert_final_quota(run)


async def test_quota_without_a_fallback_fails_the_session_at_once(tmp_path: Path,
                                                                  run_agent) -> None:
    """With no other provider the quota error ends the session (exit 3) after one request."""
    with trio.fail_after(30):
        async with open_fake_server([faults.custom(429, OPENAI_QUOTA), FINAL]) as server:
            run = await run_agent(write(tmp_path, "openai-chat",
                                        server.base_url("openai-chat"), None))
    assert run.outcome.exit_code == 3
    assert server.request_count == 1
    assert "quota" in run.outcome.message
    assert [e["kind"] for e in run.errors(1)] == ["quota"]


LLAMA_CPP_500 = {"error": {
    "code": 500, "type": "server_error",
    "message": "Failed to parse tool call arguments as JSON: [json.exception.parse_error.101] "
               "parse error at line 1, column 12: syntax error while parsing value - invalid "
               "string: missing closing quote; last read: '\"{\"path\": \"a'"}}


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "json"])
async def test_a_500_saying_the_request_is_malformed_is_sent_once(stream: bool,
                                                                   tmp_path: Path,
                                                                   run_agent) -> None:
    """llama.cpp's 500 "Failed to parse tool call arguments as JSON" (the history it was sent
    is broken) fails the same way every time: bad_request, not retried."""
    with trio.fail_after(30):
        async with open_fake_server([faults.custom(500, LLAMA_CPP_500), FINAL]) as server:
            path = write(tmp_path, "openai-chat", server.base_url("openai-chat"), None,
                         stream=stream)
            run = await run_agent(path)
    assert run.outcome.exit_code == 3
    assert server.request_count == 1
    [record] = run.errors(1)
    assert (record["kind"], record["status"], record["will_retry"]) == ("bad_request", 500,
                                                                        False)
    assert "Failed to parse tool call arguments" in record["message"]
