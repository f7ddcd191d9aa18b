"""Reading the user's messages in interactive mode: multi-line rules and the line editor.

What one message is (``needs_more`` / ``message_of``, pure):

* **Enter** sends the message, unless
* the text ends with ``\\`` — the line continues: the backslash is dropped, the line break
  kept; or
* the text starts with ``\"\"\"`` — a block: Enter adds lines until the text ends with a
  closing ``\"\"\"``; the delimiters (and the line breaks right inside them) are dropped and
  everything between is sent as it is (a ``\\`` at a line's end stays).
* **Esc Enter** (or Alt-Enter) always adds a line break; pasted text keeps its line breaks.

The editor is ``prompt_toolkit`` (line editing, history, multi-line editing, bracketed
paste). It is asyncio-based, so each prompt runs in a worker thread with its own event
loop while the trio loop goes on; ``cancel()`` ends a prompt from the trio side (a signal,
the session ending). In the editor the terminal is in raw mode: Ctrl-C and Ctrl-D are keys,
read as :class:`Interrupted` and :class:`EndOfInput`. History holds this run's messages (a
resumed run's earlier messages too), read from its redacted transcript; nothing is written
to another file.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["BLOCK", "EndOfInput", "Interrupted", "LineReader", "message_of", "needs_more"]

BLOCK = '"""'


class EndOfInput(Exception):
    """Ctrl-D on an empty line."""


class Interrupted(Exception):
    """Ctrl-C in the editor."""


def _block(text: str) -> str | None:
    """The text of a ``\"\"\"`` block after its opening, or None when it is no block."""
    head = text.lstrip()
    return head[len(BLOCK):] if head.startswith(BLOCK) else None


def needs_more(text: str) -> bool:
    """Whether Enter continues the message instead of sending it (see the module doc)."""
    body = _block(text)
    if body is not None:
        return not body.rstrip().endswith(BLOCK)
    return text.endswith("\\")


def message_of(text: str) -> str:
    """The message the editor's text stands for: a block's inside, or the lines with their
    continuation backslashes dropped."""
    body = _block(text)
    if body is not None:
        inner = body.rstrip()
        inner = inner[:-len(BLOCK)] if inner.endswith(BLOCK) else inner
        inner = inner[1:] if inner.startswith("\n") else inner
        return inner[:-1] if inner.endswith("\n") else inner
    return text.replace("\\\n", "\n").removesuffix("\\")


class LineReader:
    """The prompt_toolkit editor, driven from trio (see the module docstring)."""

    def __init__(self, history: Iterable[str] = (), *, output: Any = None,
                 input: Any = None) -> None:
        from prompt_toolkit import PromptSession
        from prompt_toolkit.history import InMemoryHistory
        from prompt_toolkit.key_binding import KeyBindings
        from prompt_toolkit.output import create_output

        keys = KeyBindings()

        @keys.add("enter")
        def _enter(event: Any) -> None:
            buf = event.current_buffer
            if needs_more(buf.text):
                buf.insert_text("\n")
            else:
                buf.validate_and_handle()

        @keys.add("escape", "enter")
        def _newline(event: Any) -> None:
            event.current_buffer.insert_text("\n")

        past = InMemoryHistory()
        for text in history:
            past.append_string(text)
        out = output if output is not None else create_output(always_prefer_tty=True)
        self._message = PromptSession[str](
            multiline=True, key_bindings=keys, history=past, output=out, input=input,
            prompt_continuation=lambda width, line, soft: "." * (width - 1) + " ")
        self._question = PromptSession[str](output=out, input=input)
        self._active: Any = None
        self._lock = threading.Lock()

    def remember(self, text: str) -> None:
        """Add a message to the history (sent without the editor: a resumed task)."""
        self._message.history.append_string(text)

    async def read(self, prompt: str) -> str:
        """One message (``EndOfInput`` on Ctrl-D, ``Interrupted`` on Ctrl-C)."""
        return message_of(await self._run(self._message, prompt))

    async def ask(self, question: str) -> str:
        """A one-line answer."""
        return await self._run(self._question, question)

    async def _run(self, session: Any, prompt: str) -> str:
        import trio

        def run() -> str:
            with self._lock:
                self._active = session.app
            try:
                text: str = session.prompt(prompt)
                return text
            except KeyboardInterrupt:
                raise Interrupted from None
            except EOFError:
                raise EndOfInput from None
            finally:
                with self._lock:
                    self._active = None

        try:
            return await trio.to_thread.run_sync(run, abandon_on_cancel=True)
        except trio.Cancelled:
            self.cancel()
            raise

    def cancel(self) -> None:
        """End the prompt on screen, if any (from any thread)."""
        with self._lock:
            app = self._active
        if app is None:
            return
        loop = getattr(app, "loop", None)
        if loop is not None and app.is_running:
            stop: Callable[[], None] = lambda: app.exit(exception=EOFError())  # noqa: E731
            loop.call_soon_threadsafe(stop)
