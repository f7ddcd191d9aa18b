"""Tools and the registry that offers them to the model.

A :class:`Tool` is a name, a description, a JSON Schema of its parameters and ``fn``, any
callable taking the arguments as keyword arguments and returning ``str`` or a JSON-able
value. ``fn`` may be async (awaited on the event loop: this is how remote MCP tools plug in)
or sync (run in a worker thread so that it never blocks the loop). Raising
:class:`ToolError` gives the model its message as an error result; any other exception
becomes an error result naming the exception type.

A Tool may also answer client-run call kinds other than ``function`` (``native``: kind ->
async handler of the decoded action, see ``kinds.py``): the built-in ``run_shell`` answers
``shell`` and ``local_shell`` calls, ``apply_patch`` answers ``apply_patch`` calls.

``@tool`` builds a Tool from a function's type hints and docstring (see ``schema.py``)::

    @registry.tool(approval="ask")
    def read_note(title: str, limit: int = 100) -> str:
        \"\"\"Read a note.

        Args:
            title: the note's title.
        \"\"\"
"""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any, Literal, overload

import attrs
import msgspec
import trio

from ..model import ToolSpec
from .schema import derive
from .validate import check_schema

__all__ = ["Approval", "NativeHandler", "Tool", "ToolError", "ToolRegistry", "tool"]

Approval = Literal["auto", "ask", "deny"]
APPROVALS: tuple[str, ...] = ("auto", "ask", "deny")
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
NativeHandler = Callable[[Any], Awaitable[Any]]
DEFAULT_MAX_OUTPUT = 20000


class ToolError(Exception):
    """Raised by a tool to report a failure to the model with exactly this message."""


def _is_async(fn: Callable[..., Any]) -> bool:
    if inspect.iscoroutinefunction(fn):
        return True
    call = getattr(fn, "__call__", None)  # noqa: B004
    return call is not None and inspect.iscoroutinefunction(call)


def _check_name(_: Any, __: Any, value: str) -> None:
    if not _NAME.match(value):
        raise ValueError(f"invalid tool name {value!r}: use 1-64 letters, digits, _ or -")


def _check_approval(_: Any, __: Any, value: str) -> None:
    if value not in APPROVALS:
        raise ValueError(f"invalid approval {value!r}: use auto, ask or deny")


def _check_parameters(_: Any, __: Any, value: dict[str, Any]) -> None:
    check_schema(value)


def encode_result(value: Any) -> str:
    """A tool's return value as the text the model reads."""
    if isinstance(value, str):
        return value
    try:
        return msgspec.json.encode(value).decode()
    except (TypeError, msgspec.EncodeError) as exc:
        raise ToolError(f"the tool returned a value that is not JSON-serializable "
                        f"({type(value).__name__}): {exc}") from None


