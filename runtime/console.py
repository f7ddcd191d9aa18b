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
    """Text of one turn as the user saw it, across attempts (see module docstring).

    Per delta this costs an append: an attempt's text is joined once, when it first goes
    past what an earlier attempt already showed (to check that it agrees with it)."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._shown: list[str] = []  # what the user has seen of this turn
        self.shown_len = 0
        self._held: list[str] = []  # this attempt's text while within what was shown
        self._held_len = 0
        self._live = False  # this attempt has gone past what was shown

    @property
    def shown(self) -> str:
        return "".join(self._shown)

    def new_attempt(self) -> None:
        self._held = []
        self._held_len = 0
        self._live = False

    def text(self, delta: str) -> None:
        if self._live:
            self._show(delta)
            return
        self._held.append(delta)
        self._held_len += len(delta)
        if self._held_len <= self.shown_len:
            return
        full, shown = "".join(self._held), self.shown
        self._held, self._live = [], True
        if full.startswith(shown):
            self._show(full[len(shown):])
            return
        # the retried answer differs from what was shown: say so once, then show it whole
        if self.console.stream_answer:
            self.console.write_out("\n[response restarted]\n")
        self._shown, self.shown_len = [], 0
        self._show(full)

    def _show(self, text: str) -> None:
        if text:
            self._shown.append(text)
            self.shown_len += len(text)
            if self.console.stream_answer:
                self.console.write_out(text)

    def end_turn(self) -> None:
        if self.console.stream_answer and self._shown and not self._shown[-1].endswith("\n"):
            self.console.write_out("\n")
        self._shown, self.shown_len = [], 0
        self.new_attempt()
