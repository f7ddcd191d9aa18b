"""The command line's console: records rendered as lines, secrets never shown."""

from __future__ import annotations

import io
import json
from pathlib import Path

from runtime.cli.console import Console, end_line
from runtime.redact import Redactor
from runtime.session.outcome import SessionResult
from runtime.session.records import (
    ContextCompacted,
    ProviderErrorRecord,
    RequestRecord,
    TextDelta,
    WarningRecord,
)


def console(fmt: str = "console", stream: bool = True) -> tuple[Console, io.StringIO, io.StringIO]:
    out, err = io.StringIO(), io.StringIO()
    return Console(out, err, Redactor(["sk-console-canary-1"]), fmt=fmt,
                   stream_answer=stream), out, err


def result(status: str = "finished", answer: str = "done") -> SessionResult:
    return SessionResult("r1", Path("logging/r1"), status, 0 if status == "finished" else 3,  # type: ignore[arg-type]
                         answer, "" if status == "finished" else "it broke", 2,
                         {"input_tokens": 1000, "output_tokens": 234, "total_tokens": 1234,
                          "cost_usd": 0.0123}, {"duration_s": 2.34})


def test_failure_lines_keep_their_documented_shape() -> None:
    """[provider-error], [streaming-disabled] and [failover] lines, redacted."""
    c, _, err = console()
    c.render(ProviderErrorRecord(provider="main", kind="auth", status=401,
                                 hint="key sk-console-canary-1 rejected"))
    c.render(WarningRecord(code="streaming_disabled", provider="main",
                           message="streaming disabled for main: stream not supported"))
    c.render(WarningRecord(code="failover", provider="backup",
                           message="failing over from main to backup"))
    lines = err.getvalue().splitlines()
    assert lines == ["[provider-error] main auth 401: key [REDACTED] rejected",
                     "[streaming-disabled] main: stream not supported",
                     "[failover] main -> backup"]


def test_json_format_makes_every_stderr_line_json() -> None:
    """With --log-format json, progress, failures, warnings and the closing line are JSON."""
    c, _, err = console(fmt="json", stream=False)
    c.render(RequestRecord(run_id="r1", turn=1, provider="main", model="m", request_id="req_1"))
    c.render(ProviderErrorRecord(provider="main", kind="server", status=500, hint="retry"))
    c.render(WarningRecord(code="unpriced", message="no price known for model m"))
    c.finish(result("provider_failed", ""), streamed=False)
    lines = err.getvalue().splitlines()
    assert len(lines) == 5
    parsed = [json.loads(x) for x in lines]
    assert parsed[0]["event"] == "request" and parsed[0]["request_id"] == "req_1"
    assert parsed[1]["event"].startswith("[provider-error] main server 500")
    assert parsed[-1]["status"] == "provider_failed"


def test_the_answer_streams_once_and_the_closing_line_says_it_all() -> None:
    """Deltas go to stdout as they come; the end line has status, turns, tokens, cost,
    duration and the run folder."""
    c, out, err = console()
    for piece in ("Hel", "lo"):
        c.render(TextDelta(text=piece))
    c.finish(result(), streamed=True)
    assert out.getvalue() == "Hello\n"
    assert err.getvalue().strip() == end_line(result())
    assert end_line(result()) == ("[finished] · 2 turns · 1,234 tokens (in 1,000, out 234) · "
                                  "$0.0123 · 2.3 s · run folder: logging/r1")


def test_a_compaction_is_one_line_saying_what_was_done() -> None:
    """A context_compacted record: provider, strategy, tokens before and after, and what was
    elided, dropped, summarized or removed."""
    c, _, err = console()
    c.render(ContextCompacted(provider="main", strategy="summarize", tokens_before=5200,
                              tokens_after=2100, budget=3000, elided=["c1", "c2"],
                              summarized=[1, 9], summarized_turns=[1, 2, 3],
                              summary="...", request_id="req_9"))
    c.render(ContextCompacted(provider="main", strategy="elide", tokens_before=4000,
                              tokens_after=2900, budget=3000, summarized=[1, 5],
                              summarized_turns=[1, 2], summary="[Removed ...]"))
    assert err.getvalue().splitlines() == [
        "[context] main summarize: 5,200 -> 2,100 tokens of 3,000 (2 result(s) elided, "
        "turns 1-3 summarized)",
        "[context] main elide: 4,000 -> 2,900 tokens of 3,000 (turns 1-2 removed)"]
