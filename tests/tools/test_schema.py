"""Deriving a tool's JSON Schema and description from a Python function; the registry."""

from __future__ import annotations

import enum
from typing import Any, Literal, TypedDict

import msgspec
import pytest

from runtime.model import ToolSpec
from runtime.tools import Tool, ToolRegistry, tool
from runtime.tools.schema import derive, parse_docstring
from runtime.tools.validate import validate_call


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Point(msgspec.Struct):
    x: int
    y: int = 0


class Opaque:
    pass


class Box(TypedDict):
    w: float
    h: float


def test_scalar_hints_map_to_json_types() -> None:
    """str, int, float and bool become string, integer, number and boolean."""

    def f(s: str, i: int, x: float, b: bool) -> str:
        return ""

    props = derive(f).parameters["properties"]
    assert {k: v["type"] for k, v in props.items()} == {
        "s": "string", "i": "integer", "x": "number", "b": "boolean"}


def test_required_only_without_default_and_no_extra_properties() -> None:
    """Parameters with a default (None included) are optional; unknown keys are refused."""

    def f(path: str, limit: int = 10, tag: str | None = None) -> str:
        return ""

    schema = derive(f).parameters
    assert schema["type"] == "object"
    assert schema["required"] == ["path"]
    assert schema["additionalProperties"] is False
    assert schema["properties"]["limit"]["default"] == 10
    assert {"type": "null"} in schema["properties"]["tag"]["anyOf"]


def test_containers_literal_and_enum() -> None:
    """list[X], dict, Literal and Enum hints have matching schemas."""

    def f(names: list[str], meta: dict[str, int], mode: Literal["fast", "slow"],
          color: Color = Color.RED) -> str:
        return ""

    schema = derive(f).parameters
    props = schema["properties"]
    assert props["names"] == {"type": "array", "items": {"type": "string"}}
    assert props["meta"]["type"] == "object"
    assert props["meta"]["additionalProperties"] == {"type": "integer"}
    assert sorted(props["mode"]["enum"]) == ["fast", "slow"]
    ref = props["color"]["$ref"].rsplit("/", 1)[-1]
    assert sorted(schema["$defs"][ref]["enum"]) == ["blue", "red"]
    assert props["color"]["default"] == "red"


def test_struct_and_typeddict_become_defs() -> None:
    """msgspec Structs and TypedDicts are described in $defs and referenced."""

    def f(p: Point, box: Box) -> str:
        return ""

    schema = derive(f).parameters
    for name, field in (("p", "x"), ("box", "w")):
        ref = schema["properties"][name]["$ref"].rsplit("/", 1)[-1]
        assert field in schema["$defs"][ref]["required"]


def test_docstring_summary_and_google_args() -> None:
    """The first paragraph is the description; Args: gives per-argument descriptions."""

    @tool
    def grep(pattern: str, path: str = ".") -> str:
        """Search files for a pattern
        across the workspace.

        Longer explanation that is not part of the summary.

        Args:
            pattern (str): a regular
                expression.
            path: where to look.

        Returns:
            matching lines.
        """
        return ""

    assert grep.description == "Search files for a pattern across the workspace."
    props = grep.parameters["properties"]
    assert props["pattern"]["description"] == "a regular expression."
    assert props["path"]["description"] == "where to look."


def test_parse_docstring_without_args_section() -> None:
    """A docstring without Args: yields a summary and no argument descriptions."""
    assert parse_docstring("One line.\n\nMore.") == ("One line.", {})
    assert parse_docstring(None) == ("", {})


def test_unsupported_hint_and_positional_only_are_refused() -> None:
    """Hints with no JSON Schema and positional-only parameters raise TypeError naming them."""

    def f(x: Opaque) -> str:
        return ""

    def g(x: int, /) -> str:
        return ""

    with pytest.raises(TypeError, match="JSON Schema"):
        derive(f)
    with pytest.raises(TypeError, match="'x'"):
        derive(g)


