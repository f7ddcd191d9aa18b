"""Interactive mode: ``python main.py --config agent.yaml`` with no task and a terminal.

A chat on one run (``Engine.start(keep_open=True)``): a prompt (``chat_input``), the
answer streamed, tool activity as it happens (``chatview``), a live status line
(``status``). Keys and commands (``/help`` prints them):

* Enter sends; a line ending in ``\\`` continues; a message starting with ``\"\"\"`` runs
  to the closing ``\"\"\"``; Esc Enter adds a line break; ``//text`` sends ``/text``.
* Ctrl-C during a turn cancels that turn (the conversation stays valid; a second Ctrl-C
  before it stops ends the session); Ctrl-C at the prompt ends the session (exit 130);
  Ctrl-D at the prompt or ``/exit`` ends it normally (exit 0). Either way the run folder
  is closed and resumable (``--resume RUN_ID``).
* ``approval: ask`` calls are asked inline: yes, no, or always for this tool.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TextIO

import trio

from ..config import AgentConfig
from ..engine import Engine
from ..errors import ConfigError
from ..redact import Redactor
from ..session.handle import Session, read_journal
from ..session.journal import offload
from ..session.outcome import SessionResult
from ..session.records import ApprovalRequest, AssistantRecord, SessionStart, UserMessage
from .chat_input import EndOfInput, Interrupted, LineReader
from .chatview import ChatView, cost_lines, preview
from .console import end_line
from .status import Screen

__all__ = ["HELP", "Chat", "run_interactive"]

PROMPT = "you> "
HELP = """\
Enter sends the message. A line ending in \\ continues on the next line; a message
starting with \"\"\" runs until a line ending in \"\"\"; Esc Enter adds a line break.
Ctrl-C cancels the turn in progress (twice: ends the session); at the prompt it ends the
session (exit 130). Ctrl-D or /exit ends it (exit 0). //text sends /text.
Commands:
  /help             this text
  /cost             tokens and cost so far, per provider
  /tools            the tools offered and their approval policy
  /model [NAME]     show or switch the model for the next turns: a model of the current
                    provider, a provider entry, or ENTRY:MODEL
  /compact [HOW]    shrink the conversation now (context.strategy, or elide / summarize)
  /save             where the run folder is (everything is already on disk)
  /exit             end the session"""


class Chat:
    """One interactive session: the prompt loop, the event pump, approvals, commands."""

    def __init__(self, engine: Engine, session: Session, view: ChatView, reader: LineReader,
                 *, err: Callable[[str], None]) -> None:
        self.engine = engine
        self.session = session
        self.view = view
        self.screen = view.screen
        self.reader = reader
        self.say = err
        self.terminal = trio.Lock()        # one prompt at a time (message or approval)
        self.caught_up = trio.Event()      # the view has shown every record so far
        self.pumped = trio.Event()         # the pump has shown the session's last record
        self.cancelling = False            # Ctrl-C was pressed during this turn
        self.always: set[str] = set()

    # ---- the event pump -----------------------------------------------------------------

    async def pump(self) -> None:
        """Render every event; answer approval requests inline."""
        try:
            async with trio.open_nursery() as nursery:
                async for ev in self.session.events(deltas=True):
                    self.view.render(ev)
                    if type(ev) is ApprovalRequest and ev.seq > self.view.quiet_until:
                        nursery.start_soon(self.approve, ev)
                    if self.view.seen >= self.session.last_seq:
                        self.caught_up.set()
                nursery.cancel_scope.cancel()
        finally:
            self.pumped.set()
            self.caught_up.set()

    async def _shown(self) -> None:
        """Wait until every record the session wrote so far is on screen."""
        while self.view.seen < self.session.last_seq and not self.session.done:
            self.caught_up = trio.Event()
            await self.caught_up.wait()

    async def approve(self, ev: ApprovalRequest) -> None:
        async with self.terminal:
            self.say(f"the model wants to run {ev.name} {preview(ev.arguments, 500)}")
            while True:
                with self.screen.paused():
                    try:
                        answer = (await self.reader.ask(
                            f"allow {ev.name}? [y]es / [n]o / [a]lways for {ev.name}: "))
                    except (Interrupted, EndOfInput):
                        self.interrupt()
                        return
                choice = answer.strip().lower()
                if choice in ("y", "yes", "a", "always", "n", "no", ""):
                    break
                self.say("answer y, n or a")
        allow, always = choice in ("y", "yes", "a", "always"), choice in ("a", "always")
        if always:
            self.always.add(ev.name)
        try:
            await self.session.approve(ev.call_id, allow, None if allow else
                                       f"the user declined to run {ev.name}",
                                       always=always, by="terminal")
        except KeyError:  # the turn was cancelled meanwhile
            pass

    # ---- signals ------------------------------------------------------------------------

    def interrupt(self) -> None:
        """Ctrl-C: cancel the turn in progress; a second one, or one outside a turn, ends
        the session."""
        if not self.cancelling and self.session.cancel_turn():
            self.cancelling = True
            self.say("^C cancelling the turn (Ctrl-C again ends the session)")
            return
        self.session.cancel("interrupted")
        self.reader.cancel()

    async def signals(self, *, task_status: trio.TaskStatus[None]) -> None:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as received:
            task_status.started()
            async for sig in received:
                if sig == signal.SIGTERM:
                    self.session.cancel("terminated")
                    self.reader.cancel()
                else:
                    self.interrupt()

    # ---- the prompt loop ----------------------------------------------------------------

    async def converse(self) -> None:
        """Prompt, send, repeat, until the session ends or the user ends it."""
        while await self.session.wait_input():
            await self._shown()
            self.cancelling = False
            self.view.end_answer()
            self.screen.waiting()
            self.screen.stop()
            async with self.terminal:
                try:
                    text = await self.reader.read(PROMPT)
                except EndOfInput:
                    self.session.close_input()
                    return
                except Interrupted:
                    self.session.cancel("interrupted")
                    return
            if not text.strip():
                continue
            if text.startswith("/") and not text.startswith("//"):
                if not await self.command(text):
                    return
                continue
            self.screen.start()
            await self.session.send(text[1:] if text.startswith("//") else text)

    async def command(self, text: str) -> bool:
        """Run a /command; False when it ends the session."""
        name, _, arg = text[1:].strip().partition(" ")
        arg = arg.strip()
        handler = self._commands().get(name.lower())
        if handler is None:
            self.say(f"unknown command /{name}; /help lists them")
            return True
        result = await handler(arg)
        return result is not False

    def _commands(self) -> dict[str, Callable[[str], Awaitable[bool | None]]]:
        return {"help": self.cmd_help, "cost": self.cmd_cost, "tools": self.cmd_tools,
                "model": self.cmd_model, "compact": self.cmd_compact, "save": self.cmd_save,
                "exit": self.cmd_exit, "quit": self.cmd_exit}

    async def cmd_help(self, arg: str) -> None:
        self.say(HELP)

    async def cmd_cost(self, arg: str) -> None:
        for line in cost_lines(self.view.accounts):
            self.say(line)

    async def cmd_tools(self, arg: str) -> None:
        registry, policy = self.engine.registry, self.engine.cfg.tools.approval
        if not registry.names():
            self.say("no tools are offered (tools.builtin, tools.mcp)")
        for name in registry.names():
            tool = registry[name]
            mode = policy.get(name, tool.approval)
            mode += " (always allowed now)" if name in self.always else ""
            first = tool.description.strip().splitlines()[0] if tool.description.strip() else ""
            self.say(f"  {name:<24} {mode:<8} {first}")

    async def cmd_model(self, arg: str) -> None:
        driver = self.session.driver
        runtimes = self.engine.runtimes
        if not arg:
            if driver is not None:
                self.say(f"now: {driver.name} ({driver.model})")
            for name, rt in runtimes.items():
                models = ", ".join(rt.config.models) or "any model"
                self.say(f"  {name:<16} {rt.config.kind:<16} {rt.config.model} ({models})")
            return
        provider, model = parse_model(arg, set(runtimes))
        try:
            await self.session.switch(provider, model)
        except ConfigError as exc:
            self.say(f"error: {exc}")

    async def cmd_compact(self, arg: str) -> None:
        compact = getattr(self.session, "compact", None)
        if compact is None:
            self.say("context compaction is not available in this version "
                     "(Session.compact is missing)")
            return
        self.screen.start()
        try:
            done = await compact(arg or None)
        except (ValueError, ConfigError) as exc:
            done = None
            self.say(f"error: {exc}")
        finally:
            self.screen.stop()
        await self._shown()
        if done is not None and not getattr(done, "changed", True):
            self.say(getattr(done, "message", "") or "nothing to compact")

    async def cmd_save(self, arg: str) -> None:
        self.say(f"run folder: {self.session.run_dir.resolve()} (every record is on disk; "
                 f"summary.json is written when the session ends; resume with --resume "
                 f"{self.session.run_id})")

    async def cmd_exit(self, arg: str) -> bool:
        self.session.close_input()
        return False


def parse_model(arg: str, entries: set[str]) -> tuple[str | None, str | None]:
    """``/model`` NAME: a provider entry, ``ENTRY:MODEL``, or a model of the current entry
    (a model name may itself hold ``:``, as in ``llama3:8b``)."""
    if arg in entries:
        return arg, None
    head, sep, tail = arg.partition(":")
    if sep and head in entries and tail:
        return head, tail
    return None, arg


def _said(rec: object) -> str | None:
    """What the user said in a record, if it is a user message."""
    if isinstance(rec, SessionStart):
        return rec.task or None
    if isinstance(rec, UserMessage):
        return rec.text
    return None


def earlier_messages(run_dir: Path) -> tuple[list[str], int]:
    """The user messages of a run's journal (the editor's history) and its last position."""
    texts: list[str] = []
    last = 0
    for rec, _ in read_journal(run_dir):
        last = max(last, rec.seq)
        said = _said(rec)
        if said:
            texts.append(said)
    return texts, last


def last_exchange(run_dir: Path) -> tuple[str, str]:
    """The last user message of a run and the last complete answer."""
    last_user, last_answer = "", ""
    for rec, _ in read_journal(run_dir):
        said = _said(rec)
        if said:
            last_user = said
        elif isinstance(rec, AssistantRecord) and rec.status == "complete" and rec.text:
            last_answer = rec.text
    return last_user, last_answer


async def run_interactive(cfg: AgentConfig, out: TextIO, err: TextIO, *, redactor: Redactor,
                          resume: str | None = None, run_id: str | None = None,
                          folder: Path | None = None, task: str | None = None,
                          reader: LineReader | None = None, screen: Screen | None = None,
                          environ: dict[str, str] | None = None, signals: bool = True,
                          **engine_options: Any) -> SessionResult:
    """The chat on one run (see the module docstring); returns how it ended."""
    screen = screen or Screen(out, err)
    view = ChatView(screen, redactor)

    def say(text: str) -> None:
        view.note(text)

    async with Engine.open(cfg, environ=environ, mcp_errlog=err, **engine_options) as engine:
        if engine.key_warning:
            say(f"warning: {engine.key_warning}")
        history: list[str] = []
        base = folder or engine.logging_dir
        if resume is not None:
            history, view.quiet_until = await offload(earlier_messages, base / resume)
        session = await engine.start(task, resume=resume, run_id=run_id, keep_open=True,
                                     on_approval="wait", folder=folder)
        driver = session.driver
        say(f"conductor · run {session.run_id} · "
            f"{driver.name + ' (' + driver.model + ')' if driver else ''} · /help for help")
        if resume is not None:  # where the chat stopped
            user, answer = await offload(last_exchange, session.run_dir)
            if user:
                view.note(f"(resumed) {PROMPT}{user}", "dim")
            view.answer(answer)
            view.end_answer()
        if task:
            history.append(task)
            view.note(f"{PROMPT}{task}", "dim")
            screen.start()
        chat = Chat(engine, session, view, reader or LineReader(history), err=say)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(chat.pump)
            if signals and threading.current_thread() is threading.main_thread():
                await nursery.start(chat.signals)
            nursery.start_soon(screen.tick)
            try:
                await chat.converse()
                result = await session.result()
                await chat.pumped.wait()
            finally:
                nursery.cancel_scope.cancel()
    screen.stop()
    view.end_answer()
    if result.status not in ("finished",):
        say(f"[{result.status}] {result.message}")
    say(end_line(result))
    return result