@attrs.frozen
class Tool:
    """One tool. ``approval`` is its default policy; ``tools.approval`` overrides it.
    ``args_type`` (set by ``@tool``) converts validated JSON into the hinted types.
    ``read_only``: running it again changes nothing (a resumed session may re-run a call of
    it that was cut off; a call of any other tool is reported as interrupted instead).
    ``native`` maps the call kinds it answers besides ``function`` to their handlers;
    a ``serial`` tool's calls of one turn run one after another, in call order (edits that
    build on each other), while other calls run concurrently."""

    name: str = attrs.field(validator=_check_name)
    description: str
    parameters: dict[str, Any] = attrs.field(validator=_check_parameters)
    fn: Callable[..., Any]
    approval: str = attrs.field(default="auto", validator=_check_approval)
    args_type: type[msgspec.Struct] | None = None
    var_keyword: bool = False
    read_only: bool = False
    native: Mapping[str, NativeHandler] = attrs.field(factory=dict)
    serial: bool = False
    is_async: bool = attrs.field(default=attrs.Factory(lambda s: _is_async(s.fn),
                                                       takes_self=True))

    @property
    def spec(self) -> ToolSpec:
        return ToolSpec(self.name, self.description, self.parameters)

    def prepare(self, arguments: dict[str, Any]) -> dict[str, Any]:
        """Keyword arguments for ``fn``: converted to the hinted types when known, with the
        arguments the model left out omitted so that ``fn``'s defaults apply."""
        if self.args_type is None:
            return dict(arguments)
        fields = set(self.args_type.__struct_fields__)
        try:
            converted = msgspec.convert({k: v for k, v in arguments.items() if k in fields},
                                        self.args_type)
        except msgspec.ValidationError as exc:
            raise ToolError(f"invalid arguments for {self.name}: {exc}") from None
        kwargs = {k: v for k, v in msgspec.structs.asdict(converted).items()
                  if v is not msgspec.UNSET}
        if self.var_keyword:
            kwargs.update({k: v for k, v in arguments.items() if k not in fields})
        return kwargs

    async def call(self, arguments: dict[str, Any]) -> str:
        """Run the tool with validated ``arguments`` and return its result as text."""
        kwargs = self.prepare(arguments)
        if self.is_async:
            result = await self.fn(**kwargs)
        else:
            result = await trio.to_thread.run_sync(functools.partial(self.fn, **kwargs),
                                                   abandon_on_cancel=True)
            if inspect.isawaitable(result):
                result = await result
        return encode_result(result)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call ``fn`` directly, so a decorated function stays usable as a function."""
        return self.fn(*args, **kwargs)


def make_tool(fn: Callable[..., Any], *, name: str | None = None,
              description: str | None = None, parameters: dict[str, Any] | None = None,
              approval: str = "auto") -> Tool:
    """A Tool from ``fn``: schema and description derived unless given."""
    tool_name: str = name or str(getattr(fn, "__name__", ""))
    if parameters is not None:
        doc = inspect.getdoc(fn) or ""
        return Tool(tool_name, description if description is not None
                    else doc.split("\n\n", 1)[0].replace("\n", " ").strip(),
                    parameters, fn, approval)
    spec = derive(fn, name=tool_name)
    return Tool(tool_name, description if description is not None else spec.description,
                spec.parameters, fn, approval, spec.args_type, spec.var_keyword)


@overload
def tool(fn: Callable[..., Any], /) -> Tool: ...
@overload
def tool(*, name: str | None = None, description: str | None = None,
         parameters: dict[str, Any] | None = None,
         approval: str = "auto") -> Callable[[Callable[..., Any]], Tool]: ...


def tool(fn: Callable[..., Any] | None = None, /, *, name: str | None = None,
         description: str | None = None, parameters: dict[str, Any] | None = None,
         approval: str = "auto") -> Tool | Callable[[Callable[..., Any]], Tool]:
    """Decorator: ``@tool`` or ``@tool(name=..., approval=...)`` turns a function into a
    :class:`Tool` (still callable as the function)."""

    def wrap(f: Callable[..., Any]) -> Tool:
        return make_tool(f, name=name, description=description, parameters=parameters,
                         approval=approval)

    return wrap(fn) if fn is not None else wrap


class ToolRegistry:
    """The tools offered to the model, by name, in registration order. Their output is
    capped at ``max_output_chars`` by the supervisor (``tools.max_output_chars``)."""

    def __init__(self, tools: list[Tool] | None = None, *,
                 max_output_chars: int = DEFAULT_MAX_OUTPUT) -> None:
        self._tools: dict[str, Tool] = {}
        self.max_output_chars = max_output_chars
        for t in tools or []:
            self.register(t)

    def register(self, t: Tool, *, replace: bool = False) -> Tool:
        if t.name in self._tools and not replace:
            raise ValueError(f"a tool named {t.name!r} is already registered")
        self._tools[t.name] = t
        return t

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def handler(self, kind: str) -> Tool | None:
        """The tool that answers ``kind`` calls (``shell``, ``apply_patch``...), if any."""
        return next((t for t in self._tools.values() if kind in t.native), None)

    def __getitem__(self, name: str) -> Tool:
        return self._tools[name]

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __iter__(self) -> Iterator[Tool]:
        return iter(list(self._tools.values()))

    def __len__(self) -> int:
        return len(self._tools)

    def names(self) -> list[str]:
        return list(self._tools)

    def specs(self) -> list[ToolSpec]:
        return [t.spec for t in self._tools.values()]

    def schemas(self) -> dict[str, dict[str, Any]]:
        """Tool name -> parameters schema, as ``validate_call`` takes them."""
        return {n: t.parameters for n, t in self._tools.items()}

    @overload
    def tool(self, fn: Callable[..., Any], /) -> Tool: ...
    @overload
    def tool(self, /, *, name: str | None = None, description: str | None = None,
             parameters: dict[str, Any] | None = None,
             approval: str = "auto") -> Callable[[Callable[..., Any]], Tool]: ...

    def tool(self, fn: Callable[..., Any] | None = None, /, *, name: str | None = None,
             description: str | None = None, parameters: dict[str, Any] | None = None,
             approval: str = "auto") -> Tool | Callable[[Callable[..., Any]], Tool]:
        """Like :func:`tool`, and registers the result."""

        def wrap(f: Callable[..., Any]) -> Tool:
            return self.register(make_tool(f, name=name, description=description,
                                           parameters=parameters, approval=approval))

        return wrap(fn) if fn is not None else wrap