def test_derived_schema_validates_and_converts() -> None:
    """The derived schema rejects bad input, and good input is converted to the hinted types."""

    @tool
    def paint(color: Color, at: Point, times: int = 1) -> str:
        return ""

    bad = validate_call("paint", '{"color": "green", "at": {"y": 1}}', {"paint": paint.parameters})
    assert not bad.ok
    assert any(e.startswith("$.color:") for e in bad.errors)
    assert any(e.startswith("$.at.x:") for e in bad.errors)
    kwargs = paint.prepare({"color": "blue", "at": {"x": 3}})
    assert kwargs == {"color": Color.BLUE, "at": Point(3, 0)}  # times left to the default


async def test_sync_and_async_tools_are_called_with_keywords() -> None:
    """A sync fn runs in a thread, an async fn is awaited; non-str results become JSON."""
    import threading

    main = threading.get_ident()

    @tool
    def where(n: int) -> dict[str, Any]:
        return {"n": n, "other_thread": threading.get_ident() != main}

    @tool
    async def echo(text: str) -> str:
        return text.upper()

    assert msgspec.json.decode(await where.call({"n": 2})) == {"n": 2, "other_thread": True}
    assert await echo.call({"text": "hi"}) == "HI"
    assert echo.is_async and not where.is_async


async def test_async_callable_object_is_a_tool() -> None:
    """Any async callable (say, a wrapper of a remote MCP call) can back a Tool."""

    class Remote:
        def __init__(self) -> None:
            self.seen: list[dict[str, Any]] = []

        async def __call__(self, **kwargs: Any) -> list[int]:
            self.seen.append(kwargs)
            return [1, 2]

    remote = Remote()
    t = Tool("srv__op", "remote op", {"type": "object", "properties": {"a": {"type": "string"}}},
             remote)
    assert t.is_async
    assert await t.call({"a": "x"}) == "[1,2]"
    assert remote.seen == [{"a": "x"}]


def test_tool_rejects_bad_name_schema_and_approval() -> None:
    """Tool construction checks its name, its schema and its approval mode."""
    schema = {"type": "object", "properties": {}}
    with pytest.raises(ValueError, match="name"):
        Tool("bad name!", "", schema, lambda: "")
    with pytest.raises(ValueError, match="JSON Schema"):
        Tool("t", "", {"type": "object", "properties": {"a": {"type": 5}}}, lambda: "")
    with pytest.raises(ValueError, match="object"):
        Tool("t", "", {"type": "string"}, lambda: "")
    with pytest.raises(ValueError, match="approval"):
        Tool("t", "", schema, lambda: "", approval="maybe")


def test_registry_register_get_specs_and_decorator() -> None:
    """The registry keeps order, refuses duplicates and gives ToolSpecs."""
    reg = ToolRegistry()

    @reg.tool(approval="ask")
    def first(a: int) -> str:
        """First tool."""
        return str(a)

    @reg.tool
    def second() -> str:
        return ""

    assert reg.names() == ["first", "second"]
    assert reg.get("first") is first and reg.get("nope") is None
    assert "second" in reg and len(reg) == 2
    assert first.approval == "ask" and first(5) == "5"
    specs = reg.specs()
    assert all(isinstance(s, ToolSpec) for s in specs)
    assert specs[0].description == "First tool."
    assert specs[0].parameters["required"] == ["a"]
    with pytest.raises(ValueError, match="already registered"):
        reg.register(first)
    reg.register(Tool("first", "new", {"type": "object"}, lambda: ""), replace=True)
    assert reg["first"].description == "new"


def test_explicit_parameters_skip_derivation() -> None:
    """Given parameters are used as they are; the description still comes from the docstring."""
    params = {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}

    @tool(name="search", parameters=params)
    def anything(**kwargs: Any) -> str:
        """Search things.

        Details."""
        return ""

    assert anything.name == "search"
    assert anything.parameters == params
    assert anything.description == "Search things."
    assert anything.prepare({"q": "x", "extra": 1}) == {"q": "x", "extra": 1}
