"""What a person sees: the answer on stdout, progress and warnings on stderr.

``Display`` shows streamed text once: when a turn is retried after its stream broke, the
new attempt's text is shown only past what the user has already seen. Console lines
(``[provider-error] ...``, ``[streaming-disabled] ...``) go through the redactor like
everything else that leaves the process.
"""

from __future__ import annotations

from typing import TextIO

from .errors import ProviderError
from .redact import Redactor

__all__ = ["Console", "Display"]


class Console:
    def __init__(self, out: TextIO, err: TextIO, redactor: Redactor, *,
                 stream_answer: bool | None = None) -> None:
        self.out = out
        self.err = err
        self.redactor = redactor
        self.stream_answer = out.isatty() if stream_answer is None else stream_answer

    def line(self, text: str) -> None:
        """A line on stderr."""
        self.err.write(self.redactor.text(text) + "\n")
        self.err.flush()

    def provider_error(self, provider: str, err: ProviderError) -> None:
        status = err.status if err.status is not None else "-"
        self.line(f"[provider-error] {provider} {err.kind.value} {status}: {err.hint}")

    def streaming_disabled(self, provider: str, reason: str) -> None:
        self.line(f"[streaming-disabled] {provider}: {reason}")

    def write_out(self, text: str) -> None:
        self.out.write(self.redactor.text(text))
        self.out.flush()


class Display:
    """Text of one turn as the user saw it, across attempts (see module docstring)."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.shown = ""
        self._attempt: list[str] = []
        self._attempt_len = 0
        self.diverged = False

    def new_attempt(self) -> None:
        self._attempt = []
        self._attempt_len = 0

    @property
    def attempt_text(self) -> str:
        return "".join(self._attempt)

    def text(self, delta: str) -> None:
        self._attempt.append(delta)
        self._attempt_len += len(delta)
        if self._attempt_len <= len(self.shown):
            return
        if not self.console.stream_answer:
            self.shown = self.attempt_text
            return
        full = self.attempt_text
        if not full.startswith(self.shown):
            # the retried answer differs from what was shown: say so once, then show it whole
            self.diverged = True
            self.console.write_out("\n[response restarted]\n")
            self.console.write_out(full)
        else:
            self.console.write_out(full[len(self.shown):])
        self.shown = full

    def end_turn(self) -> None:
        if self.console.stream_answer and self.shown and not self.shown.endswith("\n"):
            self.console.write_out("\n")
        self.shown = ""
        self.new_attempt()
