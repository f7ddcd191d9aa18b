"""What a person sees: the answer on stdout, progress and warnings on stderr.

The console is a reader of a session's records (``Session.stream``): it renders each one as
it arrives, so the engine itself never prints. Progress lines go through structlog (console
renderer, or one JSON object a line with ``--log-format json``: then *every* stderr line is
JSON, the failure lines and the closing line included), each with ``run_id``, ``turn`` and
``request_id``. Everything that leaves goes through the redactor.

Console lines: ``[provider-error] <provider> <kind> <status>: <hint>``,
``[streaming-disabled] <provider>: <reason>``, ``[failover] <from> -> <to>``,
``[context] <provider> <strategy>: <before> -> <after> tokens of <budget> (...)``,
``warning: <message>``, and at the end one line with status, turns, tokens, cost, duration
and the run folder.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import structlog

from ..redact import Redactor
from ..session.outcome import SessionResult
from ..session.records import (
    AssistantRecord,
    ContextCompacted,
    Event,
    ProviderErrorRecord,
    RequestRecord,
    TextDelta,
    ToolResultRecord,
    WarningRecord,
)

__all__ = ["Console", "configure_logging", "end_line"]


def _processors(redactor: Redactor, fmt: str, stream: TextIO) -> list[Any]:
    renderer: structlog.types.Processor
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=_isatty(stream))
    return [structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info, redactor, renderer]


def configure_logging(redactor: Redactor, fmt: str, stream: TextIO) -> None:
    """structlog's global configuration for this process (the command line only): the same
    pipeline as the console's own lines, on ``stream``."""
    structlog.configure(
        processors=[structlog.contextvars.merge_contextvars,
                    *_processors(redactor, fmt, stream)],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (ValueError, OSError):
        return False


def _tokens(n: int) -> str:
    return f"{n:,}"


def end_line(result: SessionResult) -> str:
    """The one closing line: status, turns, tokens, cost, duration, run folder."""
    t = result.totals
    duration = result.summary.get("duration_s")
    parts = [f"[{result.status}]", f"{result.turns} turn{'s' * (result.turns != 1)}",
             f"{_tokens(int(t.get('total_tokens', 0)))} tokens "
             f"(in {_tokens(int(t.get('input_tokens', 0)))}, "
             f"out {_tokens(int(t.get('output_tokens', 0)))})",
             f"${float(t.get('cost_usd', 0.0)):.4f}"]
    if duration is not None:
        parts.append(f"{float(duration):.1f} s")
    parts.append(f"run folder: {result.run_dir}")
    return " · ".join(parts)


class Console:
    """Renders one session's records on stdout/stderr."""

    def __init__(self, out: TextIO, err: TextIO, redactor: Redactor, *, fmt: str = "console",
                 stream_answer: bool | None = None) -> None:
        self.out = out
        self.err = err
        self.redactor = redactor
        self.json = fmt == "json"
        self.stream_answer = _isatty(out) if stream_answer is None else stream_answer
        # its own pipeline on ``err``: the console works whatever structlog's global setup
        self.log = structlog.wrap_logger(
            structlog.PrintLogger(file=err), processors=_processors(redactor, fmt, err),
            wrapper_class=structlog.make_filtering_bound_logger(logging.INFO))
        self._open_line = False   # streamed text without its final newline yet

    # ---- lines --------------------------------------------------------------------------

    def line(self, text: str, **fields: Any) -> None:
        """A line on stderr (a JSON object with ``--log-format json``)."""
        text = self.redactor.text(text)
        if self.json:
            import json

            payload = {"event": text, **self.redactor.value(fields)}
            self.err.write(json.dumps(payload, ensure_ascii=False, default=str) + "\n")
        else:
            self.err.write(text + "\n")
        self.err.flush()

    def write_out(self, text: str) -> None:
        self.out.write(self.redactor.text(text))
        self.out.flush()

    def _end_text(self) -> None:
        if self._open_line:
            self.write_out("\n")
            self._open_line = False

    # ---- records ------------------------------------------------------------------------

    def render(self, ev: Event) -> None:
        t = type(ev)
        if t is TextDelta:
            assert isinstance(ev, TextDelta)
            if self.stream_answer and ev.text:
                self.write_out(ev.text)
                self._open_line = not ev.text.endswith("\n")
            return
        ids = {"run_id": ev.run_id, "turn": ev.turn}
        if t is AssistantRecord:  # the streamed text of a response ends its line
            self._end_text()
        elif t is RequestRecord:
            assert isinstance(ev, RequestRecord)
            self.log.info("request", provider=ev.provider, model=ev.model, attempt=ev.attempt,
                          request_id=ev.request_id, **ids)
        elif t is ProviderErrorRecord:
            assert isinstance(ev, ProviderErrorRecord)
            status = ev.status if ev.status is not None else "-"
            self.line(f"[provider-error] {ev.provider} {ev.kind} {status}: {ev.hint}",
                      request_id=ev.request_id, **ids)
        elif t is WarningRecord:
            assert isinstance(ev, WarningRecord)
            self._warning(ev, ids)
        elif t is ContextCompacted:
            assert isinstance(ev, ContextCompacted)
            self._compacted(ev, ids)
        elif t is ToolResultRecord:
            assert isinstance(ev, ToolResultRecord)
            self.log.info("tool", name=ev.name, ok=ev.ok, rejected=ev.rejected,
                          request_id=ev.request_id, **ids)

    def _compacted(self, ev: ContextCompacted, ids: dict[str, Any]) -> None:
        what = []
        if ev.elided:
            what.append(f"{len(ev.elided)} result(s) elided")
        if ev.reasoning_dropped:
            what.append(f"reasoning of {len(ev.reasoning_dropped)} message(s) dropped")
        if ev.summarized is not None:
            turns = ev.summarized_turns
            span = f"turns {turns[0]}-{turns[-1]}" if turns else "older turns"
            what.append(f"{span} {'summarized' if ev.request_id else 'removed'}")
        self.line(f"[context] {ev.provider} {ev.strategy}: {ev.tokens_before:,} -> "
                  f"{ev.tokens_after:,} tokens of {ev.budget:,}"
                  + (f" ({', '.join(what)})" if what else ""), **ids)

    def _warning(self, ev: WarningRecord, ids: dict[str, Any]) -> None:
        if ev.code == "streaming_disabled":
            reason = ev.message.split(": ", 1)[-1]
            self.line(f"[streaming-disabled] {ev.provider}: {reason}", **ids)
        elif ev.code == "failover":
            self.line(f"[failover] {ev.message.removeprefix('failing over from ')}"
                      .replace(" to ", " -> ", 1), **ids)
        else:
            self.line(f"warning: {ev.message}", code=ev.code, **ids)

    def finish(self, result: SessionResult, *, streamed: bool) -> None:
        """The answer (unless it was streamed), the status of a session that did not finish,
        and the closing line."""
        self._end_text()
        if result.status == "finished" and not streamed:
            self.write_out(result.answer + ("" if result.answer.endswith("\n") else "\n"))
        elif result.status != "finished":
            self.line(f"[{result.status}] {result.message}", status=result.status)
        self.line(end_line(result), status=result.status, run_id=result.run_id,
                  turns=result.turns, totals=result.totals, run_dir=str(result.run_dir))


def default_streams() -> tuple[TextIO, TextIO]:
    return sys.stdout, sys.stderr
